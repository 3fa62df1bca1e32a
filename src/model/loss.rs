//! Losses with their output layers fused in: softmax + cross-entropy and sigmoid + binary
//! cross-entropy take logits, so their gradient is simply `p - y` (never a softmax derivative
//! applied on top); mean squared error takes the output layer's activation.

use super::activation::{sigmoid, Activation};
use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    #[serde(alias = "cross_entropy")]
    SoftmaxCrossEntropy,
    #[serde(alias = "mse")]
    MeanSquaredError,
    #[serde(alias = "bce", alias = "binary_cross_entropy")]
    SigmoidBinaryCrossEntropy,
}

/// A batch's targets: class labels, or one row of values per sample.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    Labels(&'a [u32]),
    Values(ArrayView2<'a, f32>),
}

impl Targets<'_> {
    fn value(&self, row: usize, col: usize) -> f32 {
        match self {
            Targets::Labels(labels) => f32::from(u8::from(labels[row] as usize == col)),
            Targets::Values(v) => v[[row, col]],
        }
    }
}

/// How the training loss departs from the plain one (evaluation scores the plain one).
#[derive(Clone, Copy, Debug, Default)]
pub struct Shaping<'a> {
    /// Softmax cross-entropy against `(1 - ε) y + ε / K` (0 for none).
    pub label_smoothing: f32,
    /// Each sample's loss (and its gradient) times its class' weight (labelled data only).
    pub class_weights: Option<&'a [f32]>,
}

/// Sums over a batch: loss summed over samples (so batches combine exactly into an epoch
/// mean), and correct predictions out of `counted` (0 when accuracy does not apply).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Score {
    pub loss_sum: f64,
    pub correct: usize,
    pub counted: usize,
    pub samples: usize,
}

impl Score {
    pub fn add(&mut self, other: Score) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.counted += other.counted;
        self.samples += other.samples;
    }

    pub fn mean_loss(&self) -> f64 {
        if self.samples == 0 {
            f64::NAN
        } else {
            self.loss_sum / self.samples as f64
        }
    }

    pub fn accuracy(&self) -> Option<f64> {
        (self.counted > 0).then(|| self.correct as f64 / self.counted as f64)
    }
}

impl Loss {
    pub fn name(&self) -> &'static str {
        match self {
            Loss::SoftmaxCrossEntropy => "softmax_cross_entropy",
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::SigmoidBinaryCrossEntropy => "sigmoid_binary_cross_entropy",
        }
    }

    /// Whether the last layer must emit raw logits (the loss applies its own squashing).
    pub fn takes_logits(&self) -> bool {
        !matches!(self, Loss::MeanSquaredError)
    }

    /// Output width for a classification dataset of `classes` classes.
    pub fn outputs_for_classes(&self, classes: usize) -> usize {
        match self {
            Loss::SigmoidBinaryCrossEntropy if classes == 2 => 1,
            _ => classes,
        }
    }

    /// Scores `out` (the last layer's output for `n` rows) and, if `delta` is given, writes
    /// the gradient of the batch-mean loss with respect to the last layer's pre-activation;
    /// `shaping` gives the training loss' label smoothing and class weights.
    pub fn score(
        &self,
        out: ArrayView2<f32>,
        output_activation: Activation,
        targets: Targets,
        mut delta: Option<ArrayViewMut2<f32>>,
        shaping: Shaping,
    ) -> Score {
        let n = out.nrows();
        let mut score = Score::default();
        if n == 0 {
            return score;
        }
        let weight = |r: usize| match (shaping.class_weights, targets) {
            (Some(w), Targets::Labels(labels)) => w[labels[r] as usize],
            _ => 1.0,
        };
        let smoothing = shaping.label_smoothing;
        let score_row = |r: usize, z: &[f32], d: Option<&mut [f32]>| {
            let w = weight(r);
            let inv_n = w / n as f32;
            let mut s = match self {
                Loss::SoftmaxCrossEntropy => {
                    softmax_cross_entropy_row(z, targets, r, d, inv_n, smoothing)
                }
                Loss::MeanSquaredError => {
                    squared_error_row(z, output_activation, targets, r, d, inv_n)
                }
                Loss::SigmoidBinaryCrossEntropy => {
                    binary_cross_entropy_row(z, targets, r, d, inv_n)
                }
            };
            s.loss_sum *= f64::from(w);
            s
        };
        let rows = out.rows().into_iter().enumerate();
        match delta.as_mut() {
            Some(delta) => {
                for ((r, z), d) in rows.zip(delta.rows_mut()) {
                    let d = d.into_slice().expect("row-major delta");
                    score.add(score_row(
                        r,
                        z.as_slice().expect("row-major output"),
                        Some(d),
                    ));
                }
            }
            None => {
                for (r, z) in rows {
                    score.add(score_row(r, z.as_slice().expect("row-major output"), None));
                }
            }
        }
        score
    }

    /// Turns one row of outputs into what a user reads: class probabilities for the
    /// classification losses, the values themselves for regression.
    pub fn to_probabilities(&self, row: &mut [f32]) {
        match self {
            Loss::SoftmaxCrossEntropy => {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                row.iter_mut().for_each(|v| *v /= sum);
            }
            Loss::SigmoidBinaryCrossEntropy => row.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Loss::MeanSquaredError => {}
        }
    }

    /// Per-sample loss in f64 from outputs already passed through the output activation
    /// (logits for the fused losses): the reference for gradient checks.
    pub fn sample_loss_f64(&self, out: &[f64], targets: Targets, row: usize) -> f64 {
        match self {
            Loss::SoftmaxCrossEntropy => {
                let Targets::Labels(labels) = targets else {
                    panic!("softmax cross-entropy needs labels")
                };
                let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = out.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
                lse - out[labels[row] as usize]
            }
            Loss::MeanSquaredError => {
                out.iter()
                    .enumerate()
                    .map(|(c, v)| (v - f64::from(target_value(targets, row, c, out.len()))).powi(2))
                    .sum::<f64>()
                    / out.len() as f64
            }
            Loss::SigmoidBinaryCrossEntropy => {
                out.iter()
                    .enumerate()
                    .map(|(c, &z)| {
                        let y = f64::from(target_value(targets, row, c, out.len()));
                        z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
                    })
                    .sum::<f64>()
                    / out.len() as f64
            }
        }
    }
}

