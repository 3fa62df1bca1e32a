//! sgd and momentum fold their update into the gradient products; the result must be the
//! update of the textbook rule (up to rounding), with and without weight decay.

use backprop::data::{float_dataset, Dataset, InputTransform, Labels, TargetData};
use backprop::model::activation::Activation;
use backprop::model::init::Init;
use backprop::model::loss::Loss;
use backprop::model::{Architecture, Network};
use backprop::optim::{Hyper, Optimizer, OptimizerKind};
use backprop::train::{Batch, StepBuffers};

/// A 3-class table of `samples` rows of `inputs` features, from `feature(i)`.
fn three_classes(samples: usize, inputs: usize, feature: impl Fn(usize) -> f32) -> Dataset {
    let features: Vec<f32> = (0..samples * inputs).map(feature).collect();
    let labels = Labels::Owned((0..samples).map(|i| (i % 3) as u32).collect());
    float_dataset(
        "t",
        features,
        inputs,
        TargetData::Classes { labels, classes: 3 },
    )
}

/// `inputs`-5-3 with hidden activation `hidden`, for softmax cross-entropy.
fn small_arch(inputs: usize, hidden: Activation) -> Architecture {
    Architecture::flat(
        inputs,
        &[(5, hidden), (3, Activation::Identity)],
        Loss::SoftmaxCrossEntropy,
    )
}

#[test]
fn fused_steps_match_the_plain_rule() {
    let (samples, inputs) = (40, 6);
    let data = three_classes(samples, inputs, |i| ((i * 37) % 17) as f32 / 17.0 - 0.5);
    let arch = small_arch(inputs, Activation::Tanh);
    let t = InputTransform::identity();
    for (kind, weight_decay, decay_biases) in [
        (OptimizerKind::Sgd, 0.0, false),
        (OptimizerKind::Sgd, 0.1, false),
        (OptimizerKind::Sgd, 0.1, true),
        (OptimizerKind::Momentum, 0.0, false),
        (OptimizerKind::Momentum, 0.1, false),
    ] {
        let hyper = Hyper {
            kind,
            weight_decay,
            decay_biases,
            ..Hyper::default()
        };
        let start = Network::initialised(arch.clone(), Init::XavierNormal, 0.1, 3);
        let (mut fused, mut plain) = (start.clone(), start.clone());
        let mut opt_fused = Optimizer::new(hyper, &start.tensors);
        let mut opt_plain = opt_fused.clone();
        assert!(hyper.kind.fuses());
        let mut work = StepBuffers::new(&start, &data, 10, true);
        for step in 0..8usize {
            let rows: Vec<usize> = (0..10).map(|i| (step * 10 + i) % samples).collect();
            let batch = Batch {
                data: &data,
                transform: &t,
                indices: &rows,
            };
            // Fused: the products accumulate into the weights or velocity.
            work.step(&mut fused, &mut opt_fused, batch, 0.3, false);
            // Plain: the gradient buffer, then the textbook rule.
            work.step(&mut plain, &mut opt_plain, batch, 0.3, true);
        }
        assert_ne!(fused.params, start.params);
        for (a, b) in fused.params.iter().zip(&plain.params) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{kind:?} λ={weight_decay}: {a} vs {b}"
            );
        }
        assert_eq!(opt_fused.steps, 8);
    }
}

/// A fused step never writes the gradient buffer, so the divergence report must not read it:
/// it names the first tensor whose gradient, on the batch that diverged, is non-finite.
#[test]
fn divergence_after_a_fused_step_names_the_gradient_of_that_batch() {
    use backprop::train::{
        Sets, Silent, StopReason, StopRules, TrainState, Trainer, TrainerOptions,
    };
    let (samples, inputs) = (12, 4);
    let data = three_classes(samples, inputs, |i| 1.0 + (i % 3) as f32);
    let arch = small_arch(inputs, Activation::Relu);
    let mut net = Network::initialised(arch, Init::XavierNormal, 0.0, 3);
    // Weights so large that the logits overflow: the very first batch's loss is NaN.
    net.params.iter_mut().for_each(|p| *p = 1e20);
    let hyper = Hyper {
        kind: OptimizerKind::Momentum,
        ..Hyper::default()
    };
    let state = TrainState {
        optimizer: Optimizer::new(hyper, &net.tensors),
        net,
        history: Vec::new(),
    };
    let indices: Vec<usize> = (0..samples).collect();
    let transform = InputTransform::identity();
    let sets = Sets {
        train: &data,
        train_indices: &indices,
        validation: &[],
        test: &data,
        transform: &transform,
    };
    let options = TrainerOptions {
        batch_size: 4,
        drop_last: false,
        eval_chunk: 16,
        diagnostics_every: None,
        label_smoothing: 0.0,
        dropout: Vec::new(),
        class_weights: Vec::new(),
    };
    let schedule = backprop::optim::schedule::Schedule::constant(0.1);
    let mut trainer = Trainer::new(state, schedule, StopRules::epochs(1), 1, sets, &options);
    let reason = trainer
        .fit(
            sets,
            &mut Silent,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
    let StopReason::Diverged { batch, detail, .. } = reason else {
        panic!("expected a divergence, got {reason:?}");
    };
    assert_eq!(batch, 1);
    assert!(
        detail.contains("the gradient of layer0.weight (layer 0) is the first with NaN/inf"),
        "{detail}"
    );
    // The epoch is abandoned: the weights are those it started from.
    assert!(trainer.state.net.params.iter().all(|&p| p == 1e20));
}
