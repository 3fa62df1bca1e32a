//! The training step and the evaluation pass perform no heap allocation once warmed up:
//! every buffer is allocated for the batch size up front. Counted with a global allocator,
//! across all threads (the rayon gather included).

mod common;

use backprop::data::idx::cache::CachePolicy;
use backprop::data::{load_idx_sets, standard_paths, Dataset, InputTransform};
use backprop::optim::{Hyper, Optimizer, OptimizerKind};
use backprop::train::{Batch, StepBuffers};
use backprop::train::{Evaluator, Subset};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn count<F: FnMut()>(mut f: F) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// One test, so that nothing else runs while the global count is read.
#[test]
fn steps_and_evaluation_allocate_nothing_after_the_first_dense_or_sparse() {
    let paths = standard_paths(&common::mnist_dir()).unwrap();
    let (mut train, mut test) = load_idx_sets(&paths, None, &CachePolicy::default()).unwrap();
    check_steps_and_evaluation(&train, &test, "dense");
    train.compress().unwrap();
    test.compress().unwrap();
    check_steps_and_evaluation(&train, &test, "sparse");
}

fn check_steps_and_evaluation(train: &Dataset, test: &Dataset, path: &str) {
    let text = "[data]\ndir = \"x\"\n[model]\nhidden = [300, 300]\n";
    let loaded = common::loaded(text, &common::mnist_dir());
    let arch = backprop::commands::experiment::architecture(&loaded, train).unwrap();
    let mut net =
        backprop::model::Network::initialised(arch, backprop::model::init::Init::Auto, 0.0, 1);
    let transform = InputTransform::new(1.0 / 255.0, 0.1307, 0.3081);
    let batch = 200;
    // With dropout masks and class weights, which the step applies too.
    let weights = (1..=10).map(|c| c as f32 / 5.0).collect();
    let mut work = StepBuffers::new(&net, train, batch, true)
        .with_dropout(&net, &[0.2, 0.5], 1)
        .with_class_weights(weights);
    let mut evaluator = Evaluator::new(&net, test, 1000);
    // A full batch (gathered in parallel) and a partial one (gathered on this thread).
    let full: Vec<usize> = (0..batch).map(|i| (i * 7919) % train.len()).collect();
    let partial = &full[..37];
    // As `backprop` runs it: the loop on a worker of the run's pool, so parallel passes use
    // the worker's own queue (calls from outside a pool go through rayon's injector, which
    // allocates a block every 63 jobs).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        for kind in [OptimizerKind::Momentum, OptimizerKind::Adam] {
            let hyper = Hyper {
                kind,
                weight_decay: 1e-4,
                ..Hyper::default()
            };
            let mut opt = Optimizer::new(hyper, &net.tensors);
            let mut step = |rows: &[usize]| {
                let batch = Batch {
                    data: train,
                    transform: &transform,
                    indices: rows,
                };
                work.step(&mut net, &mut opt, batch, 0.01, false);
            };
            step(&full);
            step(partial);
            let during_steps = count(|| {
                for _ in 0..50 {
                    step(&full);
                    step(partial);
                }
            });
            assert_eq!(
                during_steps, 0,
                "{path} {kind:?}: allocations in 100 training steps"
            );
        }
        evaluator.score(&net, test, &transform, Subset::All);
        let during_eval = count(|| {
            evaluator.score(&net, test, &transform, Subset::All);
        });
        assert_eq!(
            during_eval, 0,
            "{path}: allocations while evaluating 10,000 samples"
        );
    });
}
