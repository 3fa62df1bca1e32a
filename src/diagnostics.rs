//! Cheap health statistics, taken on a few training steps per epoch: dead ReLU units,
//! saturated sigmoid/tanh units, gradient norms and the update-to-weight ratio per layer;
//! and the warnings they lead to, each with its likely cause and fix.

use crate::activation::Activation;
use crate::net::Network;
use crate::train::{EpochRecord, StepBuffers};
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
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    pub layers: Vec<LayerDiagnostics>,
    pub grad_norm: f64,
    /// Steps probed this epoch.
    pub probes: usize,
}

/// Gathers [`Diagnostics`] on every `every`-th step; buffers are allocated once.
pub struct Probe {
    every: usize,
    before: Vec<f32>,
    alive: Vec<bool>,
    sums: Diagnostics,
}

fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        .sqrt()
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

    pub fn after_step(&mut self, net: &Network, work: &StepBuffers, n: usize) {
        self.sums.probes += 1;
        self.sums.grad_norm += norm(&work.grads);
        let hidden = net.layer_count() - 1;
        for (l, spec) in net.arch.layers.iter().enumerate() {
            let w = net.weight_info(l).range();
            let d = &mut self.sums.layers[l];
            d.grad_norm += norm(&work.grads[w.clone()]);
            d.update_ratio += distance(&net.params[w.clone()], &self.before[w.clone()])
                / norm(&self.before[w]).max(1e-30);
            if l == hidden {
                continue;
            }
            let out = work.acts.layer_output(l, n);
            let out = out.as_slice().expect("row-major");
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
                Activation::Identity => {}
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
        d
    }
}

/// Where a non-finite loss came from, for the divergence message.
pub fn describe_divergence(net: &Network, grads: &[f32], loss: f64) -> String {
    let bad = |v: &[f32]| v.iter().any(|x| !x.is_finite());
    if let Some(t) = net.tensors.iter().find(|t| bad(&grads[t.range()])) {
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

/// Warnings about the last epoch of `history`, each with the likely cause and the fix, in
/// one sentence. `steps` is the number of updates so far: a few say little.
pub fn warnings(history: &[EpochRecord], net: &Network, steps: u64) -> Vec<String> {
    let mut out = Vec::new();
    let Some(record) = history.last() else {
        return out;
    };
    if steps < JUDGE_AFTER_STEPS {
        return out;
    }
    if let [first, .., previous, _] = history {
        if record.train_loss > 1.25 * previous.train_loss {
            out.push(format!(
                "training loss rose in epoch {} ({:.4} after {:.4}): the learning rate is likely \
                 too high; lower it, or add a decaying schedule",
                record.epoch, record.train_loss, previous.train_loss
            ));
        } else if record.train_loss > 0.99 * first.train_loss {
            out.push(format!(
                "training loss has not decreased since epoch 1 ({:.4}, then {:.4}): the network \
                 is not learning; check the learning rate (too low or far too high) and the init",
                first.train_loss, record.train_loss
            ));
        }
    }
    let Some(diag) = &record.diagnostics else {
        return out;
    };
    if let Some(chance) = chance_loss(net) {
        let stalled = (record.train_loss - chance).abs() < 0.03 * chance;
        if stalled {
            out.push(format!(
                "training loss {:.4} is still at chance level ({chance:.4}) after epoch {}: the \
                 signal is not getting through, most often because the weights start too small \
                 (e.g. normal std 0.01 on a deep ReLU net); use init = \"auto\" (He for ReLU, \
                 Xavier for sigmoid/tanh) or a higher lr",
                record.train_loss, record.epoch
            ));
        }
    }
    for l in &diag.layers {
        if let Some(dead) = l.dead_fraction.filter(|&d| d > 0.5) {
            out.push(format!(
                "{:.0}% of the ReLU units of layer {} are dead (zero for a whole batch): the lr is \
                 likely too high or the biases too negative; lower the lr or use leaky_relu",
                100.0 * dead,
                l.layer
            ));
        }
        if let Some(sat) = l.saturated_fraction.filter(|&s| s > 0.5) {
            out.push(format!(
                "{:.0}% of the {} activations of layer {} are saturated (gradient ~0): inputs are \
                 likely unscaled or the weights too large; scale inputs to [0, 1] (data.scale = \
                 \"unit\") and use Xavier init",
                100.0 * sat,
                l.activation,
                l.layer
            ));
        }
    }
    let ratios: Vec<f64> = diag.layers.iter().map(|l| l.update_ratio).collect();
    let worst_high = ratios.iter().copied().fold(0.0, f64::max);
    let worst_low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    if worst_high > 0.1 {
        out.push(format!(
            "an update changes the weights by {:.1}% of their size (about 0.1% is healthy): the lr \
             is too high; divide it by 10",
            100.0 * worst_high
        ));
    } else if worst_low < 1e-6 {
        out.push(format!(
            "an update changes some layer's weights by only {worst_low:.1e} of their size (about \
             1e-3 is healthy): the lr is too low or the gradient vanishes; raise the lr or check \
             the init"
        ));
    }
    out
}

/// The loss of a model that knows nothing: ln(classes) for softmax cross-entropy.
fn chance_loss(net: &Network) -> Option<f64> {
    match net.arch.loss {
        crate::loss::Loss::SoftmaxCrossEntropy if net.arch.outputs() > 1 => {
            Some((net.arch.outputs() as f64).ln())
        }
        _ => None,
    }
}

/// Updates before the warnings judge a run: early epochs of tiny datasets are noise.
const JUDGE_AFTER_STEPS: u64 = 100;

/// One line per layer for `--diagnostics`.
pub fn lines(diag: &Diagnostics) -> Vec<String> {
    diag.layers
        .iter()
        .map(|l| {
            let mut s = format!(
                "  layer {} ({}): |grad| {:.3e}, update/weight {:.2e}",
                l.layer, l.activation, l.grad_norm, l.update_ratio
            );
            if let Some(d) = l.dead_fraction {
                s += &format!(", dead {:.1}%", 100.0 * d);
            }
            if let Some(v) = l.saturated_fraction {
                s += &format!(", saturated {:.1}%", 100.0 * v);
            }
            s
        })
        .collect()
}
