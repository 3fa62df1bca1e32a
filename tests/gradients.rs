//! Every analytic gradient of the real backward pass (f32, sgemm) agrees with central finite
//! differences of an independent f64 forward pass, for every activation and every loss.

use backprop::data::{float_dataset, InputTransform, Labels, TargetData};
use backprop::eval::gradcheck::{analytic, check, compare};
use backprop::model::activation::Activation;
use backprop::model::init::Init;
use backprop::model::loss::Loss;
use backprop::model::{Architecture, Network};
use backprop::train::StepBuffers;

const ACTIVATIONS: [Activation; 5] = [
    Activation::Relu,
    Activation::LeakyRelu { slope: 0.05 },
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Identity,
];

fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Worst relative error over all tensors of a 5-4-3-`outputs` network on 6 samples.
fn worst_error(
    hidden: Activation,
    output: Activation,
    loss: Loss,
    targets: TargetData,
    outputs: usize,
) -> f64 {
    let samples = 6;
    let inputs = 5;
    let data = float_dataset("grad", pseudo_random(samples * inputs, 3), inputs, targets);
    let arch = Architecture::flat(inputs, &[(4, hidden), (3, hidden), (outputs, output)], loss);
    // Xavier keeps every activation in its sensitive range; a small bias moves ReLU
    // pre-activations off the kink.
    let net = Network::initialised(arch, Init::XavierNormal, 0.05, 11);
    let indices: Vec<usize> = (0..samples).collect();
    let checks = check(&net, &data, &InputTransform::identity(), &indices, 1000, 1);
    assert_eq!(checks.len(), 6, "three weights and three biases");
    assert!(checks.iter().all(|c| c.checked > 0));
    checks.iter().map(|c| c.max_rel_error).fold(0.0, f64::max)
}

fn labels(classes: usize) -> TargetData {
    TargetData::Classes {
        labels: Labels::Owned((0..6).map(|i| (i * 7 % classes) as u32).collect()),
        classes,
    }
}

fn values(width: usize, scale: f32, shift: f32) -> TargetData {
    TargetData::Values {
        values: pseudo_random(6 * width, 9)
            .iter()
            .map(|v| v * scale + shift)
            .collect(),
        width,
    }
}

/// Observed worst errors are 1e-6..5e-5 (f32 analytic against f64 numeric); a real bug,
/// such as a softmax derivative applied twice, is off by O(1).
const TOLERANCE: f64 = 2e-4;

#[test]
fn softmax_cross_entropy_with_every_hidden_activation() {
    for act in ACTIVATIONS {
        let e = worst_error(
            act,
            Activation::Identity,
            Loss::SoftmaxCrossEntropy,
            labels(3),
            3,
        );
        assert!(e < TOLERANCE, "{act:?}: {e}");
    }
}

#[test]
fn mean_squared_error_with_every_output_activation() {
    for out in ACTIVATIONS {
        let e = worst_error(
            Activation::Tanh,
            out,
            Loss::MeanSquaredError,
            values(2, 0.5, 0.3),
            2,
        );
        assert!(e < TOLERANCE, "output {out:?}: {e}");
    }
    // One-hot targets from labels.
    let e = worst_error(
        Activation::Relu,
        Activation::Sigmoid,
        Loss::MeanSquaredError,
        labels(3),
        3,
    );
    assert!(e < TOLERANCE, "{e}");
}

#[test]
fn sigmoid_binary_cross_entropy_on_labels_and_on_probabilities() {
    let e = worst_error(
        Activation::Sigmoid,
        Activation::Identity,
        Loss::SigmoidBinaryCrossEntropy,
        labels(2),
        1,
    );
    assert!(e < TOLERANCE, "{e}");
    let e = worst_error(
        Activation::Relu,
        Activation::Identity,
        Loss::SigmoidBinaryCrossEntropy,
        values(3, 0.5, 0.5),
        3,
    );
    assert!(e < TOLERANCE, "{e}");
}

#[test]
fn a_wrong_gradient_is_caught() {
    // The check must be able to fail: hand it gradients with one entry 1% off.
    let inputs = 5;
    let data = float_dataset("grad", pseudo_random(6 * inputs, 3), inputs, labels(3));
    let arch = Architecture::flat(
        inputs,
        &[(4, Activation::Sigmoid), (3, Activation::Identity)],
        Loss::SoftmaxCrossEntropy,
    );
    let net = Network::initialised(arch, Init::XavierNormal, 0.0, 1);
    let indices: Vec<usize> = (0..6).collect();
    let transform = InputTransform::identity();
    let mut work = StepBuffers::new(&net, &data, 6, false);
    let grads = analytic(&mut work, &net, (&data, &transform, &indices));
    let honest = compare(&net, &data, &transform, &indices, &grads, 100, 1);
    assert!(
        honest.iter().all(|c| c.max_rel_error < TOLERANCE),
        "{honest:?}"
    );

    let mut wrong = grads.clone();
    let target = net.weight_info(1).offset + 4;
    wrong[target] *= 1.01;
    let caught = compare(&net, &data, &transform, &indices, &wrong, 100, 1);
    assert!(caught[2].max_rel_error > 5e-3, "{caught:?}");
    assert!(caught
        .iter()
        .enumerate()
        .all(|(i, c)| i == 2 || c.max_rel_error < TOLERANCE));
}

#[test]
fn dropout_gradients_match_under_the_same_fixed_mask() {
    use backprop::eval::gradcheck::check_with_dropout;
    let inputs = 5;
    let samples = 6;
    let data = float_dataset(
        "grad",
        pseudo_random(samples * inputs, 3),
        inputs,
        labels(3),
    );
    let indices: Vec<usize> = (0..samples).collect();
    let transform = InputTransform::identity();
    // Sigmoid and tanh take their derivative from the output: the unmasked one must be used.
    for hidden in [Activation::Tanh, Activation::Sigmoid, Activation::Relu] {
        let arch = Architecture::flat(
            inputs,
            &[(6, hidden), (5, hidden), (3, Activation::Identity)],
            Loss::SoftmaxCrossEntropy,
        );
        let net = Network::initialised(arch, Init::XavierNormal, 0.05, 11);
        let rates = [0.5, 0.3];
        let masked = check_with_dropout(&net, &data, &transform, &indices, 1000, 5, &rates);
        let worst = masked.iter().map(|c| c.max_rel_error).fold(0.0, f64::max);
        assert!(worst < TOLERANCE, "{hidden:?}: {masked:?}");

        // The same gradients judged without the mask are far off: the mask is really applied.
        let mut work = StepBuffers::new(&net, &data, samples, false).with_dropout(&net, &rates, 5);
        let grads = analytic(&mut work, &net, (&data, &transform, &indices));
        let unmasked = compare(&net, &data, &transform, &indices, &grads, 1000, 1);
        let worst = unmasked.iter().map(|c| c.max_rel_error).fold(0.0, f64::max);
        assert!(
            worst > 0.05,
            "{hidden:?}: dropout changed nothing: {unmasked:?}"
        );
    }
}
