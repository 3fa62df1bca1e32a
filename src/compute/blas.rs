//! The one door to OpenBLAS: `sgemm` on ndarray views, and the library's core queries. Every
//! matrix product of training and evaluation goes through [`gemm`], which cuts a large
//! product over the rayon pool it runs in; OpenBLAS itself always runs single-threaded.

use super::small;
use cblas_sys::{cblas_sgemm, CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::sync::Once;

extern "C" {
    fn openblas_set_num_threads(num_threads: c_int);
    fn openblas_get_corename() -> *const c_char;
    fn openblas_get_config() -> *const c_char;
    fn openblas_get_parallel() -> c_int;
}

/// `openblas_get_parallel`'s answer for a build with its own pthreads pool.
const OPENBLAS_PTHREADS: c_int = 1;

/// Whether an operand enters the product as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    N,
    T,
}

impl Op {
    fn cblas(self) -> CBLAS_TRANSPOSE {
        match self {
            Op::N => CBLAS_TRANSPOSE::CblasNoTrans,
            Op::T => CBLAS_TRANSPOSE::CblasTrans,
        }
    }

    /// The operand as it enters the product (a transposed view, never a copy).
    fn view(self, x: ArrayView2<f32>) -> ArrayView2<f32> {
        match self {
            Op::N => x,
            Op::T => x.reversed_axes(),
        }
    }

    fn apply(self, (rows, cols): (usize, usize)) -> (usize, usize) {
        match self {
            Op::N => (rows, cols),
            Op::T => (cols, rows),
        }
    }
}

/// Leading dimension of a row-major view whose rows may be a sub-range of a wider buffer.
fn leading_dim(shape: &[usize], strides: &[isize], what: &str) -> c_int {
    assert!(
        strides[1] == 1 || shape[1] <= 1,
        "gemm: {what} must have contiguous rows (strides {strides:?})"
    );
    let ld = if shape[0] <= 1 {
        shape[1].max(1)
    } else {
        usize::try_from(strides[0]).expect("gemm: negative row stride")
    };
    assert!(ld >= shape[1].max(1), "gemm: {what} rows overlap");
    c_int::try_from(ld).expect("gemm: leading dimension exceeds BLAS int")
}

fn blas_int(n: usize) -> c_int {
    c_int::try_from(n).expect("gemm: dimension exceeds BLAS int")
}

/// `c = alpha * op_a(a) * op_b(b) + beta * c`, row-major, transposes by flag (never by copy).
///
/// Shapes are checked; a mismatch is a programming error and panics. A product of at most
/// [`small::MAX_MACS`] multiply-adds runs as a plain loop, and one of over 128K is cut into
/// one piece per thread of the current rayon pool.
pub fn gemm(
    alpha: f32,
    a: ArrayView2<f32>,
    op_a: Op,
    b: ArrayView2<f32>,
    op_b: Op,
    beta: f32,
    mut c: ArrayViewMut2<f32>,
) {
    let (m, k) = op_a.apply(a.dim());
    let (k_b, n) = op_b.apply(b.dim());
    assert_eq!(k, k_b, "gemm: inner dimensions differ");
    assert_eq!(c.dim(), (m, n), "gemm: output shape");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.map_inplace(|v| *v *= beta);
        return;
    }
    if m * n * k <= small::MAX_MACS {
        return small::product(alpha, op_a.view(a), op_b.view(b), beta, c);
    }
    single_threaded_openblas();
    let parts = if m * n * k < MIN_SPLIT_MACS {
        1
    } else {
        threads()
    };
    let ops = Operands {
        alpha,
        a,
        op_a,
        b,
        op_b,
        beta,
    };
    cut(parts, ops, c);
}

/// Products with fewer multiply-adds than this run on the calling thread: below it, handing
/// half to another thread costs more than it saves. (At 1M, the 384K-multiply-add output
/// layer products of a batch-128 step, and the 720K hidden ones of a batch-8 step, ran alone
/// while the other core waited; cutting them took interleaved epochs from 0.70 to 0.61 s at
/// batch 128 and from 1.9 to 1.5 s at batch 8.)
const MIN_SPLIT_MACS: usize = 1 << 17;

/// Whether [`gemm`] cuts a product of `macs` multiply-adds between the pool's threads.
pub fn cuts(macs: usize) -> bool {
    macs >= MIN_SPLIT_MACS && threads() > 1
}

