//! Cheap health statistics, taken on a few training steps per epoch: dead ReLU units,
//! saturated sigmoid/tanh units, gradient norms, output sizes and the update-to-weight ratio
//! per layer, and the loss of the step probed first. [`DataFacts`] are the figures of the
//! data that the diagnosis weighs with them. What they mean for the user is written by the
//! output layer (`output::diagnosis`).

use crate::data::{Dataset, InputTransform, TargetData};
use crate::model::{Activation, Activations, Network};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerDiagnostics {
    pub layer: usize,
    pub activation: String,
    /// ReLU family: fraction of units inactive on every sample of a probed batch.
    pub dead_fraction: Option<f64>,
    /// Sigmoid/tanh: fraction of activations within 1% of an asymptote.
    pub saturated_fraction: Option<f64>,
    /// `|Δw| / |w|` of one step.
    pub update_ratio: f64,
    pub grad_norm: f64,
    /// Root mean square of the layer's outputs: a signal that vanishes shows here.
    #[serde(default)]
    pub output_rms: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    pub layers: Vec<LayerDiagnostics>,
    pub grad_norm: f64,
    /// Steps probed this epoch.
    pub probes: usize,
    /// Batch-mean loss of the epoch's first probed step, before its update.
    #[serde(default)]
    pub first_loss: f64,
    /// The largest `|Δw| / |w|` of any layer in any probed step (the mean hides one wild step).
    #[serde(default)]
    pub max_update_ratio: f64,
}

/// Gathers [`Diagnostics`] on every `every`-th step; buffers are allocated once.
pub struct Probe {
    every: usize,
    before: Vec<f32>,
    alive: Vec<bool>,
    sums: Diagnostics,
}

fn norm(v: &[f32]) -> f64 {
    sum_of_squares(v, |x, _| x, v).sqrt()
}

fn distance(a: &[f32], b: &[f32]) -> f64 {
    sum_of_squares(a, |x, y| x - y, b).sqrt()
}

