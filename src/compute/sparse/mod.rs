//! Sparse×dense products for byte datasets kept as compressed rows (CSR).
//!
//! MNIST-like inputs are ~80% zero, so the first layer's forward product `X·W` and its weight
//! gradient `Xᵀ·δ` skip the zeros: output rows (a sample's, or two neighbouring pixels') are
//! held in SIMD registers, block of columns by block, while the dense rows named by their
//! nonzeros are multiplied in. Kernels exist for AVX-512F, AVX2+FMA and portable Rust, picked
//! at run time.
//!
//! Determinism: every output row is computed by exactly one task, in a fixed order of terms,
//! so results are bit-identical for any number of rayon threads (but differ between ISAs).
//! The gradient's transpose is filled in chunks that follow the thread count, but its lists'
//! order does not.

mod aligned;
mod csr;
mod kernels;
#[cfg(test)]
mod tests;
mod tiles;
mod transpose;

pub use aligned::AlignedRows;
pub use csr::{CsrBytes, MAX_WIDTH};
use kernels::{Args, Lists};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::OnceLock;
pub use transpose::Transpose;
use transpose::{PairLists, FILL_ROWS, PAIR};

/// Multiply-adds below which a product runs on the calling thread: rayon costs more.
const INLINE_WORK: usize = 32 * 1024;
/// Tasks per rayon thread, so that work stealing evens out rows of unequal length.
const TASKS_PER_THREAD: usize = 4;

/// A batch of CSR rows, as the forward product's sparse operand.
struct Batch<'a> {
    csr: &'a CsrBytes,
    samples: &'a [usize],
}

impl kernels::Lists<1> for Batch<'_> {
    #[inline]
    fn len(&self, i: usize) -> usize {
        self.csr.row_nnz(self.samples[i])
    }

    #[inline]
    fn entries(
        &self,
        i: usize,
        range: Range<usize>,
    ) -> impl Iterator<Item = (usize, [u8; 1])> + '_ {
        let (cols, vals) = self.csr.row(self.samples[i]);
        let (cols, vals) = (&cols[range.clone()], &vals[range]);
        cols.iter().zip(vals).map(|(&c, &v)| (c as usize, [v]))
    }

    fn prefetch(&self, i: usize) {
        self.csr.prefetch_row(self.samples[i]);
    }

    fn seek(&self, i: usize, from: usize, row: usize) -> usize {
        let cols = self.csr.row(self.samples[i]).0;
        from + cols[from..].partition_point(|&c| usize::from(c) < row)
    }
}

/// Instruction set a kernel runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// The fastest instruction set this CPU has (detected once).
    pub fn detected() -> Isa {
        Isa::available()[0]
    }

    /// Every instruction set this CPU can run, fastest first; always ends with `Portable`.
    pub fn available() -> &'static [Isa] {
        static AVAILABLE: OnceLock<Vec<Isa>> = OnceLock::new();
        AVAILABLE.get_or_init(|| {
            let mut isas = Vec::with_capacity(3);
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx512f") {
                    isas.push(Isa::Avx512);
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    isas.push(Isa::Avx2);
                }
            }
            isas.push(Isa::Portable);
            isas
        })
    }

    pub fn is_available(self) -> bool {
        Isa::available().contains(&self)
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }
}

/// `out[r, :] = Σ_{(c, v) in row(samples[r])} table[v] * w[c, :]` for `r` in `0..samples.len()`.
///
/// `w` is `width × n` row-major; `out` holds at least `samples.len() × n` floats, of which
/// those rows are overwritten. Samples may repeat and come in any order. A large batch reads
/// `w` from a copy with line-aligned rows, kept in `aligned` (see [`AlignedRows`]).
pub fn forward(
    csr: &CsrBytes,
    samples: &[usize],
    table: &[f32; 256],
    w: &[f32],
    n: usize,
    out: &mut [f32],
    aligned: &mut AlignedRows,
) {
    let nnz: usize = samples.iter().map(|&s| csr.row_nnz(s)).sum();
    let (w, ld) = if nnz >= ALIGN_ENTRIES_PER_ROW * csr.width() {
        aligned.copy_of(w, n)
    } else {
        (w, n)
    };
    forward_with(Isa::detected(), csr, samples, table, w, ld, n, out);
}

/// Batch nonzeros per row of `w` from which [`forward`] reads an aligned copy: copying MNIST's
/// 784×300 weights takes ~40 µs, what the faster kernel saves on ~10 entries per row (~5 ns
/// each; AVX2, Zen 3). Batch 32 has ~6, batch 128 ~25.
const ALIGN_ENTRIES_PER_ROW: usize = 10;

/// The product of [`forward`] on a chosen instruction set (panics if this CPU lacks it), with
/// `w` as `width` rows `ld >= n` floats apart.
#[allow(clippy::too_many_arguments)]
pub fn forward_with(
    isa: Isa,
    csr: &CsrBytes,
    samples: &[usize],
    table: &[f32; 256],
    w: &[f32],
    ld: usize,
    n: usize,
    out: &mut [f32],
) {
    assert!(ld >= n, "forward: row stride {ld} below n {n}");
    assert_eq!(
        w.len(),
        csr.width() * ld,
        "forward: w is not width rows of ld"
    );
    let rows = samples.len();
    assert!(
        out.len() >= rows * n,
        "forward: out holds fewer than batch x n"
    );
    let nnz: usize = samples.iter().map(|&s| csr.row_nnz(s)).sum();
    let table = kernels::zero_byte_table(table);
    let args = Args {
        table: &table,
        dense: w,
        ld,
        n,
        offset: None,
        alpha: 1.0,
        beta: 0.0,
        banded: true,
    };
    let batch = Batch { csr, samples };
    split(isa, &batch, &args, &mut out[..rows * n], nnz * n);
}

