//! adam: `m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²; p -= lr m̂ / (√v̂ + ε)`, with L2 in `g`;
//! adamw decouples the decay instead: `p -= lr λ p` before the step.

use crate::compute::elementwise;

#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// `1 - β1^t` and `1 - β2^t`.
    pub bias1: f32,
    pub bias2: f32,
    /// L2 added to the gradient (adam).
    pub l2: f32,
    /// `lr λ`, taken off the parameters first (adamw).
    pub decoupled: f32,
}

pub fn step(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: AdamStep) {
    elementwise::zip4(p, g, m, v, |p, g, m, v| {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
            let g = g + s.l2 * *p;
            *p -= s.decoupled * *p;
            *m = s.beta1 * *m + (1.0 - s.beta1) * g;
            *v = s.beta2 * *v + (1.0 - s.beta2) * g * g;
            *p -= s.lr * (*m / s.bias1) / ((*v / s.bias2).sqrt() + s.eps);
        }
    });
}