/// Parts are cut at multiples of this many rows (or columns), a multiple of every sgemm
/// kernel's register tile, so that no part ends in a narrow edge kernel it could avoid.
const SPLIT_ALIGN: usize = 16;

/// What `c = alpha * op_a(a) * op_b(b) + beta * c` reads.
#[derive(Clone, Copy)]
struct Operands<'a> {
    alpha: f32,
    a: ArrayView2<'a, f32>,
    op_a: Op,
    b: ArrayView2<'a, f32>,
    op_b: Op,
    beta: f32,
}

/// The product in `parts` pieces of `c`, one per rayon task, cut along its longer side;
/// each piece is one single-threaded sgemm. OpenBLAS' own threads are never used: after
/// every threaded call its idle worker spins on `sched_yield` for ~0.1 s, and on 2 cores
/// that took a core from rayon's sparse products and elementwise passes between sgemm
/// calls (~22% of a batch-600 epoch's samples were the scheduler). How a product is cut
/// depends only on its shape and `parts`, so results repeat for a given thread count.
fn cut(parts: usize, ops: Operands, c: ArrayViewMut2<f32>) {
    let (m, n) = c.dim();
    let along_rows = m >= n;
    let long = if along_rows { m } else { n };
    let at = (long * (parts / 2) / parts).div_ceil(SPLIT_ALIGN) * SPLIT_ALIGN;
    if parts <= 1 || at == 0 || at >= long {
        return sgemm(ops, c);
    }
    let (left, right) = (parts / 2, parts - parts / 2);
    let (first, second, (c1, c2)) = if along_rows {
        let (a1, a2) = match ops.op_a {
            Op::N => ops.a.split_at(Axis(0), at),
            Op::T => ops.a.split_at(Axis(1), at),
        };
        let (first, second) = (Operands { a: a1, ..ops }, Operands { a: a2, ..ops });
        (first, second, c.split_at(Axis(0), at))
    } else {
        let (b1, b2) = match ops.op_b {
            Op::N => ops.b.split_at(Axis(1), at),
            Op::T => ops.b.split_at(Axis(0), at),
        };
        let (first, second) = (Operands { b: b1, ..ops }, Operands { b: b2, ..ops });
        (first, second, c.split_at(Axis(1), at))
    };
    rayon::join(|| cut(left, first, c1), || cut(right, second, c2));
}

/// One single-threaded `cblas_sgemm` on checked views.
fn sgemm(ops: Operands, mut c: ArrayViewMut2<f32>) {
    let (m, k) = ops.op_a.apply(ops.a.dim());
    let n = c.ncols();
    if m == 0 || n == 0 {
        return;
    }
    let lda = leading_dim(ops.a.shape(), ops.a.strides(), "a");
    let ldb = leading_dim(ops.b.shape(), ops.b.strides(), "b");
    let ldc = leading_dim(c.shape(), c.strides(), "c");
    // OpenBLAS clears `c` for beta = 0 one scalar store at a time (5% of a batch-32 Adam
    // step's samples); a row fill clears it at full width, and beta = 1 skips that pass.
    // Either way the kernel adds its sums to zeros, so the bits are the same.
    let beta = if ops.beta == 0.0 {
        c.rows_mut().into_iter().for_each(|mut row| row.fill(0.0));
        1.0
    } else {
        ops.beta
    };
    // SAFETY: the views are live for the call, shapes and leading dimensions were checked
    // against the transposition flags, and `c` is borrowed mutably so it aliases nothing.
    unsafe {
        cblas_sgemm(
            CBLAS_LAYOUT::CblasRowMajor,
            ops.op_a.cblas(),
            ops.op_b.cblas(),
            blas_int(m),
            blas_int(n),
            blas_int(k),
            ops.alpha,
            ops.a.as_ptr(),
            lda,
            ops.b.as_ptr(),
            ldb,
            beta,
            c.as_mut_ptr(),
            ldc,
        );
    }
}

/// Tells OpenBLAS, once, to run every call on its caller's thread alone.
fn single_threaded_openblas() {
    static ONCE: Once = Once::new();
    // SAFETY: a plain setter of the library's global thread count.
    ONCE.call_once(|| unsafe { openblas_set_num_threads(1) });
}

