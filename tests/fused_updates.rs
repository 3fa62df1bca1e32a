//! sgd and momentum fold their update into the gradient products; the result must be the
//! update of the textbook rule (up to rounding), with and without weight decay.

use backprop::activation::Activation;
use backprop::data::{float_dataset, InputTransform, Labels, TargetData};
use backprop::init::Init;
use backprop::loss::Loss;
use backprop::net::{Architecture, LayerSpec, Network};
use backprop::optim::{Fusion, Hyper, Optimizer, OptimizerKind};
use backprop::train::StepBuffers;

#[test]
fn fused_steps_match_the_plain_rule() {
    let (samples, inputs) = (40, 6);
    let features: Vec<f32> = (0..samples * inputs)
        .map(|i| ((i * 37) % 17) as f32 / 17.0 - 0.5)
        .collect();
    let labels = Labels::Owned((0..samples).map(|i| (i % 3) as u32).collect());
    let data = float_dataset(
        "t",
        features,
        inputs,
        TargetData::Classes { labels, classes: 3 },
    );
    let arch = Architecture {
        inputs,
        input_shape: vec![inputs],
        layers: vec![
            LayerSpec {
                outputs: 5,
                activation: Activation::Tanh,
            },
            LayerSpec {
                outputs: 3,
                activation: Activation::Identity,
            },
        ],
        loss: Loss::SoftmaxCrossEntropy,
    };
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
        assert_ne!(opt_fused.fusion(), Fusion::None);
        let mut work = StepBuffers::new(&start, &data, 10);
        for step in 0..8usize {
            let rows: Vec<usize> = (0..10).map(|i| (step * 10 + i) % samples).collect();
            work.step(&mut fused, &mut opt_fused, &data, &t, &rows, 0.3);
            work.step_with(
                Fusion::None,
                &mut plain,
                &mut opt_plain,
                &data,
                &t,
                &rows,
                0.3,
            );
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
