//! Elementwise activations, applied in place over a layer's row-major output.
//!
//! Where it can, the derivative is computed from the activation's output `a` rather than its
//! input `z` (relu: `a > 0`, sigmoid: `a(1-a)`, tanh: `1-a²`), so a layer keeps one buffer,
//! not two. An activation whose derivative needs `z` (SiLU) says so with
//! [`Activation::derivative_needs_input`], and its layer keeps `z` as well.

use crate::compute::elementwise::{self, widest_fn, Cost};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Activation {
    Relu,
    /// `slope` must be >= 0 so that the sign of the output tells the sign of the input.
    LeakyRelu {
        slope: f32,
    },
    Sigmoid,
    Tanh,
    Identity,
    /// `x σ(x)` (also called swish); hidden layers only.
    Silu,
}

impl Activation {
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Identity => "identity",
            Activation::Silu => "silu",
        }
    }

    /// Whether He initialisation suits it (the ReLU family); otherwise Xavier does.
    pub fn is_relu_family(&self) -> bool {
        matches!(self, Activation::Relu | Activation::LeakyRelu { .. })
    }

    /// Whether `f'` needs the pre-activation `z` (it cannot be recovered from the output).
    pub fn derivative_needs_input(&self) -> bool {
        matches!(self, Activation::Silu)
    }

    /// `f(x)` in f32.
    #[inline(always)]
    pub fn apply(&self, x: f32) -> f32 {
        match *self {
            // Written so that NaN passes through (f32::max would turn it into 0 and hide a
            // diverging run).
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Activation::LeakyRelu { slope } => {
                if x < 0.0 {
                    slope * x
                } else {
                    x
                }
            }
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Identity => x,
            Activation::Silu => silu(x),
        }
    }

    /// `f'(x)` written in terms of `a = f(x)`; for an activation whose derivative needs its
    /// input, see [`Activation::derivative_from_input`].
    #[inline(always)]
    pub fn derivative_from_output(&self, a: f32) -> f32 {
        match *self {
            Activation::Relu => {
                if a > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { slope } => {
                if a > 0.0 {
                    1.0
                } else {
                    slope
                }
            }
            Activation::Sigmoid => a * (1.0 - a),
            Activation::Tanh => 1.0 - a * a,
            Activation::Identity => 1.0,
            Activation::Silu => unreachable!("SiLU's derivative needs its input"),
        }
    }

    /// `f'(x)` from the input `x` itself.
    #[inline(always)]
    pub fn derivative_from_input(&self, x: f32) -> f32 {
        match *self {
            Activation::Silu => silu_derivative(x),
            _ => self.derivative_from_output(self.apply(x)),
        }
    }

    /// `f(x)` in f64, for the reference forward pass of gradient checks.
    pub fn apply_f64(&self, x: f64) -> f64 {
        match *self {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu { slope } => {
                if x > 0.0 {
                    x
                } else {
                    f64::from(slope) * x
                }
            }
            Activation::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            Activation::Tanh => x.tanh(),
            Activation::Identity => x,
            Activation::Silu => x / (1.0 + (-x).exp()),
        }
    }

    /// `out[r, j] = f(out[r, j] + bias[j])` over a row-major block, one pass.
    pub fn add_bias_and_apply(&self, out: &mut [f32], bias: &[f32]) {
        let act = *self;
        elementwise::rows(out, bias.len(), self.cost(), |part| {
            add_bias_part(act, part, bias)
        });
    }

    /// As [`Activation::add_bias_and_apply`], keeping `z = out + bias` in `pre` too.
    pub fn add_bias_keep_input_and_apply(&self, out: &mut [f32], pre: &mut [f32], bias: &[f32]) {
        let act = *self;
        elementwise::pairs_rows(out, pre, bias.len(), self.cost(), |out, pre| {
            keep_input_part(act, out, pre, bias)
        });
    }

    /// What a pass over a layer costs per element: an `exp` or `tanh` and a division, or a
    /// comparison.
    fn cost(&self) -> Cost {
        match self {
            Activation::Sigmoid | Activation::Tanh | Activation::Silu => Cost::Costly,
            _ => Cost::Cheap,
        }
    }

    #[inline(always)]
    fn add_bias_inline(&self, out: &mut [f32], bias: &[f32]) {
        // One loop per kind, so each inner loop is branch-free and vectorises.
        match *self {
            Activation::Relu => bias_rows(out, bias, |v| if v < 0.0 { 0.0 } else { v }),
            Activation::LeakyRelu { slope } => {
                bias_rows(out, bias, |v| if v < 0.0 { slope * v } else { v })
            }
            Activation::Sigmoid => bias_rows(out, bias, sigmoid),
            Activation::Tanh => bias_rows(out, bias, f32::tanh),
            Activation::Identity => bias_rows(out, bias, |v| v),
            Activation::Silu => bias_rows(out, bias, silu),
        }
    }

    /// `delta *= f'(z)`, with `f'` taken from the layer's output `a`, or from its input `z`
    /// where the derivative needs it (then `z` must be given).
    pub fn scale_by_derivative(&self, delta: &mut [f32], a: &[f32], z: Option<&[f32]>) {
        let (act, cost) = (*self, self.cost());
        match (self.derivative_needs_input(), z) {
            (true, Some(z)) => {
                elementwise::rows2(delta, z, 1, cost, |d, z| scale_from_input_part(act, d, z))
            }
            (true, None) => panic!("{} needs its layer's pre-activation", self.name()),
            _ if *self == Activation::Identity => {}
            _ => elementwise::rows2(delta, a, 1, cost, |d, a| scale_from_output_part(act, d, a)),
        }
    }

    #[inline(always)]
    fn scale_inline(&self, delta: &mut [f32], a: &[f32]) {
        debug_assert_eq!(delta.len(), a.len());
        let pairs = delta.iter_mut().zip(a);
        match *self {
            Activation::Relu => pairs.for_each(|(d, &a)| *d = if a > 0.0 { *d } else { 0.0 }),
            Activation::LeakyRelu { slope } => {
                pairs.for_each(|(d, &a)| *d = if a > 0.0 { *d } else { slope * *d })
            }
            Activation::Sigmoid => pairs.for_each(|(d, &a)| *d *= a * (1.0 - a)),
            Activation::Tanh => pairs.for_each(|(d, &a)| *d *= 1.0 - a * a),
            Activation::Identity | Activation::Silu => {}
        }
    }
}

