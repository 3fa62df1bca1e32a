//! Datasets and minibatches. Features are either the bytes of a memory-mapped IDX file
//! (never copied as a whole) or a small table of floats (generated or CSV data); targets are
//! class labels or value rows. Minibatches are gathered, in parallel, straight from the store
//! into preallocated `f32` buffers, through a 256-entry table that scales bytes to [0, 1] and
//! standardises them in the same pass.

use crate::cache::CachePolicy;
use crate::idx::IdxFile;
use crate::loss::Targets;
use crate::rng;
use anyhow::{bail, Result};
use ndarray::{s, Array2};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

pub enum Features {
    Bytes(IdxFile),
    Floats { values: Vec<f32>, width: usize },
}

pub enum Labels {
    Idx(IdxFile),
    Owned(Vec<u32>),
}

pub enum TargetData {
    Classes { labels: Labels, classes: usize },
    Values { values: Vec<f32>, width: usize },
}

pub struct Dataset {
    /// What the data is, for messages (a path, or "sine (generated)").
    pub name: String,
    pub features: Features,
    pub targets: TargetData,
    /// One sample's shape before flattening, e.g. `[28, 28]`.
    pub sample_shape: Vec<usize>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("len", &self.len())
            .field("sample_shape", &self.sample_shape)
            .field("classes", &self.classes())
            .finish()
    }
}

impl Dataset {
    pub fn len(&self) -> usize {
        match &self.features {
            Features::Bytes(f) => f.count(),
            Features::Floats { values, width } => values.len() / (*width).max(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn width(&self) -> usize {
        match &self.features {
            Features::Bytes(f) => f.item_len(),
            Features::Floats { width, .. } => *width,
        }
    }

    pub fn classes(&self) -> Option<usize> {
        match &self.targets {
            TargetData::Classes { classes, .. } => Some(*classes),
            TargetData::Values { .. } => None,
        }
    }

    pub fn target_width(&self) -> usize {
        match &self.targets {
            TargetData::Classes { .. } => 1,
            TargetData::Values { width, .. } => *width,
        }
    }

    pub fn is_bytes(&self) -> bool {
        matches!(self.features, Features::Bytes(_))
    }

    pub fn label(&self, i: usize) -> u32 {
        match &self.targets {
            TargetData::Classes { labels, .. } => labels.get(i),
            TargetData::Values { .. } => panic!("{} has no class labels", self.name),
        }
    }

    /// Samples per class (empty for regression data).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes().unwrap_or(0)];
        if !counts.is_empty() {
            for i in 0..self.len() {
                counts[self.label(i) as usize] += 1;
            }
        }
        counts
    }

    /// The raw features of sample `i` as floats (bytes unscaled), for reports and predictions.
    pub fn raw_features(&self, i: usize, out: &mut [f32]) {
        match &self.features {
            Features::Bytes(f) => out
                .iter_mut()
                .zip(f.item(i))
                .for_each(|(o, &b)| *o = f32::from(b)),
            Features::Floats { values, width } => {
                out.copy_from_slice(&values[i * width..(i + 1) * width])
            }
        }
    }

    /// Target row `i` of regression data.
    pub fn values(&self, i: usize) -> &[f32] {
        match &self.targets {
            TargetData::Values { values, width } => &values[i * width..(i + 1) * width],
            TargetData::Classes { .. } => panic!("{} has class labels, not values", self.name),
        }
    }

    /// The label file's largest label, if any.
    fn max_label(&self) -> Option<u32> {
        match &self.targets {
            TargetData::Classes { labels, .. } => (0..self.len()).map(|i| labels.get(i)).max(),
            TargetData::Values { .. } => None,
        }
    }

    fn set_classes(&mut self, n: usize) {
        if let TargetData::Classes { classes, .. } = &mut self.targets {
            *classes = n;
        }
    }

    /// Reads an image file and its label file, checking that they belong together.
    pub fn from_idx(images: &Path, labels: &Path, cache: &CachePolicy) -> Result<Dataset> {
        let images_file = IdxFile::open(images, cache)?;
        let labels_file = IdxFile::open(labels, cache)?;
        if labels_file.item_len() != 1 {
            bail!(
                "{}: a label file holds one byte per item (rank 1, an idx1 file), \
                 but this one has shape {:?}",
                labels.display(),
                labels_file.dims()
            );
        }
        if images_file.count() != labels_file.count() {
            bail!(
                "{} has {} items but {} has {} labels; they must have the same count",
                images.display(),
                images_file.count(),
                labels.display(),
                labels_file.count()
            );
        }
        let sample_shape = match images_file.dims() {
            [_] => vec![1],
            [_, rest @ ..] => rest.to_vec(),
            [] => unreachable!("validated rank >= 1"),
        };
        let shown = std::fs::canonicalize(images).unwrap_or_else(|_| images.to_path_buf());
        Ok(Dataset {
            name: shown.display().to_string(),
            features: Features::Bytes(images_file),
            targets: TargetData::Classes {
                labels: Labels::Idx(labels_file),
                classes: 0,
            },
            sample_shape,
        })
    }
}

impl Labels {
    pub fn get(&self, i: usize) -> u32 {
        match self {
            Labels::Idx(f) => u32::from(f.data()[i]),
            Labels::Owned(v) => v[i],
        }
    }

    fn describe(&self) -> String {
        match self {
            Labels::Idx(f) => f.path.display().to_string(),
            Labels::Owned(_) => "labels".to_string(),
        }
    }

    /// The first label at or above `classes`, as `(index, label)`.
    fn first_out_of_range(&self, len: usize, classes: usize) -> Option<(usize, u32)> {
        (0..len)
            .map(|i| (i, self.get(i)))
            .find(|&(_, l)| l as usize >= classes)
    }
}

/// The class count: the explicit one, checked against every label, or one more than the
/// largest label seen in either set.
pub fn settle_classes(
    train: &mut Dataset,
    test: &mut Dataset,
    explicit: Option<usize>,
) -> Result<Option<usize>> {
    let (Some(a), Some(b)) = (train.max_label(), test.max_label()) else {
        return Ok(None);
    };
    let classes = explicit.unwrap_or(a.max(b) as usize + 1);
    for ds in [&*train, &*test] {
        if let TargetData::Classes { labels, .. } = &ds.targets {
            if let Some((i, l)) = labels.first_out_of_range(ds.len(), classes) {
                let why = if explicit.is_some() {
                    format!("the config sets data.classes = {classes}")
                } else {
                    format!("{classes} classes")
                };
                bail!(
                    "{}: label {l} at item {i} (byte offset {}) is not below the class count ({why}); \
                     labels must be 0..{}",
                    labels.describe(),
                    8 + i,
                    classes - 1
                );
            }
        }
    }
    train.set_classes(classes);
    test.set_classes(classes);
    Ok(Some(classes))
}

/// The standard IDX names inside a data folder; each may also be gzipped.
pub const STANDARD_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Finds `name` or `name.gz` in `dir`.
pub fn find_standard_file(dir: &Path, name: &str) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!(
            "data folder {} does not exist or is not a folder",
            dir.display()
        );
    }
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if plain.is_file() {
        Ok(plain)
    } else if gz.exists() {
        Ok(gz)
    } else {
        bail!(
            "data folder {} has neither {name} nor {name}.gz (expected the four standard IDX files: {})",
            dir.display(),
            STANDARD_NAMES.join(", ")
        )
    }
}

