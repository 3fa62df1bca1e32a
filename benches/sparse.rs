//! Sparse first-layer products against OpenBLAS sgemm on the same shapes (K=784, H=300).
//!
//! Data: MNIST training images when the gzipped IDX file is there, and synthetic bytes at
//! density 0.19 (nonzeros uniform in 1..=255). Each product runs with 1 and 2 threads
//! (OpenBLAS threads and a rayon pool set alike), and the sparse one on every ISA at 1 thread.
//! `sparse_trainer` is the forward as training calls it (`sparse::forward`: the detected ISA,
//! and from batch ~64 on MNIST the line-aligned copy of the weights, its cost included).

extern crate blas_src;

use backprop::compute::rng::Rng;
use backprop::compute::sparse::{
    forward, forward_with, weight_gradient_with, AlignedRows, CsrBytes, Isa, Transpose,
};
use cblas_sys::{cblas_sgemm, CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use criterion::{BenchmarkId, Criterion};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use std::ffi::CStr;
use std::hint::black_box;
use std::io::Read;
use std::os::raw::{c_char, c_int};
use std::time::{Duration, Instant};

extern "C" {
    fn openblas_set_num_threads(n: c_int);
    fn openblas_get_corename() -> *const c_char;
}

const K: usize = 784;
const H: usize = 300;
const BATCHES: [usize; 3] = [32, 128, 600];
const MNIST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/mnist/train-images-idx3-ubyte.gz"
);

/// Uniform floats in [-1, 1).
fn floats(rng: &mut Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn synthetic(rows: usize, rng: &mut Rng) -> Vec<u8> {
    (0..rows * K)
        .map(|_| {
            if rng.random::<f32>() < 0.19 {
                rng.random_range(1..=255u8)
            } else {
                0
            }
        })
        .collect()
}

fn mnist() -> Option<Vec<u8>> {
    let file = std::fs::File::open(MNIST).ok()?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes.split_off(16))
}

/// Row-major `c = a · b` (`a` m×k, transposed if `ta`, i.e. stored k×m), `b` k×n.
#[allow(clippy::too_many_arguments)]
fn sgemm(ta: bool, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (op, lda) = if ta {
        (CBLAS_TRANSPOSE::CblasTrans, m)
    } else {
        (CBLAS_TRANSPOSE::CblasNoTrans, k)
    };
    // SAFETY: the slices hold the m×k, k×n and m×n matrices described to BLAS.
    unsafe {
        cblas_sgemm(
            CBLAS_LAYOUT::CblasRowMajor,
            op,
            CBLAS_TRANSPOSE::CblasNoTrans,
            m as c_int,
            n as c_int,
            k as c_int,
            1.0,
            a.as_ptr(),
            lda as c_int,
            b.as_ptr(),
            n as c_int,
            0.0,
            c.as_mut_ptr(),
            n as c_int,
        )
    }
}

fn set_threads(t: usize) {
    // SAFETY: plain setter of OpenBLAS's thread count.
    unsafe { openblas_set_num_threads(t as c_int) };
}

/// Times `iters` calls of `f` made on a thread of `pool` (so rayon splits into that pool).
fn in_pool(pool: &rayon::ThreadPool, iters: u64, mut f: impl FnMut() + Send) -> Duration {
    pool.install(|| {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        start.elapsed()
    })
}

