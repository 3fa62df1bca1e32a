//! The weight gradient's sparse operand: a batch's nonzeros regrouped by pairs of columns,
//! filled in parallel chunks of samples without allocating.

use super::{kernels, CsrBytes};
use rayon::prelude::*;
use std::ops::Range;

/// A batch's nonzeros regrouped by pairs of columns: for pixels `2q` and `2q + 1`, the
/// samples (positions in the batch) that have either, with both pixels' bytes. Neighbouring
/// pixels are mostly nonzero together, so a pair's list is far shorter than its two pixels'
/// lists, and the kernel loads each `δ` row once for both. Allocated once for a largest
/// batch; [`super::weight_gradient`] refills it without allocating.
///
/// An entry is one `u32`: the batch position in the low 16 bits, then the pair's two bytes.
/// One store per entry into one array keeps the fill's ~400 write streams within L1.
#[derive(Clone, Debug)]
pub struct Transpose {
    width: usize,
    /// The largest batch, filled in turns of up to [`FILL_ROWS`] samples.
    max_batch: usize,
    /// Pair `q` lists entries `start[q]..start[q + 1]`.
    start: Vec<usize>,
    /// Row `c` (`2 * pairs` long) belongs to the `c`-th chunk of samples: per pixel, the
    /// entries whose pair starts at it (a pair's second pixel counts only alone).
    counts: Vec<usize>,
    /// Row `c` (pairs long) belongs to the `c`-th chunk: where it writes next in each pair's
    /// list.
    cursors: Vec<usize>,
    entries: Vec<u32>,
}

/// Output rows per group of the gradient kernel: a pair of pixels.
pub(super) const PAIR: usize = 2;
/// Most samples one fill regroups: an entry holds a batch position in 16 bits.
pub(super) const FILL_ROWS: usize = 1 << 16;
/// Most chunks of samples that fill a [`Transpose`] in parallel.
const MAX_CHUNKS: usize = 16;
/// Batch nonzeros below which one thread fills a [`Transpose`]: rayon costs more.
const INLINE_FILL: usize = 16 * 1024;

impl Transpose {
    /// Room for any batch of up to `max_batch` samples of `width` pixels with at most
    /// `max_row_nnz` nonzeros each.
    pub fn new(width: usize, max_batch: usize, max_row_nnz: usize) -> Self {
        let pairs = width.div_ceil(PAIR);
        let capacity = max_batch
            .min(FILL_ROWS)
            .checked_mul(max_row_nnz.min(pairs))
            .expect("Transpose: capacity overflows usize");
        Transpose {
            width,
            max_batch,
            start: vec![0; pairs + 1],
            counts: vec![0; MAX_CHUNKS * PAIR * pairs],
            cursors: vec![0; MAX_CHUNKS * pairs],
            entries: vec![0; capacity],
        }
    }

    /// Sized for batches of up to `max_batch` rows of `csr`.
    pub fn for_csr(csr: &CsrBytes, max_batch: usize) -> Self {
        Self::new(csr.width(), max_batch, csr.max_row_nnz())
    }

    pub fn heap_bytes(&self) -> usize {
        (self.start.capacity() + self.counts.capacity() + self.cursors.capacity())
            * std::mem::size_of::<usize>()
            + self.entries.capacity() * std::mem::size_of::<u32>()
    }

    /// The largest batch [`super::weight_gradient`] takes with this scratch.
    pub(super) fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn pairs(&self) -> usize {
        self.start.len() - 1
    }

    /// Counting sort of the batch's entries by pair, in chunks of samples on the rayon pool
    /// when large; within a pair, batch positions ascend whatever the chunks. Returns the lists.
    /// Takes at most [`FILL_ROWS`] samples (and the `max_batch` it was made for).
    pub(super) fn fill(&mut self, csr: &CsrBytes, samples: &[usize]) -> PairLists<'_> {
        assert_eq!(self.width, csr.width(), "Transpose: width mismatch");
        let max_rows = self.max_batch.min(FILL_ROWS);
        assert!(
            samples.len() <= max_rows,
            "Transpose: {} samples in one fill exceed its {max_rows}",
            samples.len(),
        );
        let pairs = self.pairs();
        let nnz: usize = samples.iter().map(|&s| csr.row_nnz(s)).sum();
        let wanted = if nnz < INLINE_FILL {
            1
        } else {
            rayon::current_num_threads().min(MAX_CHUNKS)
        };
        let per = samples.len().div_ceil(wanted).max(1);
        let chunks = samples.len().div_ceil(per).max(1);
        let counts = &mut self.counts[..chunks * PAIR * pairs];
        counts.fill(0);
        for_each_chunk(counts, samples, per, |counts, part, _| {
            count_pairs(csr, part, counts)
        });
        let cursors = &mut self.cursors[..chunks * pairs];
        let mut total = 0;
        for q in 0..pairs {
            self.start[q] = total;
            for c in 0..chunks {
                let pixels = &counts[c * PAIR * pairs + PAIR * q..][..PAIR];
                cursors[c * pairs + q] = total;
                total += pixels.iter().sum::<usize>();
            }
        }
        self.start[pairs] = total;
        assert!(
            total <= self.entries.len(),
            "Transpose: batch has {total} entries, room for {} (max_row_nnz too small)",
            self.entries.len()
        );
        let slots = Slots {
            entries: self.entries.as_mut_ptr(),
            len: total,
        };
        for_each_chunk(cursors, samples, per, |cursor, part, first_row| {
            // SAFETY: each row of `cursors` now holds its chunk's first slot in every pair, from
            // the prefix sums over the counts of the same chunks of `samples`.
            unsafe { slots.scatter(csr, part, first_row, cursor) }
        });
        PairLists {
            start: &self.start,
            entries: &self.entries[..total],
        }
    }
}

