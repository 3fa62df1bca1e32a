//! OpenBLAS' own pool of threads, which no product uses, is ended (the binary does it first
//! thing), and products still run after it. Its own binary: it counts the process' threads.

use backprop::compute::blas::{end_openblas_pool, gemm, Op};
use ndarray::Array2;
use std::os::raw::c_int;

extern "C" {
    fn openblas_get_num_threads() -> c_int;
    fn openblas_get_parallel() -> c_int;
}

fn threads_of_this_process() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn the_pool_ends_and_products_still_run() {
    // SAFETY: plain queries. Before the pool ends, OpenBLAS counts the caller and its workers.
    let (threads, parallel) = unsafe { (openblas_get_num_threads(), openblas_get_parallel()) };
    let workers = usize::try_from(threads).unwrap() - 1;
    let before = threads_of_this_process();
    end_openblas_pool();
    let after = threads_of_this_process();
    if parallel == 1 {
        assert_eq!(
            before - after,
            workers,
            "OpenBLAS' {workers} worker(s) still run"
        );
    } else {
        eprintln!("this OpenBLAS has no pthreads pool (openblas_get_parallel = {parallel})");
    }
    end_openblas_pool(); // a second call changes nothing
    assert_eq!(threads_of_this_process(), after);

    let a = Array2::from_shape_fn((64, 48), |(i, j)| ((i + 2 * j) % 5) as f32 - 2.0);
    let b = Array2::from_shape_fn((48, 32), |(i, j)| ((3 * i + j) % 7) as f32 - 3.0);
    let mut c = Array2::from_elem((64, 32), f32::NAN);
    gemm(1.0, a.view(), Op::N, b.view(), Op::N, 0.0, c.view_mut());
    assert_eq!(c, a.dot(&b));
    assert_eq!(
        threads_of_this_process(),
        after,
        "a product restarted the pool"
    );
}