fn bench_dataset(c: &mut Criterion, name: &str, data: &[u8], pools: &[rayon::ThreadPool]) {
    let start = Instant::now();
    let csr = CsrBytes::from_dense(K, data).unwrap();
    eprintln!(
        "{name}: {} rows, density {:.4}, max row nnz {}, CSR {:.1} MB built in {:.0} ms",
        csr.rows(),
        csr.density(),
        csr.max_row_nnz(),
        csr.heap_bytes() as f64 / 1e6,
        start.elapsed().as_secs_f64() * 1e3
    );
    let mut table = [0.0f32; 256];
    for (v, x) in table.iter_mut().enumerate() {
        *x = v as f32 / 255.0;
    }
    let mut rng = Rng::seed_from_u64(7);
    let w = floats(&mut rng, K * H);
    let mut order: Vec<usize> = (0..csr.rows()).collect();
    order.shuffle(&mut rng);
    for &batch in &BATCHES {
        // A fixed random batch; dense X is the same rows through the same table.
        let samples: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..csr.rows()))
            .collect();
        let x: Vec<f32> = samples
            .iter()
            .flat_map(|&s| data[s * K..(s + 1) * K].iter().map(|&b| table[b as usize]))
            .collect();
        let delta = floats(&mut rng, batch * H);
        let mut out = vec![0.0f32; batch * H];
        let mut dw = vec![0.0f32; K * H];
        let mut scratch = Transpose::for_csr(&csr, batch);
        let mut aligned = AlignedRows::default();

        let mut g = c.benchmark_group(format!("{name}/forward"));
        for (p, pool) in pools.iter().enumerate() {
            let t = p + 1;
            set_threads(t);
            g.bench_function(BenchmarkId::new(format!("sgemm_t{t}"), batch), |b| {
                b.iter(|| sgemm(false, batch, H, K, &x, &w, &mut out))
            });
            for &isa in Isa::available()
                .iter()
                .filter(|&&i| t == 1 || i == Isa::detected())
            {
                let id = BenchmarkId::new(format!("sparse_{}_t{t}", isa.name()), batch);
                g.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        in_pool(pool, iters, || {
                            forward_with(isa, &csr, &samples, &table, &w, H, H, &mut out)
                        })
                    })
                });
            }
            // What training runs: the detected ISA, reading a line-aligned copy of `w` (made
            // on every call) when the batch is large enough.
            let id = BenchmarkId::new(format!("sparse_trainer_t{t}"), batch);
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    in_pool(pool, iters, || {
                        forward(&csr, &samples, &table, &w, H, &mut out, &mut aligned)
                    })
                })
            });
            // The same, over a new batch of random rows each call, as an epoch reads them:
            // their rows come from memory, not from cache.
            let id = BenchmarkId::new(format!("sparse_trainer_fresh_t{t}"), batch);
            let mut next = 0;
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    in_pool(pool, iters, || {
                        let rows = &order[next..next + batch];
                        next = (next + batch) % (order.len() - batch);
                        forward(&csr, rows, &table, &w, H, &mut out, &mut aligned)
                    })
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("{name}/gradient"));
        for (p, pool) in pools.iter().enumerate() {
            let t = p + 1;
            set_threads(t);
            g.bench_function(BenchmarkId::new(format!("sgemm_t{t}"), batch), |b| {
                b.iter(|| sgemm(true, K, H, batch, &x, &delta, &mut dw))
            });
            for &isa in Isa::available()
                .iter()
                .filter(|&&i| t == 1 || i == Isa::detected())
            {
                let id = BenchmarkId::new(format!("sparse_{}_t{t}", isa.name()), batch);
                g.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        in_pool(pool, iters, || {
                            weight_gradient_with(
                                isa,
                                &csr,
                                &samples,
                                &table,
                                &delta,
                                H,
                                None,
                                1.0,
                                0.0,
                                &mut dw,
                                &mut scratch,
                            )
                        })
                    })
                });
            }
        }
        g.finish();
        black_box((&out, &dw));
    }
}

fn main() {
    // SAFETY: OpenBLAS returns a static NUL-terminated string.
    let core = unsafe { CStr::from_ptr(openblas_get_corename()) };
    eprintln!(
        "OpenBLAS core {core:?}; ISAs {:?}; sparse uses {:?}",
        Isa::available(),
        Isa::detected()
    );
    let pools: Vec<rayon::ThreadPool> = (1..=2)
        .map(|t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        })
        .collect();
    // Plots need system fonts a headless machine may lack; the figures are in the text.
    let mut c = Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    if let Some(data) = mnist() {
        bench_dataset(&mut c, "mnist", &data, &pools);
    } else {
        eprintln!("no MNIST at {MNIST}: synthetic data only");
    }
    let synth = synthetic(10_000, &mut Rng::seed_from_u64(11));
    bench_dataset(&mut c, "synthetic", &synth, &pools);
    c.final_summary();
}
