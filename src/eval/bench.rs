//! Measuring a configuration: seconds per training epoch, and the sgemm floor, i.e. the same
//! epoch's matrix products alone, back to back on the same shapes, so a report can say how
//! far the whole step is above pure BLAS time.

use crate::compute::blas::{gemm, Op};
use crate::model::{Activations, Deltas, Network};
use ndarray::{s, ArrayViewMut2};
use std::time::Instant;

/// Every product of one training step on `n` rows: forward `X W`, weight gradients `Xᵀ δ`,
/// and deltas `δ Wᵀ` (not for the input layer), as the real step issues them.
pub fn step_products(
    net: &Network,
    acts: &mut Activations,
    deltas: &mut Deltas,
    grads: &mut [f32],
    n: usize,
) {
    let layers = net.layer_count();
    for l in 0..layers {
        let (done, rest) = acts.bufs.split_at_mut(l + 1);
        gemm(
            1.0,
            done[l].slice(s![..n, ..]),
            Op::N,
            net.weight(l),
            Op::N,
            0.0,
            rest[0].slice_mut(s![..n, ..]),
        );
    }
    for l in (0..layers).rev() {
        let (below, from_here) = deltas.bufs.split_at_mut(l);
        let delta = from_here[0].slice(s![..n, ..]);
        let w = net.weight_info(l);
        let grad_w =
            ArrayViewMut2::from_shape((w.rows, w.cols), &mut grads[w.range()]).expect("layout");
        gemm(
            1.0,
            acts.bufs[l].slice(s![..n, ..]),
            Op::T,
            delta,
            Op::N,
            0.0,
            grad_w,
        );
        if l > 0 {
            gemm(
                1.0,
                delta,
                Op::N,
                net.weight(l),
                Op::T,
                0.0,
                below[l - 1].slice_mut(s![..n, ..]),
            );
        }
    }
}

/// Rows of each minibatch of an epoch of `samples` at `batch` (the last one partial).
pub fn epoch_batches(samples: usize, batch: usize, drop_last: bool) -> Vec<usize> {
    let mut sizes = vec![batch; samples / batch];
    if !samples.is_multiple_of(batch) && !drop_last {
        sizes.push(samples % batch);
    }
    sizes
}

/// Seconds the products of one epoch take, best of `repeats`.
pub fn sgemm_floor(net: &Network, batches: &[usize], repeats: usize) -> f64 {
    let cap = batches.iter().copied().max().unwrap_or(1);
    let mut acts = Activations::new(&net.arch, cap);
    let mut deltas = Deltas::new(&net.arch, cap);
    let mut grads = vec![0.0f32; net.params.len()];
    // Realistic values: zero buffers could take fast paths in some kernels.
    for (i, v) in acts.bufs[0].iter_mut().enumerate() {
        *v = ((i * 7919) % 255) as f32 / 255.0;
    }
    for d in &mut deltas.bufs {
        for (i, v) in d.iter_mut().enumerate() {
            *v = ((i * 104_729) % 1000) as f32 * 1e-6 - 5e-4;
        }
    }
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        for &n in batches {
            step_products(net, &mut acts, &mut deltas, &mut grads, n);
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    best
}
