//! Register-blocked row kernels, one per instruction set.
//!
//! For output row `i` (the `i`-th list of a [`Lists`]) and each block of columns `j`:
//! `out[i, j] = alpha * (init[j] + Σ_k table[vals[k]] * dense[idx[k], j]) + beta * out[i, j]`,
//! with `init` the offset or 0, and `beta == 0` meaning "overwrite". Terms are added in list
//! order, so a row's result depends only on its list, never on how rows were split.
//! Rows go in tiles; within a tile, blocks go column-outer, rows-inner, so a column block of
//! `dense` stays in L2 across the tile's rows. Each FMA still loads its vector of `dense` from
//! L2 (no reuse in L1), and that L2 bandwidth, not the FMA rate, is what limits these kernels.

use super::Isa;

/// A sparse entry's dense row.
pub(super) trait AsIndex: Copy {
    fn index(self) -> usize;
}

impl AsIndex for u16 {
    fn index(self) -> usize {
        self as usize
    }
}

impl AsIndex for u32 {
    fn index(self) -> usize {
        self as usize
    }
}

/// Sparse rows: list `i` names rows of `dense` and the bytes they are scaled by.
pub(super) trait Lists: Sync {
    type Idx: AsIndex;
    fn list(&self, i: usize) -> (&[Self::Idx], &[u8]);
}

/// What is shared by every row of one product.
#[derive(Clone, Copy)]
pub(super) struct Args<'a> {
    pub table: &'a [f32; 256],
    /// Row-major, rows of `n`.
    pub dense: &'a [f32],
    pub n: usize,
    pub offset: Option<&'a [f32]>,
    pub alpha: f32,
    pub beta: f32,
}

/// Sparse entries per tile of rows: with a column block of `dense` (~200 KB), the tile's
/// lists and output stay within L2 while all its blocks are swept.
const TILE_ENTRIES: usize = 8 * 1024;

/// Cuts rows into consecutive tiles of about [`TILE_ENTRIES`] entries; calls
/// `f(first row, tile's rows of out)`. Only the order of work changes, never a row's terms.
fn for_each_tile<L: Lists>(
    lists: &L,
    first: usize,
    n: usize,
    out: &mut [f32],
    mut f: impl FnMut(usize, &mut [f32]),
) {
    let rows = out.len() / n;
    let mut rest = out;
    let mut start = 0;
    while start < rows {
        let mut end = start;
        let mut entries = 0;
        while end < rows && entries < TILE_ENTRIES {
            entries += lists.list(first + end).0.len();
            end += 1;
        }
        let (tile, tail) = std::mem::take(&mut rest).split_at_mut((end - start) * n);
        f(first + start, tile);
        rest = tail;
        start = end;
    }
}

