//! Minibatches: each epoch's seeded order of the training samples, and the gather that copies
//! a batch, in parallel, from the store into preallocated `f32` buffers through the input
//! transform.

use super::dataset::{Dataset, Features, TargetData};
use super::transform::InputTransform;
use crate::compute::rng;
use crate::model::buffers::rows;
use crate::model::loss::Targets;
use crate::model::{Input, SparseRows};
use ndarray::Array2;
use rand::seq::SliceRandom;
use rayon::prelude::*;

/// Below this many input values a batch is gathered on the calling thread: waking the pool
/// would cost more than it saves.
const PARALLEL_GATHER_MIN: usize = 1 << 15;
const ROWS_PER_TASK: usize = 16;

/// Target rows for up to a batch of samples.
#[derive(Clone, Debug)]
pub enum TargetBuffer {
    Labels(Vec<u32>),
    Values(Array2<f32>),
}

impl TargetBuffer {
    pub fn for_dataset(ds: &Dataset, capacity: usize) -> Self {
        match &ds.targets {
            TargetData::Classes { .. } => TargetBuffer::Labels(vec![0; capacity]),
            TargetData::Values { width, .. } => {
                TargetBuffer::Values(Array2::zeros((capacity, *width)))
            }
        }
    }

    pub fn view(&self, n: usize) -> Targets<'_> {
        match self {
            TargetBuffer::Labels(l) => Targets::Labels(&l[..n]),
            TargetBuffer::Values(v) => Targets::Values(rows(v, n)),
        }
    }
}

/// Copies samples `indices` of `ds` into the first rows of `x` (transformed) and `y`.
/// Allocation-free; parallel over rows for large batches.
pub fn gather(
    ds: &Dataset,
    transform: &InputTransform,
    indices: &[usize],
    x: &mut [f32],
    y: &mut TargetBuffer,
) {
    let width = ds.width();
    let x = &mut x[..indices.len() * width];
    let fill_row = |(row, &i): (&mut [f32], &usize)| match &ds.features {
        Features::Bytes(f) => transform.bytes(row, f.item(i)),
        Features::Floats { values, .. } => {
            transform.floats(row, &values[i * width..(i + 1) * width])
        }
    };
    if x.len() >= PARALLEL_GATHER_MIN {
        x.par_chunks_mut(width)
            .zip(indices.par_iter())
            .with_min_len(ROWS_PER_TASK)
            .for_each(fill_row);
    } else {
        x.chunks_mut(width).zip(indices.iter()).for_each(fill_row);
    }
    gather_targets(ds, indices, y);
}

/// Loads batch `indices` of `ds` for a forward pass: the targets into `y` and, for a dense
/// dataset, the transformed rows into `x`. A dataset kept as sparse rows is read by the first
/// layer itself.
pub fn load<'a>(
    ds: &'a Dataset,
    transform: &'a InputTransform,
    indices: &'a [usize],
    x: &mut [f32],
    y: &mut TargetBuffer,
) -> Input<'a> {
    load_as(ds, transform, indices, x, y, true)
}

/// As [`load`]; with `sparse` false, a dataset kept as sparse rows is gathered dense too.
pub fn load_as<'a>(
    ds: &'a Dataset,
    transform: &'a InputTransform,
    indices: &'a [usize],
    x: &mut [f32],
    y: &mut TargetBuffer,
    sparse: bool,
) -> Input<'a> {
    match &ds.sparse {
        Some(csr) if sparse => {
            gather_targets(ds, indices, y);
            Input::Sparse(SparseRows {
                csr,
                rows: indices,
                table: transform.byte_table(),
                add: transform.add(),
            })
        }
        _ => {
            gather(ds, transform, indices, x, y);
            Input::Dense
        }
    }
}

/// Copies the targets of samples `indices` into the first rows of `y`.
pub fn gather_targets(ds: &Dataset, indices: &[usize], y: &mut TargetBuffer) {
    match (y, &ds.targets) {
        (TargetBuffer::Labels(out), TargetData::Classes { labels, .. }) => {
            for (o, &i) in out.iter_mut().zip(indices) {
                *o = labels.get(i);
            }
        }
        (TargetBuffer::Values(out), TargetData::Values { values, width }) => {
            for (mut o, &i) in out.rows_mut().into_iter().zip(indices) {
                o.as_slice_mut()
                    .expect("row-major")
                    .copy_from_slice(&values[i * width..(i + 1) * width]);
            }
        }
        _ => panic!("target buffer does not match {}", ds.name),
    }
}

/// Splits `0..n` into (train, validation) with a seeded shuffle; both sorted.
pub fn split_indices(n: usize, validation_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let k = ((n as f64) * validation_fraction).round() as usize;
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(&mut rng::stream(seed, rng::Stream::Split, 0));
    let mut validation = all[..k].to_vec();
    let mut train = all[k..].to_vec();
    validation.sort_unstable();
    train.sort_unstable();
    (train, validation)
}

/// Each epoch's order of the training samples, cut into minibatches.
#[derive(Clone, Debug)]
pub struct Batcher {
    pool: Vec<usize>,
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
}

impl Batcher {
    pub fn new(pool: Vec<usize>, batch_size: usize, drop_last: bool) -> Self {
        assert!(batch_size > 0, "batch size is validated to be positive");
        Batcher {
            order: pool.clone(),
            pool,
            batch_size,
            drop_last,
        }
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn samples(&self) -> usize {
        self.batches().map(<[usize]>::len).sum()
    }

    /// The epoch's order: a fresh seeded permutation of the pool (independent of earlier
    /// epochs, so a resumed run shuffles exactly as an uninterrupted one).
    pub fn shuffle(&mut self, seed: u64, epoch: usize) {
        self.order.copy_from_slice(&self.pool);
        self.order
            .shuffle(&mut rng::stream(seed, rng::Stream::Shuffle, epoch as u64));
    }

    pub fn batches(&self) -> impl Iterator<Item = &[usize]> + '_ {
        let size = self.batch_size;
        let drop_last = self.drop_last;
        self.order
            .chunks(size)
            .filter(move |b| !drop_last || b.len() == size)
    }

    pub fn batch_count(&self) -> usize {
        self.batches().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_sample_once_and_keep_the_partial_last_batch() {
        let mut b = Batcher::new((0..10).collect(), 4, false);
        b.shuffle(3, 0);
        let sizes: Vec<usize> = b.batches().map(<[usize]>::len).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let mut seen: Vec<usize> = b.batches().flatten().copied().collect();
        assert_ne!(seen, (0..10).collect::<Vec<_>>(), "shuffled");
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let dropped = Batcher::new((0..10).collect(), 4, true);
        assert_eq!(dropped.samples(), 8);
    }

    #[test]
    fn shuffles_depend_only_on_seed_and_epoch() {
        let mut a = Batcher::new((0..50).collect(), 7, false);
        let mut b = a.clone();
        a.shuffle(1, 2);
        b.shuffle(1, 1);
        b.shuffle(1, 2);
        assert!(a.batches().eq(b.batches()));
        b.shuffle(1, 3);
        assert!(!a.batches().eq(b.batches()));
    }

    #[test]
    fn validation_split_is_disjoint_seeded_and_sized() {
        let (train, val) = split_indices(100, 0.2, 5);
        assert_eq!((train.len(), val.len()), (80, 20));
        assert!(val.iter().all(|v| !train.contains(v)));
        assert_eq!(split_indices(100, 0.2, 5).1, val);
        assert_ne!(split_indices(100, 0.2, 6).1, val);
    }
}