/// Calls `f(row of table, chunk of samples, its first position in the batch)` for chunks of
/// `per` samples, one row of `table` each, in parallel when there is more than one.
fn for_each_chunk(
    table: &mut [usize],
    samples: &[usize],
    per: usize,
    f: impl Fn(&mut [usize], &[usize], usize) + Sync,
) {
    let chunks = samples.len().div_ceil(per).max(1);
    if chunks == 1 {
        f(table, samples, 0);
        return;
    }
    table
        .par_chunks_mut(table.len() / chunks)
        .zip(samples.par_chunks(per))
        .enumerate()
        .for_each(|(c, (row, part))| f(row, part, c * per));
}

/// Adds, for each sample of `samples` and each pair `q` it has a nonzero in, one to
/// `counts[p]`, `p` being the pair's first pixel in that sample. Columns ascend, so a pair's
/// two pixels are neighbours in a row; counting per pixel means no two updates in a row hit
/// the same counter, which would chain each on the store before it.
fn count_pairs(csr: &CsrBytes, samples: &[usize], counts: &mut [usize]) {
    for &s in samples {
        let mut last = usize::MAX;
        for &c in csr.row(s).0 {
            let q = c as usize / PAIR;
            // Branch-free: whether a row's next pixel is its pair's second is a coin toss.
            counts[c as usize] += (q != last) as usize;
            last = q;
        }
    }
}

/// The entries of a [`Transpose`] being filled by several chunks of samples at once.
struct Slots {
    entries: *mut u32,
    len: usize,
}

// SAFETY: chunks write disjoint slots (see `Slots::scatter`).
unsafe impl Sync for Slots {}

impl Slots {
    /// Writes the entries of `samples` (batch positions from `first_row`, below
    /// [`FILL_ROWS`]), each at its pair's `cursor`, advancing it.
    ///
    /// # Safety
    /// `cursor[q]` must be the first of as many slots as `count_pairs` counts for `samples` in
    /// pair `q`, and no other concurrent call may be given any of those slots.
    unsafe fn scatter(
        &self,
        csr: &CsrBytes,
        samples: &[usize],
        first_row: usize,
        cursor: &mut [usize],
    ) {
        for (r, &s) in samples.iter().enumerate() {
            let (cols, vals) = csr.row(s);
            // `fill` takes at most FILL_ROWS samples, so the position fits its 16 bits.
            debug_assert!(first_row + r < FILL_ROWS);
            let row = (first_row + r) as u32;
            let (mut last, mut slot) = (usize::MAX, 0);
            for (&c, &v) in cols.iter().zip(vals) {
                let q = c as usize / PAIR;
                let byte = u32::from(v) << (16 + 8 * (c as usize % PAIR));
                // A pair's first pixel in the row writes the whole entry, so a byte its sample
                // lacks is 0; its second, right after, adds its byte to the same slot, kept
                // in a register. (A branch, though a coin toss: a select that always loads
                // measured slower at batches up to 128.)
                if q != last {
                    slot = cursor[q];
                    cursor[q] = slot + 1;
                    last = q;
                    assert!(slot < self.len, "Transpose: slot past the counted entries");
                    // SAFETY: `slot < len`, and it is one of the slots the caller gave this
                    // call in pair `q` (rows are walked here as in `count_pairs`).
                    unsafe { *self.entries.add(slot) = row | byte };
                } else {
                    // SAFETY: the slot this row's entry in pair `q` was just written to.
                    unsafe { *self.entries.add(slot) |= byte };
                }
            }
        }
    }
}

/// Filled lists of consecutive pairs of a [`Transpose`]: `start` from the first of them on,
/// indexing the whole `entries`.
#[derive(Clone, Copy)]
pub(super) struct PairLists<'a> {
    pub start: &'a [usize],
    entries: &'a [u32],
}

impl<'a> PairLists<'a> {
    pub fn pairs(&self) -> usize {
        self.start.len() - 1
    }

    /// Entries in all the lists.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Pair `q`'s entries.
    fn list(&self, q: usize) -> &'a [u32] {
        &self.entries[self.start[q]..self.start[q + 1]]
    }

    /// Splits before pair `mid` (counted from the first of these pairs).
    pub fn split_at(self, mid: usize) -> (PairLists<'a>, PairLists<'a>) {
        let left = PairLists {
            start: &self.start[..=mid],
            ..self
        };
        let right = PairLists {
            start: &self.start[mid..],
            ..self
        };
        (left, right)
    }
}

impl kernels::Lists<PAIR> for PairLists<'_> {
    #[inline]
    fn len(&self, q: usize) -> usize {
        self.start[q + 1] - self.start[q]
    }

    #[inline]
    fn entries(
        &self,
        q: usize,
        range: Range<usize>,
    ) -> impl Iterator<Item = (usize, [u8; PAIR])> + '_ {
        self.list(q)[range].iter().map(|&e| {
            let [r0, r1, b0, b1] = e.to_le_bytes();
            (usize::from(u16::from_le_bytes([r0, r1])), [b0, b1])
        })
    }

    fn seek(&self, q: usize, from: usize, row: usize) -> usize {
        from + self.list(q)[from..].partition_point(|&e| ((e & 0xFFFF) as usize) < row)
    }
}
