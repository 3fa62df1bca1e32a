//! `cargo bench`: training epochs, the phases of one step, online steps, and the sgemm floor,
//! on the vendored MNIST. Prints which BLAS core and thread counts the run used.

use backprop::commands::experiment::{architecture, default_threads, Experiment};
use backprop::config::{self, Loaded};
use backprop::data::idx::cache::CachePolicy;
use backprop::data::{gather, load_idx_sets, standard_paths, Batcher, Dataset, InputTransform};
use backprop::eval::bench::step_products;
use backprop::model::{Input, Network, Shaping};
use backprop::optim::{Hyper, Optimizer, OptimizerKind};
use backprop::train::{Batch, StepBuffers};
use criterion::{criterion_group, Criterion, Throughput};
use std::path::PathBuf;
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mnist() -> (Dataset, Dataset) {
    let paths = standard_paths(&repo().join("data/mnist")).expect("vendored MNIST");
    load_idx_sets(&paths, None, &CachePolicy::default()).expect("vendored MNIST parses")
}

fn loaded(text: &str) -> Loaded {
    let config = config::parse(text).expect("bench config parses");
    config.validate().expect("bench config is valid");
    Loaded {
        config,
        path: repo().join("bench.toml"),
        base_dir: repo(),
    }
}

/// A 784-…-10 ReLU network for MNIST, He-initialised, and plain SGD.
fn mnist_model(train: &Dataset, hidden: &str) -> (Network, Optimizer) {
    let l = loaded(&format!(
        "[data]\ndir = \"data/mnist\"\n[model]\nhidden = [{hidden}]\n"
    ));
    let arch = architecture(&l, train).expect("architecture");
    let net = Network::initialised(arch, l.config.init(), 0.0, 1);
    let opt = Optimizer::new(
        Hyper {
            kind: OptimizerKind::Sgd,
            ..Hyper::default()
        },
        &net.tensors,
    );
    (net, opt)
}

fn transform() -> InputTransform {
    InputTransform::new(1.0 / 255.0, 0.1307, 0.3081)
}

/// One epoch's training loop, as `Trainer::fit` runs it: shuffle, then every minibatch.
fn epochs(c: &mut Criterion) {
    let (dense, _) = mnist();
    let (mut sparse, _) = mnist();
    sparse.compress().expect("MNIST compresses");
    let t = transform();
    let mut group = c.benchmark_group("epoch");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(dense.len() as u64));
    let cases = [
        ("300, 300", 32, &dense, "dense"),
        ("300, 300", 32, &sparse, "sparse"),
        ("300, 300", 128, &dense, "dense"),
        ("300, 300", 128, &sparse, "sparse"),
        ("300, 300", 600, &dense, "dense"),
        ("300, 300", 600, &sparse, "sparse"),
        ("96", 200, &sparse, "sparse"),
    ];
    for (hidden, batch, train, path) in cases {
        let (mut net, mut opt) = mnist_model(train, hidden);
        let mut work = StepBuffers::new(&net, train, batch, !opt.hyper.kind.fuses());
        let mut batcher = Batcher::new((0..train.len()).collect(), batch, false);
        let mut epoch = 0;
        let name = format!("784-{}-10 batch {batch} {path}", hidden.replace(", ", "-"));
        group.bench_function(name, |b| {
            b.iter(|| {
                batcher.shuffle(1, epoch);
                epoch += 1;
                for indices in batcher.batches() {
                    let batch = Batch {
                        data: train,
                        transform: &t,
                        indices,
                    };
                    work.step(&mut net, &mut opt, batch, 0.01, false);
                }
            })
        });
    }
    group.finish();
}

/// The phases of one step of 784-300-300-10 at batch 600, and the step's products alone.
fn phases(c: &mut Criterion) {
    let (train, _) = mnist();
    let t = transform();
    let batch = 600;
    let (mut net, mut opt) = mnist_model(&train, "300, 300");
    let mut work = StepBuffers::new(&net, &train, batch, true);
    let rows: Vec<usize> = (0..batch).map(|i| (i * 7919) % train.len()).collect();
    let mut group = c.benchmark_group("step 784-300-300-10 batch 600");
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("gather", |b| {
        b.iter(|| {
            gather(
                &train,
                &t,
                &rows,
                work.acts.input_mut(batch),
                &mut work.targets,
            )
        })
    });
    group.bench_function("forward", |b| {
        b.iter(|| net.forward(&mut work.acts, batch, Input::Dense))
    });
    group.bench_function("backward", |b| {
        b.iter(|| {
            net.backward(
                &work.acts,
                &mut work.deltas,
                work.targets.view(batch),
                batch,
                Shaping::default(),
            );
            net.gradients(&work.acts, &work.deltas, batch, Input::Dense, None)
                .write_to(&mut work.grads)
        })
    });
    group.bench_function("update", |b| {
        b.iter(|| opt.step(1e-6, &mut net.params, &work.grads))
    });
    group.bench_function("whole step", |b| {
        b.iter(|| {
            let step = Batch {
                data: &train,
                transform: &t,
                indices: &rows,
            };
            work.step(&mut net, &mut opt, step, 1e-6, false)
        })
    });
    group.bench_function("sgemm floor (products only)", |b| {
        b.iter(|| {
            step_products(
                &net,
                &mut work.acts,
                &mut work.deltas,
                &mut work.grads,
                batch,
                Input::Dense,
                None,
            )
        })
    });
    group.finish();
}

/// Online training (batch 1) of the 1-6-1 sine network.
fn online(c: &mut Criterion) {
    let l =
        loaded(&std::fs::read_to_string(repo().join("configs/sine.toml")).expect("sine config"));
    let exp = Experiment::prepare(l).expect("sine data");
    let state = exp.initial_state();
    let (mut net, mut opt) = (state.net, state.optimizer);
    let mut work = StepBuffers::new(&net, &exp.train, 1, !opt.hyper.kind.fuses());
    let mut i = 0;
    let mut group = c.benchmark_group("online 1-6-1 sine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("step (batch 1)", |b| {
        b.iter(|| {
            i = (i + 1) % exp.train.len();
            let step = Batch {
                data: &exp.train,
                transform: &exp.transform,
                indices: &[i],
            };
            work.step(&mut net, &mut opt, step, 0.01, false)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotting needs system fonts that a server may lack.
    config = Criterion::default().without_plots();
    targets = epochs, phases, online
}

fn main() {
    let threads = default_threads();
    // As `backprop` runs: the loop on a worker of a pool of `threads`.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    eprintln!(
        "{}; rayon: {threads} thread(s)",
        backprop::compute::blas::describe()
    );
    pool.install(benches);
    Criterion::default().configure_from_args().final_summary();
}
