//! Optimizers over the flat parameter vector, PyTorch's update rules, one file per rule:
//! [`sgd`], [`momentum`], [`nesterov`], [`adam`] (with adamw). The learning rate over time is
//! [`schedule`].
//!
//! For every kind but adamw, weight decay λ is L2 regularisation: `g += λ p` (the gradient of
//! `λ/2 |p|²`), on weights only unless biases are asked for.
//!
//! The optimizer owns the whole update, including where the gradient products accumulate
//! ([`Optimizer::update`]): sgd and momentum fold them straight into the weights or the
//! velocity (one pass over memory less, no gradient buffer); the others, and any step whose
//! gradient someone wants to read, go through a gradient buffer. The arithmetic is the same;
//! only the rounding order differs.

pub mod adam;
pub mod momentum;
pub mod nesterov;
pub mod schedule;
pub mod sgd;

use crate::model::{Gradients, TensorInfo, TensorKind};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    Momentum,
    Nesterov,
    Adam,
    #[serde(rename = "adamw")]
    AdamW,
}

impl OptimizerKind {
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Nesterov => "nesterov",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }

    /// Names of the state vectors this kind keeps, in checkpoint order.
    pub fn state_names(&self) -> &'static [&'static str] {
        match self {
            OptimizerKind::Sgd => &[],
            OptimizerKind::Momentum | OptimizerKind::Nesterov => &["velocity"],
            OptimizerKind::Adam | OptimizerKind::AdamW => &["m", "v"],
        }
    }

    /// Whether the update can accumulate the gradient products itself, with no buffer.
    pub fn fuses(&self) -> bool {
        matches!(self, OptimizerKind::Sgd | OptimizerKind::Momentum)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    pub kind: OptimizerKind,
    pub momentum: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub decay_biases: bool,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decay_biases: false,
        }
    }
}

/// A contiguous run of parameters and whether weight decay applies to it.
#[derive(Clone, Debug)]
struct Segment {
    range: std::ops::Range<usize>,
    decay: bool,
}

#[derive(Clone, Debug)]
pub struct Optimizer {
    pub hyper: Hyper,
    /// Steps taken (Adam's bias correction needs it).
    pub steps: u64,
    /// One vector per [`OptimizerKind::state_names`], each as long as the parameters.
    pub state: Vec<Vec<f32>>,
    segments: Vec<Segment>,
}

impl Optimizer {
    pub fn new(hyper: Hyper, tensors: &[TensorInfo]) -> Self {
        let len = tensors
            .iter()
            .map(|t| t.offset + t.len())
            .max()
            .unwrap_or(0);
        let segments = tensors
            .iter()
            .map(|t| Segment {
                range: t.range(),
                decay: hyper.weight_decay != 0.0
                    && (t.kind == TensorKind::Weight || hyper.decay_biases),
            })
            .collect();
        Optimizer {
            hyper,
            steps: 0,
            state: hyper
                .kind
                .state_names()
                .iter()
                .map(|_| vec![0.0; len])
                .collect(),
            segments,
        }
    }

    /// L2 coefficient of a tensor (adamw decays separately).
    fn l2(&self, decays: bool) -> f32 {
        if decays && self.hyper.kind != OptimizerKind::AdamW {
            self.hyper.weight_decay
        } else {
            0.0
        }
    }

    fn decays(&self, t: &TensorInfo) -> bool {
        self.hyper.weight_decay != 0.0 && (t.kind == TensorKind::Weight || self.hyper.decay_biases)
    }

