//! A sparse product as the kernels see it (its lists and arguments), and how they walk it:
//! tiles of groups whose output and lists stay in cache, and, within a tile, bands of `dense`
//! rows.

use std::ops::Range;

/// Sparse lists in groups of `G` output rows: list `i` names rows of `dense`, each with one
/// byte per row of group `i`.
pub(super) trait Lists<const G: usize>: Sync {
    /// Entries of list `i`.
    fn len(&self, i: usize) -> usize;
    /// Entries `range` of list `i`: a row of `dense` and its bytes, rows ascending.
    fn entries(&self, i: usize, range: Range<usize>)
        -> impl Iterator<Item = (usize, [u8; G])> + '_;
    /// The first entry of list `i` at or after `from` whose row of `dense` is `row` or later.
    fn seek(&self, i: usize, from: usize, row: usize) -> usize;
    /// Asks the CPU to start loading list `i` (a hint; nothing by default).
    fn prefetch(&self, _i: usize) {}
}

/// What is shared by every row of one product.
#[derive(Clone, Copy)]
pub(super) struct Args<'a> {
    /// A byte's value; `table[0] == 0` (the kernels' `zero_byte_table`).
    pub table: &'a [f32; 256],
    /// Row-major, rows `ld` floats apart, of which the first `n` are used.
    pub dense: &'a [f32],
    pub ld: usize,
    /// Columns of the product (and the row length of `out`).
    pub n: usize,
    pub offset: Option<&'a [f32]>,
    pub alpha: f32,
    pub beta: f32,
    /// Take the entries in bands of `dense` rows (see [`Cuts`]); needs `alpha == 1` and
    /// `beta == 0`, since a band's partial sums wait in `out`.
    pub banded: bool,
}

/// Sparse entries per tile of groups: with a column block of `dense` (~200 KB), the tile's
/// lists and output stay within L2 while all its blocks are swept.
const TILE_ENTRIES: usize = 8 * 1024;
/// Most groups per tile: a banded product keeps where each group enters each band.
const TILE_GROUPS: usize = 64;
/// Most bands of a banded product.
const MAX_BANDS: usize = 8;
/// Bytes of a band's column block of `dense`. Tuned on the MNIST forward product (AVX2, Zen 3,
/// 512 KB L2, 64-float blocks, so two bands of 392 rows): bands of 40 KB were 8% slower,
/// 150 KB no better than one band.
const BAND_BYTES: usize = 96 * 1024;

/// Where each group of a tile enters each band of `dense` rows: group `i`'s entries in band
/// `b` are `range(i, b)`. A banded product sweeps a tile's groups once per band, each group
/// resuming where its list stopped, so fewer rows of `dense` compete for the cache at a time
/// (MNIST forward, AVX2: ~10% faster, ~20% with line-aligned rows). Found once per tile, for
/// all its column blocks.
pub(super) struct Cuts {
    at: [usize; TILE_GROUPS * (MAX_BANDS + 1)],
    pub bands: usize,
}

impl Cuts {
    /// For groups `first..first + groups` of `lists`, with `block` floats of a row of `dense`
    /// loaded at a time. One band when `a` is not banded.
    pub fn new<const G: usize, L: Lists<G>>(
        lists: &L,
        first: usize,
        groups: usize,
        a: &Args,
        block: usize,
    ) -> Self {
        debug_assert!(groups <= TILE_GROUPS);
        let rows = a.dense.len().div_ceil(a.ld.max(1));
        let bands = if a.banded {
            assert!(
                a.alpha == 1.0 && a.beta == 0.0,
                "sparse: a banded product must have alpha 1 and beta 0"
            );
            let band = (BAND_BYTES / (block * std::mem::size_of::<f32>())).max(1);
            ((rows + band / 2) / band).clamp(1, MAX_BANDS)
        } else {
            1
        };
        let band = rows.div_ceil(bands);
        let mut cuts = Cuts {
            at: [0; TILE_GROUPS * (MAX_BANDS + 1)],
            bands,
        };
        for i in 0..groups {
            let at = &mut cuts.at[i * (MAX_BANDS + 1)..][..=bands];
            for b in 1..bands {
                at[b] = lists.seek(first + i, at[b - 1], b * band);
            }
            at[bands] = lists.len(first + i);
        }
        cuts
    }

    pub fn range(&self, group: usize, band: usize) -> Range<usize> {
        let at = &self.at[group * (MAX_BANDS + 1) + band..];
        at[0]..at[1]
    }
}

/// Cuts the groups of `out` (whole rows of `n`, `G` rows a group, the last group possibly
/// shorter) into consecutive tiles of about [`TILE_ENTRIES`] entries; calls
/// `f(first group, tile's rows of out)`. Only the order of work changes, never a row's terms.
pub(super) fn for_each_tile<const G: usize, L: Lists<G>>(
    lists: &L,
    first: usize,
    n: usize,
    out: &mut [f32],
    mut f: impl FnMut(usize, &mut [f32]),
) {
    let groups = (out.len() / n).div_ceil(G);
    let mut rest = out;
    let mut start = 0;
    let mut fetched = 0;
    while start < groups {
        let mut end = start;
        let mut entries = 0;
        while end < groups && entries < TILE_ENTRIES && end - start < TILE_GROUPS {
            entries += lists.len(first + end);
            end += 1;
        }
        // The tile's lists and the next tile's: their first loads then overlap, and the
        // next tile's are in cache by the time it starts.
        let ahead = (end + (end - start)).min(groups);
        for i in fetched..ahead {
            lists.prefetch(first + i);
        }
        fetched = fetched.max(ahead);
        let take = ((end - start) * G * n).min(rest.len());
        let (tile, tail) = std::mem::take(&mut rest).split_at_mut(take);
        f(first + start, tile);
        rest = tail;
        start = end;
    }
}