/// Target of output `col` of `row`: labels become one-hot over several outputs, and the
/// label itself (0 or 1) for a single output.
fn target_value(targets: Targets, row: usize, col: usize, width: usize) -> f32 {
    match targets {
        Targets::Labels(labels) if width == 1 => labels[row] as f32,
        t => t.value(row, col),
    }
}

/// Index of the first largest value.
pub fn argmax(z: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = i;
        }
    }
    best
}

fn softmax_cross_entropy_row(
    z: &[f32],
    targets: Targets,
    row: usize,
    delta: Option<&mut [f32]>,
    inv_n: f32,
    smoothing: f32,
) -> Score {
    let Targets::Labels(labels) = targets else {
        unreachable!("softmax cross-entropy is built only for labelled data")
    };
    let label = labels[row] as usize;
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum_exp: f32 = match delta {
        Some(d) => {
            // Store exp(z - max) in delta, then normalise and subtract the one-hot target.
            let mut sum = 0.0;
            for (dv, &zv) in d.iter_mut().zip(z) {
                *dv = (zv - max).exp();
                sum += *dv;
            }
            let scale = inv_n / sum;
            // p - ((1 - ε) y + ε / K), fused into the same pass.
            let uniform = inv_n * smoothing / z.len() as f32;
            d.iter_mut().for_each(|dv| *dv = *dv * scale - uniform);
            d[label] -= inv_n * (1.0 - smoothing);
            sum
        }
        None => z.iter().map(|&zv| (zv - max).exp()).sum(),
    };
    // -Σ_k t_k log p_k with t = (1 - ε) y + ε / K, and log p_k = z_k - lse.
    let lse = f64::from(sum_exp).ln() + f64::from(max);
    let mut loss = lse - f64::from(z[label]);
    if smoothing != 0.0 {
        let mean_z = z.iter().map(|&v| f64::from(v)).sum::<f64>() / z.len() as f64;
        let eps = f64::from(smoothing);
        loss = (1.0 - eps) * loss + eps * (lse - mean_z);
    }
    Score {
        loss_sum: loss,
        correct: usize::from(argmax(z) == label),
        counted: 1,
        samples: 1,
    }
}

fn squared_error_row(
    a: &[f32],
    act: Activation,
    targets: Targets,
    row: usize,
    delta: Option<&mut [f32]>,
    inv_n: f32,
) -> Score {
    let width = a.len();
    let scale = 2.0 * inv_n / width as f32;
    let mut sum = 0.0f64;
    let mut d = delta;
    for (c, &av) in a.iter().enumerate() {
        let err = av - target_value(targets, row, c, width);
        sum += f64::from(err) * f64::from(err);
        if let Some(d) = d.as_deref_mut() {
            d[c] = scale * err * act.derivative_from_output(av);
        }
    }
    let (correct, counted) = match targets {
        // MSE on labels (one-hot targets): accuracy still means the arg-max class.
        Targets::Labels(labels) if width > 1 => (usize::from(argmax(a) == labels[row] as usize), 1),
        _ => (0, 0),
    };
    Score {
        loss_sum: sum / width as f64,
        correct,
        counted,
        samples: 1,
    }
}

fn binary_cross_entropy_row(
    z: &[f32],
    targets: Targets,
    row: usize,
    delta: Option<&mut [f32]>,
    inv_n: f32,
) -> Score {
    let width = z.len();
    let scale = inv_n / width as f32;
    let mut sum = 0.0f64;
    let mut correct = 0;
    let mut d = delta;
    for (c, &zv) in z.iter().enumerate() {
        let y = target_value(targets, row, c, width);
        let zf = f64::from(zv);
        // log(1 + exp(z)) - z*y, written so that neither branch overflows.
        sum += zf.max(0.0) - zf * f64::from(y) + (-zf.abs()).exp().ln_1p();
        let p = sigmoid(zv);
        correct += usize::from((p > 0.5) == (y > 0.5));
        if let Some(d) = d.as_deref_mut() {
            d[c] = (p - y) * scale;
        }
    }
    Score {
        loss_sum: sum / width as f64,
        correct,
        counted: width,
        samples: 1,
    }
}

/// The class a row of outputs votes for.
pub fn predicted_class(loss: Loss, row: &[f32]) -> usize {
    if row.len() == 1 {
        // A single sigmoid output (or a regression used as a 0/1 classifier).
        let threshold = if loss == Loss::SigmoidBinaryCrossEntropy {
            0.0
        } else {
            0.5
        };
        return usize::from(row[0] > threshold);
    }
    argmax(row)
}

#[cfg(test)]
mod tests;
