//! Every kernel against a naive f64 triple loop, on every ISA this CPU runs.

use super::*;

mod bands;

/// SplitMix64 (the crate's), as a stream: deterministic and cheap.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let z = crate::compute::rng::splitmix64(self.0);
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn float(&mut self) -> f32 {
        (self.unit() * 2.0 - 1.0) as f32
    }
    fn floats(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.float()).collect()
    }
}

/// `rows × width` bytes, each nonzero (1..=255) with probability `density`; every 5th row empty.
fn dataset(rng: &mut Rng, rows: usize, width: usize, density: f64) -> Vec<u8> {
    let mut data = vec![0u8; rows * width];
    for (i, row) in data.chunks_exact_mut(width.max(1)).enumerate() {
        if i % 5 == 3 {
            continue;
        }
        for b in row.iter_mut() {
            if rng.unit() < density {
                *b = 1 + rng.below(255) as u8;
            }
        }
    }
    data
}

/// A normalising table with a nonzero `table[0]`, which must never be used.
fn table() -> [f32; 256] {
    let mut t = [0.0; 256];
    for (v, x) in t.iter_mut().enumerate() {
        *x = (v as f32 / 255.0 - 0.13) / 0.31;
    }
    t
}

/// Samples with repeats, out of order.
fn samples(rng: &mut Rng, rows: usize, batch: usize) -> Vec<usize> {
    (0..batch).map(|_| rng.below(rows)).collect()
}

/// Asserts `got ≈ want` relative to `scale` (the sum of absolute terms).
fn assert_close(got: &[f32], want: &[f64], scale: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let tol = 1e-5 * s + 1e-6;
        assert!(
            (g as f64 - w).abs() <= tol,
            "{what}: element {k}: got {g}, want {w}"
        );
    }
}

fn naive_forward(
    data: &[u8],
    width: usize,
    samples: &[usize],
    t: &[f32; 256],
    w: &[f32],
    n: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut want = vec![0.0; samples.len() * n];
    let mut scale = vec![0.0; samples.len() * n];
    for (r, &s) in samples.iter().enumerate() {
        for c in 0..width {
            let v = data[s * width + c];
            if v == 0 {
                continue;
            }
            for j in 0..n {
                let term = t[v as usize] as f64 * w[c * n + j] as f64;
                want[r * n + j] += term;
                scale[r * n + j] += term.abs();
            }
        }
    }
    (want, scale)
}

#[allow(clippy::too_many_arguments)]
fn naive_gradient(
    data: &[u8],
    width: usize,
    samples: &[usize],
    t: &[f32; 256],
    delta: &[f32],
    n: usize,
    offset: Option<&[f32]>,
    alpha: f32,
    beta: f32,
    dw: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    let mut want = vec![0.0; width * n];
    let mut scale = vec![0.0; width * n];
    for p in 0..width {
        for j in 0..n {
            let mut sum = offset.map_or(0.0, |o| o[j] as f64);
            let mut abs = sum.abs();
            for (r, &s) in samples.iter().enumerate() {
                let v = data[s * width + p];
                if v != 0 {
                    let term = t[v as usize] as f64 * delta[r * n + j] as f64;
                    sum += term;
                    abs += term.abs();
                }
            }
            let old = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * dw[p * n + j] as f64
            };
            want[p * n + j] = alpha as f64 * sum + old;
            scale[p * n + j] = (alpha as f64 * abs).abs() + old.abs();
        }
    }
    (want, scale)
}

const WIDTHS: [usize; 3] = [1, 29, 784];
const NS: [usize; 9] = [1, 7, 8, 17, 64, 65, 129, 300, 301];
const DENSITIES: [f64; 5] = [0.0, 0.05, 0.19, 0.5, 1.0];

#[test]
fn forward_matches_naive_on_every_isa() {
    let mut rng = Rng(1);
    let t = table();
    for &width in &WIDTHS {
        for &density in &DENSITIES {
            let rows = 23;
            let data = dataset(&mut rng, rows, width, density);
            let csr = CsrBytes::from_dense(width, &data).unwrap();
            for &n in &NS {
                let batch = 1 + rng.below(12);
                let samples = samples(&mut rng, rows, batch);
                let w = rng.floats(width * n);
                let (want, scale) = naive_forward(&data, width, &samples, &t, &w, n);
                let mut aligned = AlignedRows::default();
                let (padded, ld) = aligned.copy_of(&w, n);
                for (&isa, (w, ld)) in Isa::available()
                    .iter()
                    .flat_map(|i| [(i, (&w[..], n)), (i, (padded, ld))])
                {
                    // One spare row of NaN: must be left alone.
                    let mut out = vec![f32::NAN; (batch + 1) * n];
                    forward_with(isa, &csr, &samples, &t, w, ld, n, &mut out);
                    let what = format!("{isa:?} width {width} density {density} n {n} ld {ld}");
                    assert_close(&out[..batch * n], &want, &scale, &what);
                    assert!(
                        out[batch * n..].iter().all(|x| x.is_nan()),
                        "{what}: spare row"
                    );
                }
            }
        }
    }
}

