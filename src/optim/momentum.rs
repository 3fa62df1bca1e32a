//! momentum: `v = μ v + g + λ p; p -= lr v`. Fused: `sgemm` accumulates `g` straight into
//! the velocity with `beta = μ`; [`finish_fused`] adds the decay and moves the parameters.

use crate::compute::elementwise;

/// `(alpha, beta)` for accumulating a tensor's gradient product into its velocity.
pub fn fused_coefficients(momentum: f32) -> (f32, f32) {
    (1.0, momentum)
}

/// After the products accumulated `v = μ v + g`: `v += λ p; p -= lr v`.
pub fn finish_fused(p: &mut [f32], v: &mut [f32], lr: f32, l2: f32) {
    if l2 == 0.0 {
        // The velocity is only read: no store back (a third of this pass' traffic).
        return elementwise::rows2(p, v, 1, elementwise::Cost::Cheap, |p, vel| {
            for (p, v) in p.iter_mut().zip(vel) {
                *p -= lr * *v;
            }
        });
    }
    elementwise::pairs_mut(p, v, |p, vel| {
        for (p, v) in p.iter_mut().zip(vel) {
            *v += l2 * *p;
            *p -= lr * *v;
        }
    });
}

pub fn step(p: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, momentum: f32, l2: f32) {
    elementwise::zip3(p, g, v, |p, g, vel| {
        for ((p, &g), v) in p.iter_mut().zip(g).zip(vel) {
            *v = momentum * *v + g + l2 * *p;
            *p -= lr * *v;
        }
    });
}