/// Rows `first..` of the product into `out` (whole rows of `a.n`).
pub(super) fn run<L: Lists>(isa: Isa, lists: &L, first: usize, a: &Args, out: &mut [f32]) {
    assert!(isa.is_available(), "sparse: this CPU cannot run {isa:?}");
    if a.n == 0 {
        return;
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512F (asserted above).
        Isa::Avx512 => unsafe { avx512::run(lists, first, a, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA (asserted above).
        Isa::Avx2 => unsafe { avx2::run(lists, first, a, out) },
        _ => portable::run(lists, first, a, out),
    }
}

/// Calls `$f::<full vectors, masked tail vector?>` for a block of `$len` floats, `$w` a vector.
#[cfg(target_arch = "x86_64")]
macro_rules! dispatch {
    ($len:expr, $w:expr, $f:ident($($arg:expr),*)) => {
        match ($len / $w, $len % $w != 0) {
            (8, false) => $f::<8, false, _>($($arg),*),
            (7, false) => $f::<7, false, _>($($arg),*),
            (6, false) => $f::<6, false, _>($($arg),*),
            (5, false) => $f::<5, false, _>($($arg),*),
            (4, false) => $f::<4, false, _>($($arg),*),
            (3, false) => $f::<3, false, _>($($arg),*),
            (2, false) => $f::<2, false, _>($($arg),*),
            (1, false) => $f::<1, false, _>($($arg),*),
            (7, true) => $f::<7, true, _>($($arg),*),
            (6, true) => $f::<6, true, _>($($arg),*),
            (5, true) => $f::<5, true, _>($($arg),*),
            (4, true) => $f::<4, true, _>($($arg),*),
            (3, true) => $f::<3, true, _>($($arg),*),
            (2, true) => $f::<2, true, _>($($arg),*),
            (1, true) => $f::<1, true, _>($($arg),*),
            (0, true) => $f::<0, true, _>($($arg),*),
            _ => unreachable!("block wider than 8 vectors"),
        }
    };
}

/// Loops blocks of `$block` columns (outer) and rows (inner), calling `$kernel` per pair.
#[cfg(target_arch = "x86_64")]
macro_rules! block_loop {
    ($lists:expr, $first:expr, $a:expr, $out:expr, $block:expr, $w:expr, $mask:ident, $kernel:ident) => {
        let n = $a.n;
        super::for_each_tile($lists, $first, n, $out, |first, out| {
            for j0 in (0..n).step_by($block) {
                let len = $block.min(n - j0);
                let mask = $mask(len % $w);
                for (i, row) in out.chunks_exact_mut(n).enumerate() {
                    let (idx, vals) = $lists.list(first + i);
                    let o = &mut row[j0..j0 + len];
                    dispatch!(len, $w, $kernel(idx, vals, $a, j0, mask, o));
                }
            }
        });
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Args, AsIndex, Lists};
    use std::arch::x86_64::*;

    /// Floats per vector.
    const W: usize = 8;
    /// Accumulators per block: with FMA latency 4 and 2 per cycle, 8 chains keep it busy.
    const BLOCK: usize = 8 * W;

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn run<L: Lists>(lists: &L, first: usize, a: &Args, out: &mut [f32]) {
        block_loop!(lists, first, a, out, BLOCK, W, tail_mask, block);
    }

    /// Lanes `0..rem` set (all lanes when `rem == 0`; only used when `rem > 0`).
    #[target_feature(enable = "avx2,fma")]
    fn tail_mask(rem: usize) -> __m256i {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32), lanes)
    }

    /// One row's block `out = [j0, j0 + NV*W + tail)`: NV full vectors, plus a masked one if T.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn block<const NV: usize, const T: bool, I: AsIndex>(
        idx: &[I],
        vals: &[u8],
        a: &Args,
        j0: usize,
        mask: __m256i,
        out: &mut [f32],
    ) {
        let len = out.len();
        debug_assert!(len >= NV * W && len <= (NV + T as usize) * W);
        let mut acc = [_mm256_setzero_ps(); NV];
        let mut acc_t = _mm256_setzero_ps();
        if let Some(off) = a.offset {
            let off = &off[j0..j0 + len];
            // SAFETY: `off` has `len` floats: NV*W full lanes, then the tail masked to `len`.
            unsafe {
                for (q, r) in acc.iter_mut().enumerate() {
                    *r = _mm256_loadu_ps(off.as_ptr().add(q * W));
                }
                if T {
                    acc_t = _mm256_maskload_ps(off.as_ptr().add(NV * W), mask);
                }
            }
        }
        for (&c, &v) in idx.iter().zip(vals) {
            let s = _mm256_set1_ps(a.table[v as usize]);
            let start = c.index() * a.n + j0;
            let row = &a.dense[start..start + len];
            // SAFETY: `row` has `len` floats, read as for `off` above.
            unsafe {
                for (q, r) in acc.iter_mut().enumerate() {
                    *r = _mm256_fmadd_ps(s, _mm256_loadu_ps(row.as_ptr().add(q * W)), *r);
                }
                if T {
                    let x = _mm256_maskload_ps(row.as_ptr().add(NV * W), mask);
                    acc_t = _mm256_fmadd_ps(s, x, acc_t);
                }
            }
        }
        let alpha = _mm256_set1_ps(a.alpha);
        let beta = _mm256_set1_ps(a.beta);
        let keep = a.beta != 0.0;
        let p = out.as_mut_ptr();
        // SAFETY: `out` has `len` floats, accessed as `off` above; lanes past `len` are masked.
        unsafe {
            for (q, r) in acc.iter().enumerate() {
                let mut y = _mm256_mul_ps(alpha, *r);
                if keep {
                    y = _mm256_fmadd_ps(beta, _mm256_loadu_ps(p.add(q * W)), y);
                }
                _mm256_storeu_ps(p.add(q * W), y);
            }
            if T {
                let mut y = _mm256_mul_ps(alpha, acc_t);
                if keep {
                    y = _mm256_fmadd_ps(beta, _mm256_maskload_ps(p.add(NV * W), mask), y);
                }
                _mm256_maskstore_ps(p.add(NV * W), mask, y);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Args, AsIndex, Lists};
    use std::arch::x86_64::*;

    /// Floats per vector.
    const W: usize = 16;
    /// 8 accumulators per block, as for AVX2.
    const BLOCK: usize = 8 * W;

    #[target_feature(enable = "avx512f")]
    pub(super) fn run<L: Lists>(lists: &L, first: usize, a: &Args, out: &mut [f32]) {
        block_loop!(lists, first, a, out, BLOCK, W, tail_mask, block);
    }

    /// Lanes `0..rem` set.
    fn tail_mask(rem: usize) -> __mmask16 {
        ((1u32 << rem) - 1) as __mmask16
    }

    /// As the AVX2 block, with 16-float vectors and a mask register for the tail.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn block<const NV: usize, const T: bool, I: AsIndex>(
        idx: &[I],
        vals: &[u8],
        a: &Args,
        j0: usize,
        mask: __mmask16,
        out: &mut [f32],
    ) {
        let len = out.len();
        debug_assert!(len >= NV * W && len <= (NV + T as usize) * W);
        let mut acc = [_mm512_setzero_ps(); NV];
        let mut acc_t = _mm512_setzero_ps();
        if let Some(off) = a.offset {
            let off = &off[j0..j0 + len];
            // SAFETY: `off` has `len` floats: NV*W full lanes, then the tail masked to `len`.
            unsafe {
                for (q, r) in acc.iter_mut().enumerate() {
                    *r = _mm512_loadu_ps(off.as_ptr().add(q * W));
                }
                if T {
                    acc_t = _mm512_maskz_loadu_ps(mask, off.as_ptr().add(NV * W));
                }
            }
        }
        for (&c, &v) in idx.iter().zip(vals) {
            let s = _mm512_set1_ps(a.table[v as usize]);
            let start = c.index() * a.n + j0;
            let row = &a.dense[start..start + len];
            // SAFETY: `row` has `len` floats, read as for `off` above.
            unsafe {
                for (q, r) in acc.iter_mut().enumerate() {
                    *r = _mm512_fmadd_ps(s, _mm512_loadu_ps(row.as_ptr().add(q * W)), *r);
                }
                if T {
                    let x = _mm512_maskz_loadu_ps(mask, row.as_ptr().add(NV * W));
                    acc_t = _mm512_fmadd_ps(s, x, acc_t);
                }
            }
        }
        let alpha = _mm512_set1_ps(a.alpha);
        let beta = _mm512_set1_ps(a.beta);
        let keep = a.beta != 0.0;
        let p = out.as_mut_ptr();
        // SAFETY: `out` has `len` floats, accessed as `off` above; lanes past `len` are masked.
        unsafe {
            for (q, r) in acc.iter().enumerate() {
                let mut y = _mm512_mul_ps(alpha, *r);
                if keep {
                    y = _mm512_fmadd_ps(beta, _mm512_loadu_ps(p.add(q * W)), y);
                }
                _mm512_storeu_ps(p.add(q * W), y);
            }
            if T {
                let mut y = _mm512_mul_ps(alpha, acc_t);
                if keep {
                    y = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mask, p.add(NV * W)), y);
                }
                _mm512_mask_storeu_ps(p.add(NV * W), mask, y);
            }
        }
    }
}

