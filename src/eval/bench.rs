//! Measuring a configuration: seconds per training epoch, and its products' floor, i.e. the
//! same epoch's matrix products alone (`sgemm`, and the sparse kernels where the first layer
//! reads sparse rows), back to back on the same shapes, so a report can say how far the whole
//! step is above the products.

use crate::compute::awake::with_workers_awake_if;
use crate::compute::blas::{self, gemm, Op};
use crate::compute::sparse;
use crate::data::{Dataset, InputTransform};
use crate::model::buffers::{rows, rows_mut};
use crate::model::{Activations, Deltas, Input, Network, SparseScratch};
use crate::train::Batch;
use ndarray::ArrayViewMut2;
use std::time::Instant;

/// Every product of one training step on `n` rows: forward `X W`, weight gradients `Xᵀ δ`,
/// and deltas `δ Wᵀ` (not for the input layer), as the real step issues them; a sparse
/// `input` takes the first layer's two products through the sparse kernels.
pub fn step_products(
    net: &Network,
    acts: &mut Activations,
    deltas: &mut Deltas,
    grads: &mut [f32],
    n: usize,
    input: Input,
    scratch: Option<&mut SparseScratch>,
) {
    let layers = net.layer_count();
    let sparse_rows = match input {
        Input::Sparse(x) => Some(x),
        Input::Dense => None,
    };
    let mut scratch = scratch;
    for l in 0..layers {
        let (done, rest) = acts.bufs.split_at_mut(l + 1);
        if let (0, Some(x)) = (l, sparse_rows) {
            let out = rest[0].as_slice_mut().expect("row-major");
            let w = &net.params[net.weight_info(0).range()];
            let n = w.len() / x.csr.width();
            sparse::forward(x.csr, x.rows, x.table, w, n, out, &mut acts.first_weights);
            continue;
        }
        gemm(
            1.0,
            rows(&done[l], n),
            Op::N,
            net.weight(l),
            Op::N,
            0.0,
            rows_mut(&mut rest[0], n),
        );
    }
    for l in (0..layers).rev() {
        let (below, from_here) = deltas.bufs.split_at_mut(l);
        let delta = rows(&from_here[0], n);
        let w = net.weight_info(l);
        if let (0, Some(x), Some(sc)) = (l, sparse_rows, scratch.as_deref_mut()) {
            let delta = delta.as_slice().expect("row-major");
            let dw = &mut grads[w.range()];
            let t = &mut sc.transpose;
            sparse::weight_gradient(x.csr, x.rows, x.table, delta, w.cols, None, 1.0, 0.0, dw, t);
            continue;
        }
        let grad_w =
            ArrayViewMut2::from_shape((w.rows, w.cols), &mut grads[w.range()]).expect("layout");
        gemm(
            1.0,
            rows(&acts.bufs[l], n),
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
                rows_mut(&mut below[l - 1], n),
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

/// Seconds the products of one epoch on `data` take, best of `repeats`.
pub fn products_floor(net: &Network, data: &Dataset, batches: &[usize], repeats: usize) -> f64 {
    let cap = batches.iter().copied().max().unwrap_or(1);
    let rows: Vec<usize> = (0..cap).map(|i| (i * 7919) % data.len()).collect();
    let transform = InputTransform::new(1.0 / 255.0, 0.0, 1.0);
    let table = transform.byte_table();
    let mut scratch = data
        .sparse
        .as_ref()
        .map(|csr| SparseScratch::new(csr, &net.arch, cap));
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
    // As in training (see `Trainer`), the other workers poll between products that are cut.
    with_workers_awake_if(blas::cuts(net.arch.largest_product(cap)), || {
        let mut best = f64::INFINITY;
        for _ in 0..repeats.max(1) {
            let started = Instant::now();
            for &n in batches {
                // The path and threading the training step on `n` rows takes.
                let step = Batch {
                    data,
                    transform: &transform,
                    indices: &rows[..n],
                };
                let input = match &data.sparse {
                    Some(csr) if step.reads_sparse() => Input::Sparse(crate::model::SparseRows {
                        csr,
                        rows: &rows[..n],
                        table,
                        add: 0.0,
                    }),
                    _ => Input::Dense,
                };
                let scratch = scratch.as_mut();
                step_products(net, &mut acts, &mut deltas, &mut grads, n, input, scratch);
            }
            best = best.min(started.elapsed().as_secs_f64());
        }
        best
    })
}
