//! The one door to OpenBLAS: `sgemm` on ndarray views, and the library's thread and core
//! queries. Every matrix product of training and evaluation goes through [`gemm`].

use cblas_sys::{cblas_sgemm, CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use ndarray::{ArrayView2, ArrayViewMut2};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::elementwise;

extern "C" {
    fn openblas_set_num_threads(num_threads: c_int);
    fn openblas_get_num_threads() -> c_int;
    fn openblas_get_corename() -> *const c_char;
    fn openblas_get_config() -> *const c_char;
}

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
/// Shapes are checked; a mismatch is a programming error and panics.
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
    use_threads(if elementwise::is_serial() {
        1
    } else {
        threads()
    });
    let lda = leading_dim(a.shape(), a.strides(), "a");
    let ldb = leading_dim(b.shape(), b.strides(), "b");
    let ldc = leading_dim(c.shape(), c.strides(), "c");
    // SAFETY: the views are live for the call, shapes and leading dimensions were checked
    // above against the transposition flags, and `c` is borrowed mutably so it aliases nothing.
    unsafe {
        cblas_sgemm(
            CBLAS_LAYOUT::CblasRowMajor,
            op_a.cblas(),
            op_b.cblas(),
            blas_int(m),
            blas_int(n),
            blas_int(k),
            alpha,
            a.as_ptr(),
            lda,
            b.as_ptr(),
            ldb,
            beta,
            c.as_mut_ptr(),
            ldc,
        );
    }
}

/// A training step whose largest product has fewer multiply-adds than this runs on one
/// thread, products and elementwise passes alike (see [`single_threaded_step`]).
pub const MIN_THREADED_STEP_MACS: usize = 1 << 23;

/// Whether a step whose largest product has `macs` multiply-adds should run on the calling
/// thread alone. Measured on 2 cores (784-300-300-10): at batch 32 (7.5M) the products take
/// as long on one thread as on two, while two BLAS threads cost ~300 us per step elsewhere
/// (OpenBLAS' idle worker spins on `sched_yield` for ~0.1 s after every threaded call,
/// beside rayon's workers); at 64 (15M) one thread is about even, at 128 (30M) slower.
pub fn single_threaded_step(macs: usize) -> bool {
    macs < MIN_THREADED_STEP_MACS
}

/// The thread count set with [`set_threads`] (0: not set, OpenBLAS' own default).
static CONFIGURED: AtomicUsize = AtomicUsize::new(0);
/// The count last given to OpenBLAS (0: unknown).
static CURRENT: AtomicUsize = AtomicUsize::new(0);

/// Gives OpenBLAS `threads` unless it has them already.
fn use_threads(threads: usize) {
    if CURRENT.swap(threads, Ordering::Relaxed) != threads {
        let n = c_int::try_from(threads.max(1)).unwrap_or(c_int::MAX);
        // SAFETY: a plain setter of the library's global thread count.
        unsafe { openblas_set_num_threads(n) }
    }
}

/// Sets the number of threads OpenBLAS uses for products (process-wide); inside
/// [`elementwise::serial_if`]`(true, ..)` products use one.
pub fn set_threads(threads: usize) {
    let threads = threads.max(1);
    CONFIGURED.store(threads, Ordering::Relaxed);
    CURRENT.store(0, Ordering::Relaxed);
    use_threads(threads);
}

/// The threads a product outside a serial scope uses.
pub fn threads() -> usize {
    match CONFIGURED.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: a plain getter.
            let n = unsafe { openblas_get_num_threads() };
            usize::try_from(n).unwrap_or(1).max(1)
        }
        n => n,
    }
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
        "OpenBLAS core {} ({}), {} BLAS thread(s)",
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
    use ndarray::{array, s, Array2};

    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f32> {
        let mut c = Array2::zeros((a.nrows(), b.ncols()));
        for i in 0..a.nrows() {
            for j in 0..b.ncols() {
                c[[i, j]] = (0..a.ncols()).map(|k| a[[i, k]] * b[[k, j]]).sum();
            }
        }
        c
    }

    #[test]
    fn products_with_every_transpose_flag_match_the_definition() {
        let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let b = array![[1.0f32, -1.0], [0.5, 2.0], [3.0, 0.0]];
        let want = naive(&a, &b);
        let at = a.t().as_standard_layout().into_owned();
        let bt = b.t().as_standard_layout().into_owned();
        for (av, oa) in [(a.view(), Op::N), (at.view(), Op::T)] {
            for (bv, ob) in [(b.view(), Op::N), (bt.view(), Op::T)] {
                let mut c = Array2::from_elem((2, 2), 7.0f32);
                gemm(1.0, av, oa, bv, ob, 0.0, c.view_mut());
                assert_eq!(c, want, "flags {oa:?} {ob:?}");
            }
        }
    }

    #[test]
    fn beta_accumulates_and_row_subviews_are_honoured() {
        let a = Array2::from_shape_fn((5, 4), |(i, j)| (i * 4 + j) as f32);
        let b = Array2::from_shape_fn((4, 3), |(i, j)| (i as f32) - (j as f32));
        let mut c = Array2::from_elem((5, 3), 1.0f32);
        // Only the first 3 rows of `a` and `c`, as for a partial last batch.
        gemm(
            2.0,
            a.slice(s![..3, ..]),
            Op::N,
            b.view(),
            Op::N,
            1.0,
            c.slice_mut(s![..3, ..]),
        );
        let want = naive(&a.slice(s![..3, ..]).to_owned(), &b) * 2.0 + 1.0;
        assert_eq!(c.slice(s![..3, ..]), want);
        assert!(c.slice(s![3.., ..]).iter().all(|&v| v == 1.0));
    }

    #[test]
    fn thread_count_round_trips_and_the_core_is_named_in_the_header() {
        let before = threads();
        set_threads(1);
        assert_eq!(threads(), 1);
        set_threads(before);
        assert_eq!(threads(), before);
        let core = core_name();
        assert!(!core.is_empty() && core != "unknown", "{core}");
        assert!(describe().starts_with(&format!("OpenBLAS core {core} (")));
    }
}