#[test]
fn gradient_matches_naive_on_every_isa() {
    let mut rng = Rng(2);
    let t = table();
    for &width in &WIDTHS {
        for &density in &DENSITIES {
            let rows = 31;
            let data = dataset(&mut rng, rows, width, density);
            let csr = CsrBytes::from_dense(width, &data).unwrap();
            let mut scratch = Transpose::for_csr(&csr, 16);
            for &n in &NS {
                for case in 0..4 {
                    let batch = rng.below(17);
                    let samples = samples(&mut rng, rows, batch);
                    let delta = rng.floats(batch * n);
                    let offset = (case % 2 == 1).then(|| rng.floats(n));
                    let (alpha, beta) = [(1.0, 0.0), (-0.7, 0.0), (0.5, 0.9), (-1.3, -0.25)][case];
                    let old = if beta == 0.0 {
                        vec![f32::NAN; width * n]
                    } else {
                        rng.floats(width * n)
                    };
                    let off = offset.as_deref();
                    let (want, scale) = naive_gradient(
                        &data, width, &samples, &t, &delta, n, off, alpha, beta, &old,
                    );
                    for &isa in Isa::available() {
                        let mut dw = old.clone();
                        weight_gradient_with(
                            isa,
                            &csr,
                            &samples,
                            &t,
                            &delta,
                            n,
                            off,
                            alpha,
                            beta,
                            &mut dw,
                            &mut scratch,
                        );
                        let what =
                            format!("{isa:?} width {width} density {density} n {n} case {case}");
                        assert_close(&dw, &want, &scale, &what);
                    }
                }
            }
        }
    }
}

/// `weight_gradient_with(isa, ..)` into a copy of `old`, with `alpha = -0.5` and
/// `beta = 0.75`.
fn gradient_of(
    isa: Isa,
    csr: &CsrBytes,
    samples: &[usize],
    delta: &[f32],
    n: usize,
    offset: Option<&[f32]>,
    old: &[f32],
) -> Vec<f32> {
    let mut dw = old.to_vec();
    let mut scratch = Transpose::for_csr(csr, samples.len());
    let t = table();
    weight_gradient_with(
        isa,
        csr,
        samples,
        &t,
        delta,
        n,
        offset,
        -0.5,
        0.75,
        &mut dw,
        &mut scratch,
    );
    dw
}

/// Pairs where only the first or only the second pixel is nonzero, the lone last pixel of an
/// odd width, and batches of one sample.
#[test]
fn lone_pixels_of_a_pair_add_only_their_own_terms() {
    let (width, n) = (5, 13);
    #[rustfmt::skip]
    let data = [
        7, 0, 0, 0, 0, // pair 0: first pixel only
        0, 9, 0, 0, 0, // pair 0: second pixel only
        0, 0, 0, 0, 200, // the lone pixel of the last pair
        0, 0, 3, 255, 0, // pair 1: both
        1, 2, 0, 4, 5, // all pairs, pair 1 second only
    ];
    let csr = CsrBytes::from_dense(width, &data).unwrap();
    let mut rng = Rng(11);
    let old = rng.floats(width * n);
    let batches: [&[usize]; 7] = [
        &[0],
        &[1],
        &[2],
        &[3],
        &[4],
        &[0, 1, 2, 3, 4],
        &[4, 1, 1, 0],
    ];
    for samples in batches {
        let delta = rng.floats(samples.len() * n);
        let t = table();
        let (want, scale) =
            naive_gradient(&data, width, samples, &t, &delta, n, None, -0.5, 0.75, &old);
        for &isa in Isa::available() {
            let dw = gradient_of(isa, &csr, samples, &delta, n, None, &old);
            assert_close(&dw, &want, &scale, &format!("{isa:?} samples {samples:?}"));
        }
    }
}

/// A batch past the 2^16 positions an entry holds goes in turns; each turn must read its own
/// rows of `delta` and add to what the first wrote (offset, alpha and beta applied once).
#[test]
fn batches_past_one_fill_go_in_turns() {
    let (width, n, rows) = (5, 3, 40);
    let mut rng = Rng(13);
    let data = dataset(&mut rng, rows, width, 0.5);
    let csr = CsrBytes::from_dense(width, &data).unwrap();
    let samples = samples(&mut rng, rows, 2 * transpose::FILL_ROWS + 123);
    let delta = rng.floats(samples.len() * n);
    let offset = rng.floats(n);
    let off = Some(&offset[..]);
    let old = rng.floats(width * n);
    let t = table();
    let (want, scale) =
        naive_gradient(&data, width, &samples, &t, &delta, n, off, -0.5, 0.75, &old);
    for &isa in Isa::available() {
        let dw = gradient_of(isa, &csr, &samples, &delta, n, off, &old);
        // 130K terms summed in f32: a looser bound than `assert_close`, still far below
        // what a missed turn or a shifted row of `delta` would give.
        for (k, ((&g, &w), &s)) in dw.iter().zip(&want).zip(&scale).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-4 * s,
                "{isa:?} element {k}: got {g}, want {w} (scale {s})"
            );
        }
    }
}