/// For every pixel `p` in `0..width`:
/// `dw[p, :] = beta * dw[p, :] + alpha * (Σ_{r : p in row(samples[r])} table[v_rp] * delta[r, :] + offset)`.
///
/// `delta` holds at least `samples.len() × n` floats, `dw` is `width × n`, `offset` (if any)
/// has `n` (it carries a mean subtraction's rank-one term). `beta == 0` overwrites `dw`, so
/// NaN there does not propagate. `scratch` must be sized for this batch. Pixels go in pairs,
/// a sample's missing pixel adding `0 · delta[r, :]`: exact for finite `delta`, while an
/// infinite or NaN one also reaches its partner pixel's row (as every row of a dense product).
#[allow(clippy::too_many_arguments)]
pub fn weight_gradient(
    csr: &CsrBytes,
    samples: &[usize],
    table: &[f32; 256],
    delta: &[f32],
    n: usize,
    offset: Option<&[f32]>,
    alpha: f32,
    beta: f32,
    dw: &mut [f32],
    scratch: &mut Transpose,
) {
    let isa = Isa::detected();
    weight_gradient_with(
        isa, csr, samples, table, delta, n, offset, alpha, beta, dw, scratch,
    );
}

/// [`weight_gradient`] on a chosen instruction set (panics if this CPU lacks it).
#[allow(clippy::too_many_arguments)]
pub fn weight_gradient_with(
    isa: Isa,
    csr: &CsrBytes,
    samples: &[usize],
    table: &[f32; 256],
    delta: &[f32],
    n: usize,
    offset: Option<&[f32]>,
    alpha: f32,
    beta: f32,
    dw: &mut [f32],
    scratch: &mut Transpose,
) {
    let width = csr.width();
    assert_eq!(dw.len(), width * n, "weight_gradient: dw is not width x n");
    let batch = samples.len();
    assert!(
        delta.len() >= batch * n,
        "weight_gradient: delta holds fewer than batch x n"
    );
    if let Some(o) = offset {
        assert_eq!(o.len(), n, "weight_gradient: offset is not n long");
    }
    assert!(
        batch <= scratch.max_batch(),
        "Transpose: batch of {batch} exceeds its max_batch {}",
        scratch.max_batch()
    );
    let table = kernels::zero_byte_table(table);
    let threads = rayon::current_num_threads();
    // Batches past FILL_ROWS go in turns, each adding to what the first wrote.
    let turns = batch.div_ceil(FILL_ROWS).max(1);
    for turn in 0..turns {
        let rows = turn * FILL_ROWS..batch.min((turn + 1) * FILL_ROWS);
        let first = turn == 0;
        let args = Args {
            table: &table,
            dense: &delta[rows.start * n..rows.end * n],
            ld: n,
            n,
            offset: if first { offset } else { None },
            alpha,
            beta: if first { beta } else { 1.0 },
            banded: false,
        };
        let lists = scratch.fill(csr, &samples[rows]);
        let work = (lists.len() + lists.pairs()) * n;
        let leaves = if threads <= 1 || work < INLINE_WORK {
            1
        } else {
            threads * TASKS_PER_THREAD
        };
        gradient_pieces(isa, lists, &args, dw, leaves);
    }
}

/// Cuts `lists` (and `dw`, their rows) in two of about equal work until `leaves` pieces,
/// each run by the kernel as its own rayon task.
fn gradient_pieces(isa: Isa, lists: PairLists, args: &Args, dw: &mut [f32], leaves: usize) {
    let pairs = lists.pairs();
    if leaves <= 1 || pairs < 2 {
        kernels::run(isa, &lists, 0, args, dw);
        return;
    }
    // A pair costs its entries plus, about, its rows' stores.
    let work = |q: usize| lists.start[q] - lists.start[0] + q * PAIR;
    let half = work(pairs) / 2;
    let (mut lo, mut hi) = (1, pairs - 1);
    while lo < hi {
        let q = (lo + hi) / 2;
        if work(q) < half {
            lo = q + 1;
        } else {
            hi = q;
        }
    }
    let mid = lo;
    let (left, right) = lists.split_at(mid);
    let (dw_left, dw_right) = dw.split_at_mut((mid * PAIR * args.n).min(dw.len()));
    rayon::join(
        || gradient_pieces(isa, left, args, dw_left, leaves / 2),
        || gradient_pieces(isa, right, args, dw_right, leaves - leaves / 2),
    );
}

/// Runs `out` (whole rows of `n`) on the calling thread when small, else in rayon tasks of
/// consecutive rows. Row results do not depend on the split.
fn split<L: Lists<1>>(isa: Isa, lists: &L, args: &Args, out: &mut [f32], work: usize) {
    let n = args.n;
    let threads = rayon::current_num_threads();
    if n == 0 || out.is_empty() {
        return;
    }
    if threads <= 1 || work < INLINE_WORK {
        kernels::run(isa, lists, 0, args, out);
        return;
    }
    let per_task = (out.len() / n).div_ceil(threads * TASKS_PER_THREAD);
    out.par_chunks_mut(per_task * n)
        .enumerate()
        .for_each(|(t, rows)| kernels::run(isa, lists, t * per_task, args, rows));
}
