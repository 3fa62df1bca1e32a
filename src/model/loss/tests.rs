//! The losses' values and deltas against hand computations and finite differences.

use super::*;
use ndarray::{array, Array2};

#[test]
fn softmax_cross_entropy_gradient_is_p_minus_y_over_n() {
    let z = array![[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]];
    let labels = [2u32, 0];
    let mut delta = Array2::zeros((2, 3));
    let s = Loss::SoftmaxCrossEntropy.score(
        z.view(),
        Activation::Identity,
        Targets::Labels(&labels),
        Some(delta.view_mut()),
        Shaping::default(),
    );
    let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|v| v.exp()).collect();
    let sum: f32 = e.iter().sum();
    for c in 0..3 {
        let p = e[c] / sum;
        let y = if c == 2 { 1.0 } else { 0.0 };
        assert!((delta[[0, c]] - (p - y) / 2.0).abs() < 1e-6);
        let y1 = if c == 0 { 1.0 } else { 0.0 };
        assert!((delta[[1, c]] - (1.0 / 3.0 - y1) / 2.0).abs() < 1e-6);
    }
    let want = (sum.ln() - 3.0) as f64 + 3f64.ln();
    assert!((s.loss_sum - want).abs() < 1e-5);
    // Row 2 ties everywhere; the first maximum (class 0) is its label.
    assert_eq!((s.correct, s.counted, s.samples), (2, 2, 2));
}

#[test]
fn huge_logits_stay_finite() {
    let z = array![[1000.0f32, -1000.0, 0.0]];
    let s = Loss::SoftmaxCrossEntropy.score(
        z.view(),
        Activation::Identity,
        Targets::Labels(&[1]),
        None,
        Shaping::default(),
    );
    assert!((s.loss_sum - 2000.0).abs() < 1e-3, "{}", s.loss_sum);
    let b = Loss::SigmoidBinaryCrossEntropy.score(
        array![[-500.0f32]].view(),
        Activation::Identity,
        Targets::Labels(&[1]),
        None,
        Shaping::default(),
    );
    assert!((b.loss_sum - 500.0).abs() < 1e-3);
}

#[test]
fn mean_squared_error_averages_over_outputs_and_samples() {
    let a = array![[1.0f32, 3.0], [0.0, 0.0]];
    let y = array![[0.0f32, 1.0], [1.0, 1.0]];
    let mut delta = Array2::zeros((2, 2));
    let s = Loss::MeanSquaredError.score(
        a.view(),
        Activation::Identity,
        Targets::Values(y.view()),
        Some(delta.view_mut()),
        Shaping::default(),
    );
    assert!((s.mean_loss() - (1.0 + 4.0 + 1.0 + 1.0) / 4.0).abs() < 1e-9);
    assert_eq!(delta, array![[0.5f32, 1.0], [-0.5, -0.5]]);
    assert_eq!(s.accuracy(), None);
}

/// The smoothed loss in f64, written out independently of the f32 pass.
fn smoothed_loss(z: &[f64], label: usize, eps: f64) -> f64 {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
    let k = z.len() as f64;
    z.iter()
        .enumerate()
        .map(|(i, &v)| {
            let t = if i == label { 1.0 - eps } else { 0.0 } + eps / k;
            -t * (v - lse)
        })
        .sum()
}

#[test]
fn label_smoothing_gradient_matches_finite_differences() {
    let z = [0.3f32, -1.2, 2.0, 0.5];
    let labels = [2u32];
    for eps in [0.0f32, 0.1, 0.3] {
        let out = ndarray::Array2::from_shape_vec((1, 4), z.to_vec()).unwrap();
        let mut delta = ndarray::Array2::zeros((1, 4));
        let s = Loss::SoftmaxCrossEntropy.score(
            out.view(),
            Activation::Identity,
            Targets::Labels(&labels),
            Some(delta.view_mut()),
            Shaping {
                label_smoothing: eps,
                class_weights: None,
            },
        );
        let z64: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
        let want = smoothed_loss(&z64, 2, f64::from(eps));
        assert!(
            (s.loss_sum - want).abs() < 1e-5,
            "eps {eps}: {} vs {want}",
            s.loss_sum
        );
        for i in 0..4 {
            let h = 1e-6;
            let (mut up, mut down) = (z64.clone(), z64.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (smoothed_loss(&up, 2, f64::from(eps))
                - smoothed_loss(&down, 2, f64::from(eps)))
                / (2.0 * h);
            let analytic = f64::from(delta[[0, i]]);
            assert!(
                (numeric - analytic).abs() < 1e-5,
                "eps {eps}, logit {i}: {numeric} vs {analytic}"
            );
        }
    }
}

#[test]
fn a_class_weight_scales_that_class_loss_and_gradient() {
    let z = array![[0.3f32, -1.2, 2.0], [1.0, 0.0, -1.0]];
    let labels = [1u32, 0];
    let weights = [1.0f32, 7.5, 1.0];
    for loss in [Loss::SoftmaxCrossEntropy, Loss::MeanSquaredError] {
        let run = |class_weights| {
            let mut delta = Array2::zeros((2, 3));
            let shaping = Shaping {
                label_smoothing: 0.0,
                class_weights,
            };
            let t = Targets::Labels(&labels);
            let s = loss.score(
                z.view(),
                Activation::Identity,
                t,
                Some(delta.view_mut()),
                shaping,
            );
            (s, delta)
        };
        let (plain, plain_delta) = run(None);
        let (weighted, weighted_delta) = run(Some(&weights));
        // The rare class (row 0, weight 7.5) moves 7.5 times as far; row 1 (weight 1) not.
        for c in 0..3 {
            let (p, w) = (plain_delta[[0, c]], weighted_delta[[0, c]]);
            assert!(
                (w - 7.5 * p).abs() <= 1e-6 * p.abs().max(1e-3),
                "{loss:?} {c}"
            );
            assert_eq!(weighted_delta[[1, c]], plain_delta[[1, c]]);
        }
        let row = |s: &Score| s.loss_sum;
        assert!(row(&weighted) > row(&plain), "{loss:?}");
        assert_eq!(weighted.correct, plain.correct);
    }
}