/// Maps bytes and floats to network inputs: `((x * scale) - mean) / std`, folded into one
/// multiply-add per value so the conversion loop vectorises.
#[derive(Clone, Debug)]
pub struct InputTransform {
    byte_mul: f32,
    float_mul: f32,
    add: f32,
}

impl InputTransform {
    /// `byte_scale` multiplies byte features only (1/255 maps them to [0, 1]).
    pub fn new(byte_scale: f32, mean: f32, std: f32) -> Self {
        let inv_std = 1.0 / std;
        InputTransform {
            byte_mul: byte_scale * inv_std,
            float_mul: inv_std,
            add: -mean * inv_std,
        }
    }

    pub fn identity() -> Self {
        Self::new(1.0, 0.0, 1.0)
    }

    #[inline]
    pub fn bytes(&self, out: &mut [f32], src: &[u8]) {
        let (mul, add) = (self.byte_mul, self.add);
        for (o, &b) in out.iter_mut().zip(src) {
            *o = f32::from(b) * mul + add;
        }
    }

    #[inline]
    pub fn floats(&self, out: &mut [f32], src: &[f32]) {
        let (mul, add) = (self.float_mul, self.add);
        for (o, &v) in out.iter_mut().zip(src) {
            *o = v * mul + add;
        }
    }
}

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
            TargetBuffer::Values(v) => Targets::Values(v.slice(s![..n, ..])),
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

/// Reads the IDX training and test pairs named by `paths` (train images, train labels, test
/// images, test labels).
pub fn load_idx_sets(
    paths: &[PathBuf; 4],
    explicit_classes: Option<usize>,
    cache: &CachePolicy,
) -> Result<(Dataset, Dataset)> {
    let mut train = Dataset::from_idx(&paths[0], &paths[1], cache)?;
    let mut test = Dataset::from_idx(&paths[2], &paths[3], cache)?;
    if train.sample_shape != test.sample_shape {
        bail!(
            "training images {} have shape {:?} but test images {} have shape {:?}",
            paths[0].display(),
            train.sample_shape,
            paths[2].display(),
            test.sample_shape
        );
    }
    settle_classes(&mut train, &mut test, explicit_classes)?;
    Ok((train, test))
}

/// The four standard files of a data folder.
pub fn standard_paths(dir: &Path) -> Result<[PathBuf; 4]> {
    let find = |name| find_standard_file(dir, name);
    Ok([
        find(STANDARD_NAMES[0])?,
        find(STANDARD_NAMES[1])?,
        find(STANDARD_NAMES[2])?,
        find(STANDARD_NAMES[3])?,
    ])
}

/// A dataset of in-memory floats (generated or CSV data).
pub fn float_dataset(
    name: impl Into<String>,
    features: Vec<f32>,
    width: usize,
    targets: TargetData,
) -> Dataset {
    Dataset {
        name: name.into(),
        features: Features::Floats {
            values: features,
            width,
        },
        targets,
        sample_shape: vec![width],
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
    fn transform_scales_and_standardises_bytes() {
        let t = InputTransform::new(1.0 / 255.0, 0.5, 0.25);
        let mut out = [0.0; 3];
        t.bytes(&mut out, &[0, 255, 51]);
        assert!((out[0] + 2.0).abs() < 1e-6);
        assert!((out[1] - 2.0).abs() < 1e-6);
        assert!((out[2] - (0.2 - 0.5) * 4.0).abs() < 1e-6);
        let mut f = [0.0; 2];
        t.floats(&mut f, &[0.5, 1.0]);
        assert_eq!(f, [0.0, 2.0]);
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