widest_fn! {
    fn add_bias_part(act: Activation, out: &mut [f32], bias: &[f32]) {
        act.add_bias_inline(out, bias)
    }
}

widest_fn! {
    fn keep_input_part(act: Activation, out: &mut [f32], pre: &mut [f32], bias: &[f32]) {
        match act {
            Activation::Silu => keep_input_rows(out, pre, bias, silu),
            _ => keep_input_rows(out, pre, bias, |z| act.apply(z)),
        }
    }
}

widest_fn! {
    fn scale_from_input_part(act: Activation, delta: &mut [f32], z: &[f32]) {
        // One loop per kind, so that the loop is branch-free and vectorizes.
        let pairs = delta.iter_mut().zip(z);
        match act {
            Activation::Silu => pairs.for_each(|(d, &z)| *d *= silu_derivative(z)),
            _ => pairs.for_each(|(d, &z)| *d *= act.derivative_from_input(z)),
        }
    }
}

widest_fn! {
    fn scale_from_output_part(act: Activation, delta: &mut [f32], a: &[f32]) {
        act.scale_inline(delta, a)
    }
}

/// `pre = out + bias` (row by row), then `out = f(pre)`.
#[inline(always)]
fn keep_input_rows(out: &mut [f32], pre: &mut [f32], bias: &[f32], f: impl Fn(f32) -> f32) {
    let rows = out.chunks_exact_mut(bias.len());
    for (o, p) in rows.zip(pre.chunks_exact_mut(bias.len())) {
        for ((o, p), b) in o.iter_mut().zip(p).zip(bias) {
            *p = *o + b;
            *o = f(*p);
        }
    }
}

/// SiLU: `x · sigmoid(x)`.
#[inline(always)]
fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

/// SiLU's derivative from its input: `s (1 + x (1 - s))` with `s = sigmoid(x)`.
#[inline(always)]
fn silu_derivative(x: f32) -> f32 {
    let s = sigmoid(x);
    s * (1.0 + x * (1.0 - s))
}

#[inline(always)]
fn bias_rows(out: &mut [f32], bias: &[f32], f: impl Fn(f32) -> f32) {
    debug_assert_eq!(out.len() % bias.len().max(1), 0);
    for row in out.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = f(*v + b);
        }
    }
}

/// `1 / (1 + e^-x)` from `e^-|x|`, which never overflows. Branch-free, with its own `exp`, so
/// that loops over it vectorize (libm's `expf` is one call per element).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let e = exp_non_positive(-x.abs());
    let d = 1.0 / (1.0 + e);
    let s = if x >= 0.0 { d } else { e * d };
    if x.is_nan() {
        x
    } else {
        s
    }
}