/// Ends OpenBLAS' own pool of threads, which no product here ever uses.
///
/// A pthreads OpenBLAS starts its pool when it is loaded, and each of its threads spins on
/// `sched_yield` for ~0.1 s before it sleeps. On 2 cores that took a core from the first
/// tenth of a second of every run: all of an online sine run (1.5 µs per step instead of
/// 0.95). `blas_thread_shutdown_` is OpenBLAS' own (its fork handler), exported but in no
/// header, so it is looked up by name; where it is missing the pool is left to fall asleep.
///
/// Call it first thing in a program's `main`, like [`super::coretype::ensure_fast_blas_core`]:
/// nothing else may be inside OpenBLAS while its pool is taken down.
pub fn end_openblas_pool() {
    single_threaded_openblas();
    // SAFETY: a plain query of how the library was built.
    if unsafe { openblas_get_parallel() } != OPENBLAS_PTHREADS {
        return;
    }
    // SAFETY: a lookup among the loaded symbols; the name is NUL-terminated.
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"blas_thread_shutdown_".as_ptr()) };
    if symbol.is_null() {
        return;
    }
    // SAFETY: OpenBLAS defines `int blas_thread_shutdown_(void)`; it wakes, joins and forgets
    // the pool's threads. The caller guarantees no call is in flight, and with one thread
    // per call OpenBLAS never queues work to the pool again.
    let shutdown: extern "C" fn() -> c_int = unsafe { std::mem::transmute(symbol) };
    shutdown();
}

/// The tasks a large product outside a serial scope is cut into: the threads of the rayon
/// pool it runs in (the global pool outside any).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

fn owned(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return "unknown".to_string();
    }
    // SAFETY: OpenBLAS returns pointers to static NUL-terminated strings.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .trim()
        .to_string()
}

/// The CPU kernel family OpenBLAS chose (or was told through `OPENBLAS_CORETYPE`).
pub fn core_name() -> String {
    // SAFETY: returns a static string.
    owned(unsafe { openblas_get_corename() })
}

/// OpenBLAS' build description (version, threading model, core).
pub fn config() -> String {
    // SAFETY: returns a static string.
    owned(unsafe { openblas_get_config() })
}