#[test]
fn all_zero_batch_writes_offset_and_zeros() {
    let t = table();
    let (width, n) = (10, 19);
    let csr = CsrBytes::from_dense(width, &vec![0; 4 * width]).unwrap();
    assert_eq!(csr.nnz(), 0);
    let mut scratch = Transpose::for_csr(&csr, 4);
    let offset: Vec<f32> = (0..n).map(|j| j as f32).collect();
    for &isa in Isa::available() {
        let mut out = vec![f32::NAN; 3 * n];
        forward_with(
            isa,
            &csr,
            &[2, 0, 2],
            &t,
            &vec![1.0; width * n],
            n,
            n,
            &mut out,
        );
        assert!(out.iter().all(|&x| x == 0.0), "{isa:?}");
        let mut dw = vec![f32::INFINITY; width * n];
        let delta = vec![f32::NAN; 3 * n]; // never read: no nonzeros
        weight_gradient_with(
            isa,
            &csr,
            &[1, 1, 3],
            &t,
            &delta,
            n,
            Some(&offset),
            2.0,
            0.0,
            &mut dw,
            &mut scratch,
        );
        for row in dw.chunks_exact(n) {
            assert!(
                row.iter().zip(&offset).all(|(&g, &o)| g == 2.0 * o),
                "{isa:?}"
            );
        }
    }
}

#[test]
fn empty_batch_only_scales() {
    let t = table();
    let csr = CsrBytes::from_dense(3, &[0, 5, 7, 1, 0, 0]).unwrap();
    let mut scratch = Transpose::for_csr(&csr, 2);
    for &isa in Isa::available() {
        let mut out: Vec<f32> = vec![];
        forward_with(isa, &csr, &[], &t, &[1.0; 6], 2, 2, &mut out);
        let mut dw = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        weight_gradient_with(
            isa,
            &csr,
            &[],
            &t,
            &[],
            2,
            None,
            1.0,
            0.5,
            &mut dw,
            &mut scratch,
        );
        assert_eq!(dw, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0], "{isa:?}");
    }
}

/// Large enough to be split into rayon tasks and for the gradient's transpose to be filled in
/// chunks (up to its cap of 16), at an even and an odd width: the same bits from pools of 1,
/// 2, 3, 7 and 17 threads.
#[test]
fn results_do_not_depend_on_thread_count() {
    for width in [784, 785] {
        results_do_not_depend_on_thread_count_at(width);
    }
}

fn results_do_not_depend_on_thread_count_at(width: usize) {
    let mut rng = Rng(3);
    let t = table();
    let (rows, n, batch) = (300, 301, 257);
    let data = dataset(&mut rng, rows, width, 0.19);
    let csr = CsrBytes::from_dense(width, &data).unwrap();
    let samples = samples(&mut rng, rows, batch);
    let w = rng.floats(width * n);
    let delta = rng.floats(batch * n);
    let offset = rng.floats(n);
    let old = rng.floats(width * n);
    for &isa in Isa::available() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut out = vec![0.0; batch * n];
                forward_with(isa, &csr, &samples, &t, &w, n, n, &mut out);
                let mut dw = old.clone();
                let mut scratch = Transpose::for_csr(&csr, batch);
                weight_gradient_with(
                    isa,
                    &csr,
                    &samples,
                    &t,
                    &delta,
                    n,
                    Some(&offset),
                    -0.01,
                    0.9,
                    &mut dw,
                    &mut scratch,
                );
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (bits(&out), bits(&dw))
            })
        };
        let one = run(1);
        let f32s = |v: &[u32]| v.iter().map(|&b| f32::from_bits(b)).collect::<Vec<_>>();
        let (want, scale) = naive_forward(&data, width, &samples, &t, &w, n);
        assert_close(&f32s(&one.0), &want, &scale, "large forward");
        let (want, scale) = naive_gradient(
            &data,
            width,
            &samples,
            &t,
            &delta,
            n,
            Some(&offset),
            -0.01,
            0.9,
            &old,
        );
        assert_close(&f32s(&one.1), &want, &scale, "large gradient");
        for threads in [2, 3, 7, 17] {
            assert_eq!(
                one,
                run(threads),
                "{isa:?} width {width}: 1 vs {threads} threads"
            );
        }
    }
}

#[test]
#[should_panic(expected = "room for")]
fn undersized_transpose_panics_instead_of_growing() {
    let csr = CsrBytes::from_dense(4, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    let mut scratch = Transpose::new(4, 2, 1);
    let mut dw = vec![0.0; 4];
    weight_gradient(
        &csr,
        &[0, 1],
        &table(),
        &[1.0, 1.0],
        1,
        None,
        1.0,
        0.0,
        &mut dw,
        &mut scratch,
    );
}

#[test]
fn detected_isa_comes_first_and_portable_last() {
    let isas = Isa::available();
    assert_eq!(isas[0], Isa::detected());
    assert_eq!(*isas.last().unwrap(), Isa::Portable);
    assert!(Isa::Portable.is_available());
}
