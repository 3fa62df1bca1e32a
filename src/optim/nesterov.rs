//! nesterov: `g' = g + λ p; v = μ v + g'; p -= lr (g' + μ v)` (PyTorch's form).

use crate::compute::elementwise;

pub fn step(p: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, momentum: f32, l2: f32) {
    elementwise::zip3(p, g, v, |p, g, vel| {
        for ((p, &g), v) in p.iter_mut().zip(g).zip(vel) {
            let g = g + l2 * *p;
            *v = momentum * *v + g;
            *p -= lr * (g + momentum * *v);
        }
    });
}
