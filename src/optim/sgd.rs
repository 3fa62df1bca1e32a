//! sgd: `p -= lr (g + λ p)`. Fused: `sgemm` accumulates `-lr g` straight into the weights,
//! with `beta = 1 - lr λ` doing the decay, so the step needs no gradient buffer.

use crate::compute::elementwise;

/// `(alpha, beta)` for accumulating a tensor's gradient product into its parameters.
pub fn fused_coefficients(lr: f32, l2: f32) -> (f32, f32) {
    (-lr, 1.0 - lr * l2)
}

pub fn step(p: &mut [f32], g: &[f32], lr: f32, l2: f32) {
    elementwise::rows2(p, g, 1, elementwise::Cost::Cheap, |p, g| {
        for (p, &g) in p.iter_mut().zip(g) {
            *p -= lr * (g + l2 * *p);
        }
    });
}
