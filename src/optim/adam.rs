//! adam: `m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²; p -= lr m̂ / (√v̂ + ε)`, with L2 in `g`;
//! adamw decouples the decay instead: `p -= lr λ p` before the step.

use crate::compute::elementwise::{self, widest_fn};

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
    elementwise::zip4(p, g, m, v, |p, g, m, v| update(p, g, m, v, s));
}

widest_fn! {
    /// The update of one piece, 8 lanes wide where the CPU has AVX2. Square root and division
    /// are exact in IEEE arithmetic and nothing is fused, so both paths give the same bits.
    fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: AdamStep) {
        update_portable(p, g, m, v, s)
    }
}

#[inline(always)]
fn update_portable(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: AdamStep) {
    // The bias corrections as factors, so that each element pays one square root and one
    // division (as PyTorch writes it: `lr / (1-β1^t) · m / (√v / √(1-β2^t) + ε)`).
    let step_size = s.lr / s.bias1;
    let inv_sqrt_bias2 = 1.0 / s.bias2.sqrt();
    let (keep1, keep2) = (1.0 - s.beta1, 1.0 - s.beta2);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
        let g = g + s.l2 * *p;
        *p -= s.decoupled * *p;
        *m = s.beta1 * *m + keep1 * g;
        *v = s.beta2 * *v + keep2 * g * g;
        *p -= step_size * *m / (v.sqrt() * inv_sqrt_bias2 + s.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_avx_and_portable_updates_agree_bit_for_bit_and_match_the_formula() {
        let n = 1003;
        let wave = |k: f32| (0..n).map(|i| ((i as f32) * k).sin()).collect::<Vec<f32>>();
        let (g, p0, m0) = (wave(0.37), wave(0.11), wave(0.05));
        let v0: Vec<f32> = wave(0.23).iter().map(|x| x * x).collect();
        let s = AdamStep {
            lr: 0.003,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            bias1: 1.0 - 0.9f32.powi(7),
            bias2: 1.0 - 0.999f32.powi(7),
            l2: 1e-4,
            decoupled: 0.0,
        };
        type Update = fn(&mut [f32], &[f32], &mut [f32], &mut [f32], AdamStep);
        let run = |f: Update| {
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            f(&mut p, &g, &mut m, &mut v, s);
            (p, m, v)
        };
        let portable = run(update_portable);
        assert_eq!(run(update), portable);
        // Against the textbook form, in f64.
        for i in 0..n {
            let gi = f64::from(g[i]) + 1e-4 * f64::from(p0[i]);
            let m = 0.9 * f64::from(m0[i]) + 0.1 * gi;
            let v = 0.999 * f64::from(v0[i]) + 0.001 * gi * gi;
            let (b1, b2) = (f64::from(s.bias1), f64::from(s.bias2));
            let want = f64::from(p0[i]) - 0.003 * (m / b1) / ((v / b2).sqrt() + 1e-8);
            // Within 1% of the update plus a few ulps of the weight: f32 rounding, where a
            // wrong formula (a bias correction left out) is off by 10% or more.
            let (got, update) = (f64::from(portable.0[i]), want - f64::from(p0[i]));
            let allowed = 1e-2 * update.abs() + 3e-7 * want.abs();
            assert!(
                (got - want).abs() <= allowed,
                "{i}: {got} vs {want} (update {update})"
            );
        }
    }
}
