//! Register-blocked kernels over groups of `G` output rows, one module per instruction set.
//!
//! For group `i` (the `i`-th list of a [`Lists`]), each of its rows `r = G*i + g` and each
//! block of columns `j`:
//! `out[r, j] = alpha * (init[j] + Σ_k table[byte_g[k]] * dense[idx[k], j]) + beta * out[r, j]`,
//! with `init` the offset or 0, `table[0] == 0` (a row's missing entry), and `beta == 0`
//! meaning "overwrite". Terms are added in list
//! order, so a row's result depends only on its list, never on how groups were split.
//! With `G == 2` each vector loaded from `dense` feeds both rows: the loads, not the FMAs,
//! are what limits these kernels, since each comes from L2.
//! Groups go in tiles; within a tile, blocks go column-outer, groups-inner, so a column
//! block of `dense` stays in L2 across the tile's groups.

use super::tiles::{for_each_tile, Cuts};
pub(super) use super::tiles::{Args, Lists};
use super::Isa;

/// `table` with `table[0] = 0`: a group's row that lacks an entry another row has gets byte 0,
/// which must add nothing (the caller's `table[0]` is never used for a stored entry).
pub(super) fn zero_byte_table(table: &[f32; 256]) -> [f32; 256] {
    let mut t = *table;
    t[0] = 0.0;
    t
}

