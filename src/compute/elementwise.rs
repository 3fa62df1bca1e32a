//! Elementwise passes over large buffers, split across the rayon pool; small buffers run
//! inline, where waking the pool would cost more than the pass. Every element is computed by
//! the same expression wherever it runs, so results do not depend on the split.

use rayon::prelude::*;

/// Below this many elements a pass runs on the calling thread.
const MIN_PARALLEL: usize = 1 << 15;
/// Elements per task (rounded to whole rows).
const TASK: usize = 1 << 14;
/// Below this many elements a [`Cost::Costly`] pass runs on the calling thread.
const MIN_PARALLEL_COSTLY: usize = 1 << 12;
/// Tasks per rayon thread for a [`Cost::Costly`] pass, so that stealing evens them out.
const COSTLY_TASKS_PER_THREAD: usize = 4;

/// What a pass costs per element, which decides how finely it is cut into tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// A few operations: only buffers large enough to repay waking the pool are split.
    Cheap,
    /// Tens of operations (an `exp` and a division): a batch-32 layer of 300 already takes
    /// tens of microseconds, so it is split into a few pieces per thread.
    Costly,
}

/// Task length for a buffer of `len` elements in rows of `row` elements, or `None` to run
/// inline.
fn task_len(len: usize, row: usize, cost: Cost) -> Option<usize> {
    let row = row.max(1);
    match cost {
        Cost::Cheap => (len >= MIN_PARALLEL).then(|| TASK.div_ceil(row) * row),
        Cost::Costly => {
            let tasks = rayon::current_num_threads() * COSTLY_TASKS_PER_THREAD;
            (len >= MIN_PARALLEL_COSTLY && tasks > 1)
                .then(|| len.div_ceil(tasks).div_ceil(row) * row)
        }
    }
}

/// Defines a function whose body runs compiled for AVX2 where the CPU has it: 8 lanes where
/// the baseline build has SSE2's 4. The bits are the same either way (Rust never fuses a
/// multiply and an add on its own). The body's loops must be inlined into it
/// (`#[inline(always)]` helpers) to benefit; it cannot capture anything but its arguments.
macro_rules! widest_fn {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?)
        $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                #[target_feature(enable = "avx2")]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? $body
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { wide($($arg),*) };
            }
            $body
        }
    };
}
pub(crate) use widest_fn;

/// `f` over row-aligned pieces of `a`.
pub fn rows(a: &mut [f32], row: usize, cost: Cost, f: impl Fn(&mut [f32]) + Sync) {
    match task_len(a.len(), row, cost) {
        None => f(a),
        Some(n) => a.par_chunks_mut(n).for_each(&f),
    }
}

/// `f` over matching row-aligned pieces of `a` and `b`.
pub fn rows2(
    a: &mut [f32],
    b: &[f32],
    row: usize,
    cost: Cost,
    f: impl Fn(&mut [f32], &[f32]) + Sync,
) {
    debug_assert_eq!(a.len(), b.len());
    match task_len(a.len(), row, cost) {
        None => f(a, b),
        Some(n) => a
            .par_chunks_mut(n)
            .zip(b.par_chunks(n))
            .for_each(|(a, b)| f(a, b)),
    }
}

/// `f` over matching row-aligned pieces of `a` and `b`, both written.
pub fn pairs_rows(
    a: &mut [f32],
    b: &mut [f32],
    row: usize,
    cost: Cost,
    f: impl Fn(&mut [f32], &mut [f32]) + Sync,
) {
    debug_assert_eq!(a.len(), b.len());
    match task_len(a.len(), row, cost) {
        None => f(a, b),
        Some(n) => a
            .par_chunks_mut(n)
            .zip(b.par_chunks_mut(n))
            .for_each(|(a, b)| f(a, b)),
    }
}

/// `f` over matching pieces of `a` and `b`, both written.
pub fn pairs_mut(a: &mut [f32], b: &mut [f32], f: impl Fn(&mut [f32], &mut [f32]) + Sync) {
    pairs_rows(a, b, 1, Cost::Cheap, f)
}

/// `f` over matching pieces of `a`, `b` and `c`.
pub fn zip3(
    a: &mut [f32],
    b: &[f32],
    c: &mut [f32],
    f: impl Fn(&mut [f32], &[f32], &mut [f32]) + Sync,
) {
    match task_len(a.len(), 1, Cost::Cheap) {
        None => f(a, b, c),
        Some(n) => a
            .par_chunks_mut(n)
            .zip(b.par_chunks(n))
            .zip(c.par_chunks_mut(n))
            .for_each(|((a, b), c)| f(a, b, c)),
    }
}

/// `f` over matching pieces of `a`, `b`, `c` and `d` (an optimizer's pass over every
/// parameter).
pub fn zip4(
    a: &mut [f32],
    b: &[f32],
    c: &mut [f32],
    d: &mut [f32],
    f: impl Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync,
) {
    match task_len(a.len(), 1, Cost::Cheap) {
        None => f(a, b, c, d),
        Some(n) => a
            .par_chunks_mut(n)
            .zip(b.par_chunks(n))
            .zip(c.par_chunks_mut(n))
            .zip(d.par_chunks_mut(n))
            .for_each(|(((a, b), c), d)| f(a, b, c, d)),
    }
}