    /// One update from a batch's gradient products. With `buffer`, the plain gradient is
    /// written there (for whoever reads it after the step), each tensor's followed by the
    /// rule on that tensor; without, a rule that [`OptimizerKind::fuses`] accumulates the
    /// products straight into the parameters or its velocity. Allocation-free.
    ///
    /// Panics without a buffer for a rule that cannot fuse (the workspace always has one).
    pub fn update(
        &mut self,
        params: &mut [f32],
        grads: &mut Gradients,
        lr: f32,
        buffer: Option<&mut [f32]>,
    ) {
        if let Some(buffer) = buffer {
            // Tensor by tensor: each rule runs right after its gradient is written, while that
            // gradient is still in cache (the products never read the weights, see below).
            self.steps += 1;
            for (index, t) in grads.tensors().iter().enumerate() {
                debug_assert_eq!(self.segments[index].range, t.range());
                grads.accumulate_tensor(t, &mut buffer[t.range()], 1.0, 0.0);
                self.apply_segment(index, lr, params, buffer);
            }
            return;
        }
        let h = self.hyper;
        match h.kind {
            OptimizerKind::Sgd => {
                grads.accumulate_into(params, |t| {
                    sgd::fused_coefficients(lr, self.l2(self.decays(t)))
                });
            }
            OptimizerKind::Momentum => {
                // Tensor by tensor: each update runs right after its gradient product, while
                // the velocity it reads is still in cache. (The products read activations and
                // deltas, never the weights, so updating earlier tensors first is safe.)
                let velocity = &mut self.state[0];
                for (t, seg) in grads.tensors().iter().zip(&self.segments) {
                    let (v, p) = (&mut velocity[t.range()], &mut params[t.range()]);
                    let (alpha, beta) = momentum::fused_coefficients(h.momentum);
                    grads.accumulate_tensor(t, v, alpha, beta);
                    let l2 = if seg.decay { h.weight_decay } else { 0.0 };
                    momentum::finish_fused(p, v, lr, l2);
                }
            }
            kind => panic!("{} needs a gradient buffer", kind.name()),
        }
        self.steps += 1;
    }

    /// Applies one update from the gradient `grads` (laid out like the parameters).
    pub fn step(&mut self, lr: f32, params: &mut [f32], grads: &[f32]) {
        self.steps += 1;
        for index in 0..self.segments.len() {
            self.apply_segment(index, lr, params, grads);
        }
    }