/// Groups `first..` of the product into `out` (whole rows of `a.n`; the last group may have
/// fewer than `G` rows).
pub(super) fn run<const G: usize, L: Lists<G>>(
    isa: Isa,
    lists: &L,
    first: usize,
    a: &Args,
    out: &mut [f32],
) {
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

/// Vectors of accumulators per row of a group: with FMA latency 4 and 2 per cycle, 8 chains
/// keep one row busy; two rows share 12 (16 AVX2 registers hold them, the two scales and the
/// loaded vector).
const fn vectors_per_row(g: usize) -> usize {
    if g == 1 {
        8
    } else {
        6
    }
}

/// Calls `$f::<G, full vectors, masked tail vector?, _>` for a block of `$len` floats, `$w`
/// floats a vector.
#[cfg(target_arch = "x86_64")]
macro_rules! dispatch {
    ($g:ident, $len:expr, $w:expr, $f:ident($($arg:expr),*)) => {
        match ($len / $w, $len % $w != 0) {
            (8, false) => $f::<$g, 8, false, _>($($arg),*),
            (7, false) => $f::<$g, 7, false, _>($($arg),*),
            (6, false) => $f::<$g, 6, false, _>($($arg),*),
            (5, false) => $f::<$g, 5, false, _>($($arg),*),
            (4, false) => $f::<$g, 4, false, _>($($arg),*),
            (3, false) => $f::<$g, 3, false, _>($($arg),*),
            (2, false) => $f::<$g, 2, false, _>($($arg),*),
            (1, false) => $f::<$g, 1, false, _>($($arg),*),
            (7, true) => $f::<$g, 7, true, _>($($arg),*),
            (6, true) => $f::<$g, 6, true, _>($($arg),*),
            (5, true) => $f::<$g, 5, true, _>($($arg),*),
            (4, true) => $f::<$g, 4, true, _>($($arg),*),
            (3, true) => $f::<$g, 3, true, _>($($arg),*),
            (2, true) => $f::<$g, 2, true, _>($($arg),*),
            (1, true) => $f::<$g, 1, true, _>($($arg),*),
            (0, true) => $f::<$g, 0, true, _>($($arg),*),
            _ => unreachable!("block wider than 8 vectors"),
        }
    };
}

/// The SIMD kernels, written once over a module's vector type `V`, mask type `M`, width `W`
/// and helpers (see [`simd_ops`], and `load_tail`, `store_tail`, `tail_mask`); `$feature` is
/// the module's target feature list.
#[cfg(target_arch = "x86_64")]
macro_rules! simd_kernels {
    ($feature:literal) => {
        #[target_feature(enable = $feature)]
        pub(super) fn run<const G: usize, L: Lists<G>>(
            lists: &L,
            first: usize,
            a: &Args,
            out: &mut [f32],
        ) {
            let n = a.n;
            let width = super::vectors_per_row(G) * W;
            super::for_each_tile(lists, first, n, out, |first, out| {
                let groups = out.len().div_ceil(G * n);
                let cuts = super::Cuts::new(lists, first, groups, a, width);
                for j0 in (0..n).step_by(width) {
                    let len = width.min(n - j0);
                    let mask = tail_mask(len % W);
                    for band in 0..cuts.bands {
                        for (i, rows) in out.chunks_mut(G * n).enumerate() {
                            let range = cuts.range(i, band);
                            // Every group's first band writes its rows; later ones add.
                            let resume = band > 0;
                            if resume && range.is_empty() {
                                continue;
                            }
                            let list = lists.entries(first + i, range);
                            dispatch!(G, len, W, block(list, a, resume, j0, len, mask, rows));
                        }
                    }
                }
            });
        }

        /// Block `[j0, j0 + len)` of a group's rows (`rows`: up to `G` rows of `a.n`): NV full
        /// vectors, plus a masked one if T. With `resume`, the sums start from what `rows`
        /// hold (an earlier band's).
        #[target_feature(enable = $feature)]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        fn block<const G: usize, const NV: usize, const T: bool, I>(
            list: I,
            a: &Args,
            resume: bool,
            j0: usize,
            len: usize,
            mask: M,
            rows: &mut [f32],
        ) where
            I: Iterator<Item = (usize, [u8; G])>,
        {
            debug_assert!(len >= NV * W && len <= (NV + T as usize) * W);
            let mut acc = [[zero(); NV]; G];
            let mut acc_t = [zero(); G];
            if resume {
                for (g, row) in rows.chunks_exact(a.n).enumerate() {
                    let p = row[j0..j0 + len].as_ptr();
                    // SAFETY: `p` has `len` floats, read as `off` below.
                    unsafe {
                        for (q, r) in acc[g].iter_mut().enumerate() {
                            *r = load(p.add(q * W));
                        }
                        if T {
                            acc_t[g] = load_tail(p.add(NV * W), mask);
                        }
                    }
                }
            } else if let Some(off) = a.offset {
                let off = &off[j0..j0 + len];
                // SAFETY: `off` has `len` floats: NV*W full lanes, then the tail masked to `len`.
                unsafe {
                    for g in 0..G {
                        for (q, r) in acc[g].iter_mut().enumerate() {
                            *r = load(off.as_ptr().add(q * W));
                        }
                        if T {
                            acc_t[g] = load_tail(off.as_ptr().add(NV * W), mask);
                        }
                    }
                }
            }
            for (c, bytes) in list {
                let mut s = [zero(); G];
                for (v, &b) in s.iter_mut().zip(&bytes) {
                    *v = splat(a.table[b as usize]);
                }
                let start = c * a.ld + j0;
                let row = &a.dense[start..start + len];
                // SAFETY: `row` has `len` floats, read as for `off` above.
                unsafe {
                    for q in 0..NV {
                        let x = load(row.as_ptr().add(q * W));
                        for g in 0..G {
                            acc[g][q] = fma(s[g], x, acc[g][q]);
                        }
                    }
                    if T {
                        let x = load_tail(row.as_ptr().add(NV * W), mask);
                        for g in 0..G {
                            acc_t[g] = fma(s[g], x, acc_t[g]);
                        }
                    }
                }
            }
            let alpha = splat(a.alpha);
            let beta = splat(a.beta);
            let keep = a.beta != 0.0;
            for (g, row) in rows.chunks_exact_mut(a.n).enumerate() {
                let out = &mut row[j0..j0 + len];
                let p = out.as_mut_ptr();
                // SAFETY: `out` has `len` floats, accessed as `off` above; lanes past `len` are
                // masked.
                unsafe {
                    for (q, r) in acc[g].iter().enumerate() {
                        let mut y = mul(alpha, *r);
                        if keep {
                            y = fma(beta, load(p.add(q * W)), y);
                        }
                        store(p.add(q * W), y);
                    }
                    if T {
                        let mut y = mul(alpha, acc_t[g]);
                        if keep {
                            y = fma(beta, load_tail(p.add(NV * W), mask), y);
                        }
                        store_tail(p.add(NV * W), mask, y);
                    }
                }
            }
        }
    };
}