/// Σ term(a_i, b_i)² in f64, over 8 interleaved partial sums: the loop vectorizes (a probe
/// reads every parameter several times) and the order of additions stays fixed.
fn sum_of_squares(a: &[f32], term: impl Fn(f64, f64) -> f64, b: &[f32]) -> f64 {
    let square = |(&x, &y): (&f32, &f32)| term(f64::from(x), f64::from(y)).powi(2);
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = a8.remainder().iter().zip(b8.remainder()).map(square).sum();
    let mut lanes = [0.0f64; 8];
    for (x, y) in a8.zip(b8) {
        for (lane, pair) in lanes.iter_mut().zip(x.iter().zip(y)) {
            *lane += square(pair);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

impl Probe {
    pub fn new(net: &Network, every: usize) -> Self {
        let widest = net.arch.layers.iter().map(|l| l.outputs).max().unwrap_or(0);
        Probe {
            every: every.max(1),
            before: vec![0.0; net.params.len()],
            alive: vec![false; widest],
            sums: Self::empty(net),
        }
    }

    fn empty(net: &Network) -> Diagnostics {
        Diagnostics {
            layers: net
                .arch
                .layers
                .iter()
                .enumerate()
                .map(|(l, spec)| LayerDiagnostics {
                    layer: l,
                    activation: spec.activation.name().to_string(),
                    ..LayerDiagnostics::default()
                })
                .collect(),
            ..Diagnostics::default()
        }
    }

    pub fn due(&self, batch: usize) -> bool {
        batch.is_multiple_of(self.every)
    }

    pub fn before_step(&mut self, net: &Network) {
        self.before.copy_from_slice(&net.params);
    }

    /// After a step of batch-mean loss `loss` that left its plain gradient in `grads` and its
    /// outputs in `acts`.
    pub fn after_step(
        &mut self,
        net: &Network,
        grads: &[f32],
        acts: &Activations,
        n: usize,
        loss: f64,
    ) {
        if self.sums.probes == 0 {
            self.sums.first_loss = loss;
        }
        self.sums.probes += 1;
        self.sums.grad_norm += norm(grads);
        let hidden = net.layer_count() - 1;
        for (l, spec) in net.arch.layers.iter().enumerate() {
            let w = net.weight_info(l).range();
            let d = &mut self.sums.layers[l];
            d.grad_norm += norm(&grads[w.clone()]);
            let ratio = distance(&net.params[w.clone()], &self.before[w.clone()])
                / norm(&self.before[w]).max(1e-30);
            d.update_ratio += ratio;
            self.sums.max_update_ratio = self.sums.max_update_ratio.max(ratio);
            let out = acts.layer_output(l, n);
            let out = out.as_slice().expect("row-major");
            d.output_rms += norm(out) / (out.len().max(1) as f64).sqrt();
            if l == hidden {
                continue;
            }
            match spec.activation {
                Activation::Relu | Activation::LeakyRelu { .. } => {
                    let alive = &mut self.alive[..spec.outputs];
                    alive.fill(false);
                    for row in out.chunks_exact(spec.outputs) {
                        for (a, &v) in alive.iter_mut().zip(row) {
                            *a |= v > 0.0;
                        }
                    }
                    let dead = alive.iter().filter(|a| !**a).count();
                    *d.dead_fraction.get_or_insert(0.0) += dead as f64 / spec.outputs as f64;
                }
                Activation::Sigmoid | Activation::Tanh => {
                    let (lo, hi) = if spec.activation == Activation::Sigmoid {
                        (0.01, 0.99)
                    } else {
                        (-0.99, 0.99)
                    };
                    let saturated = out.iter().filter(|&&v| v <= lo || v >= hi).count();
                    *d.saturated_fraction.get_or_insert(0.0) +=
                        saturated as f64 / out.len().max(1) as f64;
                }
                Activation::Identity | Activation::Silu => {}
            }
        }
    }

    /// This epoch's averages; starts the next epoch afresh.
    pub fn take_epoch(&mut self) -> Diagnostics {
        let mut d = self.sums.clone();
        let k = d.probes.max(1) as f64;
        d.grad_norm /= k;
        for l in &mut d.layers {
            l.grad_norm /= k;
            l.update_ratio /= k;
            l.output_rms /= k;
            l.dead_fraction = l.dead_fraction.map(|v| v / k);
            l.saturated_fraction = l.saturated_fraction.map(|v| v / k);
        }
        for l in &mut self.sums.layers {
            *l = LayerDiagnostics {
                layer: l.layer,
                activation: std::mem::take(&mut l.activation),
                ..LayerDiagnostics::default()
            };
        }
        self.sums.grad_norm = 0.0;
        self.sums.probes = 0;
        self.sums.max_update_ratio = 0.0;
        d
    }
}

/// Figures of the training data as the network sees it, for the diagnosis.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataFacts {
    /// The largest `|x|` of the (transformed) inputs over the rows measured.
    pub input_max: f64,
    /// The smallest and largest regression target (none for class labels).
    pub target_range: Option<(f64, f64)>,
}

/// Rows [`DataFacts::measure`] reads: enough to see the scale, quick on any dataset.
const FACT_ROWS: usize = 2000;

impl DataFacts {
    /// Measured on the first rows of `rows` of `data`, through `transform`.
    pub fn measure(data: &Dataset, transform: &InputTransform, rows: &[usize]) -> Self {
        let (mul, add) = if data.is_bytes() {
            transform.byte_coefficients()
        } else {
            transform.float_coefficients()
        };
        let mut raw = vec![0.0; data.width()];
        let mut facts = DataFacts::default();
        for &i in rows.iter().take(FACT_ROWS) {
            data.raw_features(i, &mut raw);
            for &v in &raw {
                facts.input_max = facts.input_max.max(f64::from(v * mul + add).abs());
            }
            if let TargetData::Values { .. } = data.targets {
                for &t in data.values(i) {
                    let (lo, hi) = facts.target_range.get_or_insert((f64::MAX, f64::MIN));
                    *lo = lo.min(f64::from(t));
                    *hi = hi.max(f64::from(t));
                }
            }
        }
        facts
    }
}

/// Where a non-finite loss came from, for the divergence message. `grads` is the gradient
/// of the batch that diverged, where there is one (never an older step's).
pub fn describe_divergence(net: &Network, grads: Option<&[f32]>, loss: f64) -> String {
    let bad = |v: &[f32]| v.iter().any(|x| !x.is_finite());
    let first_bad_gradient = grads.and_then(|g| net.tensors.iter().find(|t| bad(&g[t.range()])));
    if let Some(t) = first_bad_gradient {
        return format!(
            "loss is {loss}; the gradient of {} (layer {}) is the first with NaN/inf values",
            t.name, t.layer
        );
    }
    if let Some(t) = net.tensors.iter().find(|t| bad(&net.params[t.range()])) {
        return format!(
            "loss is {loss}; {} (layer {}) holds NaN/inf values",
            t.name, t.layer
        );
    }
    format!("loss is {loss} while all weights are finite: the output layer overflowed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_and_distances_match_a_plain_sum_at_every_length() {
        for len in [0usize, 1, 7, 8, 9, 1001] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain_norm: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            let plain_distance: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                (norm(&a) - plain_norm).abs() <= 1e-12 * (1.0 + plain_norm),
                "len {len}"
            );
            let d = distance(&a, &b);
            assert!((d - plain_distance).abs() <= 1e-12 * (1.0 + d), "len {len}");
        }
    }
}