    /// The rule of step [`Optimizer::steps`] on segment `index` of `params`, from the same
    /// range of `grads`.
    fn apply_segment(&mut self, index: usize, lr: f32, params: &mut [f32], grads: &[f32]) {
        let h = self.hyper;
        let seg = &self.segments[index];
        let r = seg.range.clone();
        let (p, g) = (&mut params[r.clone()], &grads[r.clone()]);
        let l2 = self.l2(seg.decay);
        match (h.kind, self.state.as_mut_slice()) {
            (OptimizerKind::Sgd, _) => sgd::step(p, g, lr, l2),
            (OptimizerKind::Momentum, [vel]) => {
                momentum::step(p, g, &mut vel[r], lr, h.momentum, l2)
            }
            (OptimizerKind::Nesterov, [vel]) => {
                nesterov::step(p, g, &mut vel[r], lr, h.momentum, l2)
            }
            (OptimizerKind::Adam | OptimizerKind::AdamW, [m, v]) => {
                let t = self.steps as i32;
                let decoupled = if seg.decay && h.kind == OptimizerKind::AdamW {
                    lr * h.weight_decay
                } else {
                    0.0
                };
                let s = adam::AdamStep {
                    lr,
                    beta1: h.beta1,
                    beta2: h.beta2,
                    eps: h.eps,
                    bias1: 1.0 - h.beta1.powi(t),
                    bias2: 1.0 - h.beta2.powi(t),
                    l2,
                    decoupled,
                };
                adam::step(p, g, &mut m[r.clone()], &mut v[r], s);
            }
            _ => unreachable!("state vectors are made for the kind in `new`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensors() -> Vec<TensorInfo> {
        vec![
            TensorInfo {
                name: "layer0.weight".into(),
                layer: 0,
                kind: TensorKind::Weight,
                offset: 0,
                rows: 1,
                cols: 2,
            },
            TensorInfo {
                name: "layer0.bias".into(),
                layer: 0,
                kind: TensorKind::Bias,
                offset: 2,
                rows: 1,
                cols: 1,
            },
        ]
    }

    fn one_step(hyper: Hyper, steps: usize) -> Vec<f32> {
        let mut opt = Optimizer::new(hyper, &tensors());
        let mut p = vec![1.0f32, -2.0, 0.5];
        for _ in 0..steps {
            opt.step(0.1, &mut p, &[0.5, 1.0, -1.0]);
        }
        p
    }

    fn close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn single_steps_match_hand_computed_values() {
        let kind = |kind| Hyper {
            kind,
            ..Hyper::default()
        };
        // sgd: p - 0.1 g
        close(&one_step(kind(OptimizerKind::Sgd), 1), &[0.95, -2.1, 0.6]);
        // momentum, two steps: v1 = g, v2 = 0.9 g + g = 1.9 g; p = p0 - 0.1 (g + 1.9 g)
        close(
            &one_step(kind(OptimizerKind::Momentum), 2),
            &[1.0 - 0.145, -2.0 - 0.29, 0.5 + 0.29],
        );
        // nesterov, one step: v = g; p -= 0.1 (g + 0.9 g)
        close(
            &one_step(kind(OptimizerKind::Nesterov), 1),
            &[1.0 - 0.095, -2.0 - 0.19, 0.5 + 0.19],
        );
        // adam's first step moves every parameter by lr * sign(g) (up to eps).
        close(&one_step(kind(OptimizerKind::Adam), 1), &[0.9, -2.1, 0.6]);
    }

    /// Minimises `Σ a_i (p_i - c_i)² / 2` (a badly scaled bowl) from zero; returns the distance
    /// to the minimum after `steps` full-gradient steps.
    fn solve_bowl(hyper: Hyper, lr: f32, steps: usize) -> (Vec<f32>, f32) {
        let a = [1.0f32, 4.0, 0.25];
        let c = [1.0f32, -2.0, 0.5];
        let tensors = vec![TensorInfo {
            name: "layer0.weight".into(),
            layer: 0,
            kind: TensorKind::Weight,
            offset: 0,
            rows: 1,
            cols: 3,
        }];
        let mut opt = Optimizer::new(hyper, &tensors);
        let mut p = vec![0.0f32; 3];
        let mut g = vec![0.0f32; 3];
        for _ in 0..steps {
            for i in 0..3 {
                g[i] = a[i] * (p[i] - c[i]);
            }
            opt.step(lr, &mut p, &g);
        }
        let dist = p
            .iter()
            .zip(c)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        (p, dist)
    }

    #[test]
    fn every_optimizer_solves_a_convex_bowl() {
        let cases = [
            (OptimizerKind::Sgd, 0.4, 400),
            (OptimizerKind::Momentum, 0.05, 400),
            (OptimizerKind::Nesterov, 0.05, 400),
            (OptimizerKind::Adam, 0.05, 2000),
            (OptimizerKind::AdamW, 0.05, 2000),
        ];
        for (kind, lr, steps) in cases {
            let hyper = Hyper {
                kind,
                ..Hyper::default()
            };
            let (p, dist) = solve_bowl(hyper, lr, steps);
            assert!(dist < 1e-4, "{kind:?} ended at {p:?}");
        }
    }

    #[test]
    fn l2_decay_moves_the_minimum_where_the_math_says() {
        // With decay λ the minimum of Σ a (p - c)²/2 + λ p²/2 is a c / (a + λ).
        let hyper = Hyper {
            weight_decay: 0.5,
            ..Hyper::default()
        };
        let (p, _) = solve_bowl(hyper, 0.3, 2000);
        let want = [1.0 / 1.5, 4.0 * -2.0 / 4.5, 0.25 * 0.5 / 0.75];
        close(&p, &want);
    }

    #[test]
    fn weight_decay_spares_biases_unless_asked_and_adamw_decouples_it() {
        let l2 = Hyper {
            weight_decay: 0.1,
            ..Hyper::default()
        };
        // g + λp on weights only: 0.5 + 0.1, 1.0 - 0.2.
        close(&one_step(l2, 1), &[1.0 - 0.06, -2.0 - 0.08, 0.6]);
        let with_bias = Hyper {
            decay_biases: true,
            ..l2
        };
        close(
            &one_step(with_bias, 1),
            &[0.94, -2.08, 0.5 + 0.1 * (1.0 - 0.05)],
        );
        let adamw = Hyper {
            kind: OptimizerKind::AdamW,
            weight_decay: 0.1,
            ..Hyper::default()
        };
        // p (1 - lr λ) - lr sign(g)
        close(&one_step(adamw, 1), &[0.99 - 0.1, -1.98 - 0.1, 0.6]);
    }
}