/// `e^x` for `x <= 0` (0 below f32's normal range), within about 2 ulp: `x = n ln 2 + r` with
/// `|r| <= ln 2 / 2`, `e^r` by its Taylor polynomial to degree 7, `2^n` put into the exponent.
#[inline(always)]
fn exp_non_positive(x: f32) -> f32 {
    // ln 2 = LN2_HI + LN2_LO, LN2_HI with few enough bits that `n * LN2_HI` is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds an f32 of magnitude below 2^22 to an integer.
    const ROUND: f32 = 12_582_912.0;
    // ln of f32's smallest normal number: e^x is below it from here down.
    const LOWEST: f32 = -87.336_55;
    let xc = if x > LOWEST { x } else { LOWEST };
    let shifted = xc * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // `shifted`'s low bits hold n, an integer in -126..=0, so 2^n's exponent field is 1..=127
    // (integer arithmetic on the bits, which vectorizes where a float-to-int cast may not).
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x > LOWEST {
        p * scale
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Activation; 6] = [
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Identity,
        Activation::Silu,
    ];

    #[test]
    fn derivatives_match_finite_differences() {
        for act in ALL {
            for &x in &[-3.0f64, -0.7, -0.01, 0.02, 0.5, 2.5] {
                let h = 1e-6;
                let numeric = (act.apply_f64(x + h) - act.apply_f64(x - h)) / (2.0 * h);
                let analytic = act.derivative_from_input(x as f32);
                assert!(
                    (numeric - f64::from(analytic)).abs() < 1e-4,
                    "{act:?} at {x}: {numeric} vs {analytic}"
                );
            }
        }
    }

    #[test]
    fn f32_and_f64_agree_and_sigmoid_does_not_overflow() {
        for act in ALL {
            for &x in &[-5.0f32, -1.0, 0.0, 0.3, 4.0] {
                let diff = f64::from(act.apply(x)) - act.apply_f64(f64::from(x));
                assert!(diff.abs() < 1e-6, "{act:?} {x}");
            }
        }
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert!(
            Activation::Relu.apply(f32::NAN).is_nan(),
            "NaN is not hidden"
        );
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    /// The vectorizable sigmoid against f64 over its whole range, with the edge cases.
    #[test]
    fn sigmoid_is_within_a_few_ulp_everywhere() {
        let mut worst = 0.0f64;
        for i in -240_000..=240_000 {
            let x = i as f32 * 5e-4;
            let want = 1.0 / (1.0 + (-f64::from(x)).exp());
            let got = f64::from(sigmoid(x));
            if want >= f64::from(f32::MIN_POSITIVE) {
                worst = worst.max((got - want).abs() / want);
            } else {
                assert!(
                    got.abs() <= f64::from(f32::MIN_POSITIVE),
                    "{x}: {got} vs {want}"
                );
            }
        }
        // 4 units in the last place (libm's expf and a division: about 2); seen: 3.0.
        assert!(
            worst <= 4.0 * f64::from(f32::EPSILON) / 2.0,
            "worst relative error {worst}"
        );
        for x in [
            -1e6f32, -90.0, -87.33, -87.0, -1e-30, -0.0, 0.0, 1e-30, 88.0, 1e6,
        ] {
            let want = 1.0 / (1.0 + (-f64::from(x)).exp());
            assert!(
                (f64::from(sigmoid(x)) - want).abs() <= 2e-7 * want.max(1e-30),
                "{x}"
            );
        }
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert!(sigmoid(f32::NAN).is_nan(), "NaN is not hidden");
        assert!(Activation::Silu.apply(f32::NAN).is_nan());
    }

    /// Whether two results are the same value (NaN matching NaN).
    fn same(a: f32, b: f32) -> bool {
        a == b || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn layer_passes_match_the_scalar_formulas_however_split_and_vectorized() {
        // 64 rows of 300: split into tasks for the costly kinds; values over the range where
        // exp over- and underflows, and a NaN.
        let (rows, width) = (64usize, 300usize);
        let z: Vec<f32> = (0..rows * width)
            .map(|i| {
                if i == 77 {
                    f32::NAN
                } else {
                    ((i * 7919) % 2001) as f32 * 0.06 - 60.0
                }
            })
            .collect();
        let bias: Vec<f32> = (0..width).map(|j| (j as f32 - 150.0) * 0.01).collect();
        let delta: Vec<f32> = (0..rows * width)
            .map(|i| ((i % 13) as f32 - 6.0) * 0.1)
            .collect();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for act in ALL {
                let (mut out, mut kept, mut pre) = (z.clone(), z.clone(), vec![0.0; z.len()]);
                pool.install(|| {
                    act.add_bias_and_apply(&mut out, &bias);
                    act.add_bias_keep_input_and_apply(&mut kept, &mut pre, &bias);
                });
                for i in 0..z.len() {
                    let want = act.apply(z[i] + bias[i % width]);
                    assert!(same(out[i], want), "{act:?} {i}: {} vs {want}", out[i]);
                    assert!(same(kept[i], want) && same(pre[i], z[i] + bias[i % width]));
                }
                let mut scaled = delta.clone();
                let input = act.derivative_needs_input().then_some(&pre[..]);
                pool.install(|| act.scale_by_derivative(&mut scaled, &out, input));
                for i in 0..z.len() {
                    let want = delta[i] * act.derivative_from_input(pre[i]);
                    assert!(
                        same(scaled[i], want),
                        "{act:?} f' {i}: {} vs {want}",
                        scaled[i]
                    );
                }
            }
        }
    }

    #[test]
    fn bias_then_activation_in_one_pass() {
        let mut out = [1.0f32, -2.0, 0.5, -0.25];
        Activation::Relu.add_bias_and_apply(&mut out, &[0.5, 1.0]);
        assert_eq!(out, [1.5, 0.0, 1.0, 0.75]);
    }
}