/// The helpers that map one to one onto intrinsics: `zero`, `splat`, `fma`, `mul`, `load`
/// (`W` floats, unaligned) and `store`, in a module with vector type `V`.
#[cfg(target_arch = "x86_64")]
macro_rules! simd_ops {
    ($feature:literal, $zero:ident, $splat:ident, $fma:ident, $mul:ident, $load:ident,
        $store:ident) => {
        #[target_feature(enable = $feature)]
        #[inline]
        fn zero() -> V {
            $zero()
        }

        #[target_feature(enable = $feature)]
        #[inline]
        fn splat(x: f32) -> V {
            $splat(x)
        }

        #[target_feature(enable = $feature)]
        #[inline]
        fn fma(a: V, b: V, c: V) -> V {
            $fma(a, b, c)
        }

        #[target_feature(enable = $feature)]
        #[inline]
        fn mul(a: V, b: V) -> V {
            $mul(a, b)
        }

        /// SAFETY: `p` must be valid for reading `W` floats.
        #[target_feature(enable = $feature)]
        #[inline]
        unsafe fn load(p: *const f32) -> V {
            unsafe { $load(p) }
        }

        /// SAFETY: `p` must be valid for writing `W` floats.
        #[target_feature(enable = $feature)]
        #[inline]
        unsafe fn store(p: *mut f32, v: V) {
            unsafe { $store(p, v) }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Args, Lists};
    use std::arch::x86_64::*;

    type V = __m256;
    type M = __m256i;
    /// Floats per vector.
    const W: usize = 8;

    simd_kernels!("avx2,fma");
    simd_ops!(
        "avx2,fma",
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_mul_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps
    );

    /// Lanes `0..rem` set (none when `rem == 0`; only used when `rem > 0`).
    #[target_feature(enable = "avx2,fma")]
    fn tail_mask(rem: usize) -> M {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32), lanes)
    }

    /// SAFETY: `p` must be valid for reading the lanes set in `mask`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load_tail(p: *const f32, mask: M) -> V {
        unsafe { _mm256_maskload_ps(p, mask) }
    }

    /// SAFETY: `p` must be valid for writing the lanes set in `mask`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn store_tail(p: *mut f32, mask: M, v: V) {
        unsafe { _mm256_maskstore_ps(p, mask, v) }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Args, Lists};
    use std::arch::x86_64::*;

    type V = __m512;
    type M = __mmask16;
    /// Floats per vector.
    const W: usize = 16;

    simd_kernels!("avx512f");
    simd_ops!(
        "avx512f",
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_mul_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps
    );

    /// Lanes `0..rem` set.
    #[target_feature(enable = "avx512f")]
    fn tail_mask(rem: usize) -> M {
        ((1u32 << rem) - 1) as M
    }

    /// SAFETY: `p` must be valid for reading the lanes set in `mask`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load_tail(p: *const f32, mask: M) -> V {
        unsafe { _mm512_maskz_loadu_ps(mask, p) }
    }

    /// SAFETY: `p` must be valid for writing the lanes set in `mask`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store_tail(p: *mut f32, mask: M, v: V) {
        unsafe { _mm512_mask_storeu_ps(p, mask, v) }
    }
}

/// Plain Rust: a 64-float block per row in a local array that the compiler vectorizes for
/// the baseline.
mod portable {
    use super::{Args, Lists};

    const BLOCK: usize = 64;

    pub(super) fn run<const G: usize, L: Lists<G>>(
        lists: &L,
        first: usize,
        a: &Args,
        out: &mut [f32],
    ) {
        let n = a.n;
        for j0 in (0..n).step_by(BLOCK) {
            let len = BLOCK.min(n - j0);
            for (i, rows) in out.chunks_mut(G * n).enumerate() {
                let mut buf = [[0.0f32; BLOCK]; G];
                if let Some(off) = a.offset {
                    for acc in &mut buf {
                        acc[..len].copy_from_slice(&off[j0..j0 + len]);
                    }
                }
                for (c, bytes) in lists.entries(first + i, 0..lists.len(first + i)) {
                    let start = c * a.ld + j0;
                    let row = &a.dense[start..start + len];
                    for (acc, b) in buf.iter_mut().zip(bytes) {
                        let s = a.table[b as usize];
                        for (x, &y) in acc[..len].iter_mut().zip(row) {
                            *x += s * y;
                        }
                    }
                }
                for (row, acc) in rows.chunks_exact_mut(n).zip(&buf) {
                    let o = &mut row[j0..j0 + len];
                    if a.beta == 0.0 {
                        for (y, &x) in o.iter_mut().zip(&acc[..len]) {
                            *y = a.alpha * x;
                        }
                    } else {
                        for (y, &x) in o.iter_mut().zip(&acc[..len]) {
                            *y = a.alpha * x + a.beta * *y;
                        }
                    }
                }
            }
        }
    }
}