/// `f(start, a, b, c)` over matching pieces of three buffers, `start` being the pieces'
/// offset (for per-element draws that must not depend on the split).
pub fn triples_indexed(
    a: &mut [f32],
    b: &mut [f32],
    c: &mut [f32],
    f: impl Fn(usize, &mut [f32], &mut [f32], &mut [f32]) + Sync,
) {
    debug_assert!(a.len() == b.len() && a.len() == c.len());
    match task_len(a.len(), 1, Cost::Cheap) {
        None => f(0, a, b, c),
        Some(n) => a
            .par_chunks_mut(n)
            .zip(b.par_chunks_mut(n))
            .zip(c.par_chunks_mut(n))
            .enumerate()
            .for_each(|(i, ((a, b), c))| f(i * n, a, b, c)),
    }
}

/// Columns summed together on the stack, so a sum is finished before it meets `out`.
const COLUMN_BLOCK: usize = 64;
/// Tasks take columns in multiples of a cache line of floats: no two write one line of
/// `out`, and their widths differ by at most a line (rounding up to `COLUMN_BLOCK` cut 300
/// columns into 192 + 108).
const COLUMN_LINE: usize = 16;

/// `out[j] = beta * out[j] + alpha * Σ_r m[r * width + j]`. Each column is summed top to
/// bottom by one task (so the result does not depend on the split); tasks take blocks of
/// columns.
pub fn column_sums(m: &[f32], width: usize, out: &mut [f32], alpha: f32, beta: f32) {
    let sum_columns = |first: usize, out: &mut [f32]| {
        let mut done = 0;
        while done < out.len() {
            let mut acc = [0.0f32; COLUMN_BLOCK];
            let len = sum_block(m, width, first + done, out.len() - done, &mut acc);
            for (o, a) in out[done..done + len].iter_mut().zip(&acc) {
                // beta = 0 must not carry NaN or inf over from the old contents.
                *o = if beta == 0.0 {
                    alpha * a
                } else {
                    beta * *o + alpha * a
                };
            }
            done += len;
        }
    };
    if m.len() < MIN_PARALLEL || width < 2 * COLUMN_BLOCK {
        return sum_columns(0, out);
    }
    let per_task = width
        .div_ceil(rayon::current_num_threads())
        .next_multiple_of(COLUMN_LINE);
    out.par_chunks_mut(per_task)
        .enumerate()
        .for_each(|(i, o)| sum_columns(i * per_task, o));
}

widest_fn! {
    /// Sums the next block of columns from `start` (of the `left` still to do) into `acc`
    /// and returns how many it took: 64, 16 or 8 at once, the sums kept in registers (a
    /// standardised sparse first layer sums its weights' columns every step), else one.
    fn sum_block(
        m: &[f32],
        width: usize,
        start: usize,
        left: usize,
        acc: &mut [f32; COLUMN_BLOCK],
    ) -> usize {
        if left >= COLUMN_BLOCK {
            sum_fixed::<COLUMN_BLOCK>(m, width, start, acc)
        } else if left >= 16 {
            sum_fixed::<16>(m, width, start, acc)
        } else if left >= 8 {
            sum_fixed::<8>(m, width, start, acc)
        } else {
            sum_fixed::<1>(m, width, start, acc)
        }
    }
}

/// `acc[k] = Σ_r m[r * width + start + k]` for `k < B`, row by row; returns `B`.
#[inline(always)]
fn sum_fixed<const B: usize>(
    m: &[f32],
    width: usize,
    start: usize,
    acc: &mut [f32; COLUMN_BLOCK],
) -> usize {
    let mut sums = [0.0f32; B];
    for row in m.chunks_exact(width) {
        let block: &[f32; B] = row[start..start + B].try_into().expect("B columns");
        for (s, v) in sums.iter_mut().zip(block) {
            *s += v;
        }
    }
    acc[..B].copy_from_slice(&sums);
    B
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_passes_agree_with_a_plain_loop() {
        for len in [10usize, MIN_PARALLEL * 3 + 7] {
            let b: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let mut a = vec![1.0f32; len];
            rows2(&mut a, &b, 1, Cost::Cheap, |a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y)
            });
            assert!(a.iter().enumerate().all(|(i, &v)| v == i as f32 + 1.0));
        }
    }

    /// Column sums of `rows × width` varied values, by the definition, top to bottom.
    fn plain_column_sums(rows: usize, width: usize) -> (Vec<f32>, Vec<f32>) {
        let m: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 7919) % 1000) as f32 * 0.001)
            .collect();
        let mut want = vec![0.0f32; width];
        for r in 0..rows {
            for j in 0..width {
                want[j] += m[r * width + j];
            }
        }
        (m, want)
    }

    #[test]
    fn column_sums_of_narrow_matrices_take_every_block_width() {
        // Run inline: 64, 16, 8 and single columns, in every mix below 2 * 64.
        for width in [1, 7, 8, 9, 23, 37, 64, 65, 90, 127] {
            let (m, want) = plain_column_sums(50, width);
            let mut got = vec![f32::NAN; width];
            column_sums(&m, width, &mut got, 1.0, 0.0);
            assert_eq!(got, want, "width {width}");
        }
    }

    #[test]
    fn column_sums_match_a_plain_loop_bit_for_bit() {
        let (rows, width) = (700usize, 300usize);
        let (m, want) = plain_column_sums(rows, width);
        // Pools that cut the columns differently (300 / 7 ends mid-line).
        for threads in [1, 2, 3, 7] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut got = vec![f32::NAN; width];
            pool.install(|| column_sums(&m, width, &mut got, 1.0, 0.0));
            assert_eq!(got, want, "{threads} threads");
        }
        // Folded into an existing buffer: beta * out + alpha * sum.
        let mut folded = vec![2.0f32; width];
        column_sums(&m, width, &mut folded, -0.5, 0.25);
        for (f, w) in folded.iter().zip(&want) {
            assert_eq!(*f, 0.25 * 2.0 + -0.5 * w);
        }
    }
}