/// Plain Rust: a 64-float block in a local array that the compiler vectorizes for the baseline.
mod portable {
    use super::{Args, AsIndex, Lists};

    const BLOCK: usize = 64;

    pub(super) fn run<L: Lists>(lists: &L, first: usize, a: &Args, out: &mut [f32]) {
        let n = a.n;
        for j0 in (0..n).step_by(BLOCK) {
            let len = BLOCK.min(n - j0);
            for (i, row) in out.chunks_exact_mut(n).enumerate() {
                let (idx, vals) = lists.list(first + i);
                let mut buf = [0.0f32; BLOCK];
                let acc = &mut buf[..len];
                if let Some(off) = a.offset {
                    acc.copy_from_slice(&off[j0..j0 + len]);
                }
                for (&c, &v) in idx.iter().zip(vals) {
                    let s = a.table[v as usize];
                    let start = c.index() * n + j0;
                    for (x, &y) in acc.iter_mut().zip(&a.dense[start..start + len]) {
                        *x += s * y;
                    }
                }
                let o = &mut row[j0..j0 + len];
                if a.beta == 0.0 {
                    for (y, &x) in o.iter_mut().zip(acc.iter()) {
                        *y = a.alpha * x;
                    }
                } else {
                    for (y, &x) in o.iter_mut().zip(acc.iter()) {
                        *y = a.alpha * x + a.beta * *y;
                    }
                }
            }
        }
    }
}