/// One line for run headers and benchmark output.
pub fn describe() -> String {
    let mut line = format!(
        "OpenBLAS core {} ({}), products cut over {} thread(s)",
        core_name(),
        config(),
        threads()
    );
    for var in ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"] {
        if let Ok(value) = std::env::var(var) {
            line.push_str(&format!(", {var}={value}"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};

    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f32> {
        let mut c = Array2::zeros((a.nrows(), b.ncols()));
        for i in 0..a.nrows() {
            for j in 0..b.ncols() {
                c[[i, j]] = (0..a.ncols()).map(|k| a[[i, k]] * b[[k, j]]).sum();
            }
        }
        c
    }

    /// Whole numbers, so that every path's sums are exact whatever their order.
    fn whole(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 7 + j * 3 + seed) % 9) as f32 - 4.0
        })
    }

    /// Each test runs on a product for the small loop and one for `sgemm`.
    const SCALES: [usize; 2] = [1, 6];

    #[test]
    fn products_with_every_transpose_flag_match_the_definition() {
        for scale in SCALES {
            let (a, b) = (
                whole(2 * scale, 3 * scale, 1),
                whole(3 * scale, 2 * scale, 2),
            );
            assert_eq!(scale == 1, 2 * 3 * 2 * scale.pow(3) <= small::MAX_MACS);
            let want = naive(&a, &b);
            let at = a.t().as_standard_layout().into_owned();
            let bt = b.t().as_standard_layout().into_owned();
            for (av, oa) in [(a.view(), Op::N), (at.view(), Op::T)] {
                for (bv, ob) in [(b.view(), Op::N), (bt.view(), Op::T)] {
                    // beta = 0 overwrites: NaN in `c` does not carry over.
                    let mut c = Array2::from_elem(want.dim(), f32::NAN);
                    gemm(1.0, av, oa, bv, ob, 0.0, c.view_mut());
                    assert_eq!(c, want, "flags {oa:?} {ob:?}, scale {scale}");
                }
            }
        }
    }

    #[test]
    fn beta_accumulates_and_row_subviews_are_honoured() {
        for k in SCALES {
            let (rows, used) = (5 * k, 3 * k);
            let a = whole(rows, 4 * k, 3);
            let b = whole(4 * k, 3 * k, 4);
            let mut c = Array2::from_elem((rows, 3 * k), 1.0f32);
            // Only the first rows of `a` and `c`, as for a partial last batch.
            let a3 = a.slice(s![..used, ..]);
            gemm(
                2.0,
                a3,
                Op::N,
                b.view(),
                Op::N,
                1.0,
                c.slice_mut(s![..used, ..]),
            );
            let want = naive(&a3.to_owned(), &b) * 2.0 + 1.0;
            assert_eq!(c.slice(s![..used, ..]), want, "scale {k}");
            assert!(c.slice(s![used.., ..]).iter().all(|&v| v == 1.0));
            // beta = 0 into columns 1.. of `c`: column 0 and the rows below stay as they were.
            let mut c = Array2::from_elem((rows, 4 * k), -3.0f32);
            let b2 = b.slice(s![.., ..2 * k]);
            gemm(
                1.0,
                a3,
                Op::N,
                b2,
                Op::N,
                0.0,
                c.slice_mut(s![..used, 1..1 + 2 * k]),
            );
            let want = naive(&a3.to_owned(), &b2.to_owned());
            assert_eq!(c.slice(s![..used, 1..1 + 2 * k]), want, "scale {k}");
            let rest = c.slice(s![..used, 1 + 2 * k..]);
            assert!(c.column(0).iter().chain(rest.iter()).all(|&v| v == -3.0));
            assert!(c.slice(s![used.., ..]).iter().all(|&v| v == -3.0));
        }
    }

    #[test]
    fn only_products_large_enough_are_cut_and_only_on_a_pool_of_several() {
        let in_pool = |n: usize, macs: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build();
            pool.unwrap().install(|| cuts(macs))
        };
        assert!(in_pool(2, MIN_SPLIT_MACS));
        assert!(!in_pool(2, MIN_SPLIT_MACS - 1));
        assert!(!in_pool(1, 1 << 30));
    }

    #[test]
    fn products_follow_the_pool_and_the_core_is_named_in_the_header() {
        for n in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap();
            assert_eq!(pool.install(threads), n);
        }
        let core = core_name();
        assert!(!core.is_empty() && core != "unknown", "{core}");
        assert!(describe().starts_with(&format!("OpenBLAS core {core} (")));
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use ndarray::Array2;

    fn filled(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let h = (i as u32 * 7919 + j as u32 * 104_729 + seed).wrapping_mul(2_654_435_761);
            (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
    }

    fn product(
        threads: usize,
        a: &Array2<f32>,
        oa: Op,
        b: &Array2<f32>,
        ob: Op,
        c: &mut Array2<f32>,
    ) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| gemm(0.5, a.view(), oa, b.view(), ob, 0.25, c.view_mut()));
    }

    /// Cut products (one sgemm per rayon task, run side by side) agree with the whole
    /// product to rounding, and repeat bit for bit on the same thread count. (OpenBLAS
    /// blocks a short product differently, so the bits of a cut one may differ.)
    #[test]
    fn cut_products_match_whole_ones_and_repeat_exactly() {
        let shapes = [
            (600, 300, 784),
            (37, 300, 300),
            (300, 600, 300),
            (1000, 10, 300),
            (77, 1025, 129),
        ];
        let flags = [
            (Op::N, Op::N),
            (Op::T, Op::N),
            (Op::N, Op::T),
            (Op::T, Op::T),
        ];
        for &(m, n, k) in &shapes {
            for (oa, ob) in flags {
                let a = match oa {
                    Op::N => filled(m, k, 1),
                    Op::T => filled(k, m, 1),
                };
                let b = match ob {
                    Op::N => filled(k, n, 2),
                    Op::T => filled(n, k, 2),
                };
                let start = filled(m, n, 3);
                let mut whole = start.clone();
                product(1, &a, oa, &b, ob, &mut whole);
                for threads in [2, 3] {
                    let what = format!("{m}x{n}x{k} {oa:?}{ob:?} on {threads} threads");
                    let mut cut = start.clone();
                    product(threads, &a, oa, &b, ob, &mut cut);
                    let worst = cut
                        .iter()
                        .zip(&whole)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0.0f32, f32::max);
                    assert!(worst < 1e-4 * (k as f32).sqrt(), "{what}: off by {worst}");
                    let mut again = start.clone();
                    product(threads, &a, oa, &b, ob, &mut again);
                    assert_eq!(cut, again, "{what}: not repeatable");
                }
            }
        }
    }
}
