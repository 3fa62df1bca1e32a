//! Products too small for `sgemm`: a plain loop, without OpenBLAS' per-call work (argument
//! checks, a locked buffer allocation, packing) and the checks of our own door to it.

use ndarray::{ArrayView2, ArrayViewMut2};

/// Products of at most this many multiply-adds take the loop. One thread, best of 5, the
/// loop against `cblas_sgemm` alone: 1×6×1 18 ns against 70, 4×4×4 50 against 90, 4×8×4
/// 145 against 153; past ~100 multiply-adds `sgemm` wins. An online 1-6-1 step's five
/// products have 6 each.
pub const MAX_MACS: usize = 64;

/// `c = alpha * a * b + beta * c` (transposes already applied to the views); with `beta = 0`
/// whatever `c` held, NaN included, is overwritten.
pub fn product(
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    mut c: ArrayViewMut2<f32>,
) {
    debug_assert_eq!(a.ncols(), b.nrows());
    let (m, n) = c.dim();
    for i in 0..m {
        for j in 0..n {
            let sum: f32 = (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum();
            let out = &mut c[[i, j]];
            *out = if beta == 0.0 {
                alpha * sum
            } else {
                alpha * sum + beta * *out
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::rng::splitmix64;
    use ndarray::{s, Array2};

    /// The next draw of a counter-based stream.
    fn draw(counter: &mut u64) -> u64 {
        *counter += 1;
        splitmix64(*counter)
    }

    fn random(rows: usize, cols: usize, counter: &mut u64) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |_| {
            (draw(counter) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
    }

    /// Against the definition in f64, on random shapes, with each operand stored as is or
    /// transposed (a view), a row sub-view of `c`, and both kinds of beta.
    #[test]
    fn the_loop_matches_the_definition() {
        let mut seed = 7;
        for round in 0..200 {
            let dims: Vec<usize> = (0..3).map(|_| 1 + draw(&mut seed) as usize % 12).collect();
            let (m, n, k) = (dims[0], dims[1], dims[2]);
            let a_stored = random(m, k, &mut seed);
            let a_t = a_stored.t().as_standard_layout().into_owned();
            let a = if round % 2 == 0 {
                a_stored.view()
            } else {
                a_t.t()
            };
            let b_stored = random(k, n, &mut seed);
            let b_t = b_stored.t().as_standard_layout().into_owned();
            let b = if round % 4 < 2 {
                b_stored.view()
            } else {
                b_t.t()
            };
            let start = random(m + 2, n, &mut seed);
            let beta = if round % 8 < 4 { 0.0 } else { 0.25 };
            let mut c = start.clone();
            if beta == 0.0 {
                c.fill(f32::NAN);
            }
            product(1.5, a, b, beta, c.slice_mut(s![..m, ..]));
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k).map(|p| a[[i, p]] as f64 * b[[p, j]] as f64).sum();
                    let want = 1.5 * dot + beta as f64 * start[[i, j]] as f64;
                    let got = c[[i, j]] as f64;
                    let what = format!("{m}x{n}x{k}, round {round}");
                    assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "{what}");
                }
            }
            let below = c.slice(s![m.., ..]);
            let kept = if beta == 0.0 {
                below.iter().all(|v| v.is_nan())
            } else {
                below == start.slice(s![m.., ..])
            };
            assert!(kept, "rows below the view changed");
        }
    }
}
