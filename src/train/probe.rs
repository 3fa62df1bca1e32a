//! Cheap health statistics, taken on a few training steps per epoch: dead ReLU units,
//! saturated sigmoid/tanh units, gradient norms and the update-to-weight ratio per layer.
//! What they mean for the user is written by the output layer (`output::diagnosis`).

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

    /// After a step that left its plain gradient in `grads` and its outputs in `acts`.
    pub fn after_step(&mut self, net: &Network, grads: &[f32], acts: &Activations, n: usize) {
        self.sums.probes += 1;
        self.sums.grad_norm += norm(grads);
        let hidden = net.layer_count() - 1;
        for (l, spec) in net.arch.layers.iter().enumerate() {
            let w = net.weight_info(l).range();
            let d = &mut self.sums.layers[l];
            d.grad_norm += norm(&grads[w.clone()]);
            d.update_ratio += distance(&net.params[w.clone()], &self.before[w.clone()])
                / norm(&self.before[w]).max(1e-30);
            if l == hidden {
                continue;
            }
            let out = acts.layer_output(l, n);
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
