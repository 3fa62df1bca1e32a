//! A dataset: features (the bytes of a memory-mapped IDX file, never copied as a whole, or a
//! table of floats) and targets (class labels or value rows).

use super::idx::{CachePolicy, IdxFile};
use crate::compute::sparse::CsrBytes;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

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

/// Whether byte inputs are kept as compressed rows for the first layer's products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparseInput {
    /// Sparse when the bytes' density is below [`SPARSE_BELOW_DENSITY`].
    #[default]
    Auto,
    On,
    Off,
}

/// Below this fraction of nonzero bytes the sparse first layer is faster than `sgemm`
/// (measured on this project's kernels, see the README's speed section).
pub const SPARSE_BELOW_DENSITY: f64 = 0.35;

/// Training steps on more rows than this take the dense path even for sparse data: the
/// sparse weight gradient walks a batch's deltas out of cache order, and past about a
/// thousand rows `sgemm` wins (measured: sparse 1.1-1.4x faster at 128-600 rows, dense 1.15x
/// faster at 1200 and 1.3x at 6000, 784-300-300-10 on 2 threads).
pub const SPARSE_MAX_STEP_ROWS: usize = 1000;

/// Samples whose density decides [`SparseInput::Auto`].
const DENSITY_SAMPLE_ROWS: usize = 2000;

impl SparseInput {
    /// Whether `data` should be read sparse, and why, in words for the run header.
    pub fn decide(self, data: &Dataset) -> Result<(bool, String)> {
        let density = data.byte_density(DENSITY_SAMPLE_ROWS);
        let limit = SPARSE_BELOW_DENSITY;
        Ok(match (self, density) {
            (SparseInput::Off, _) => (false, "dense input (train.sparse_input = \"off\")".into()),
            (SparseInput::On, None) => bail!(
                "train.sparse_input = \"on\" needs byte (IDX) features, but {} holds floats",
                data.name
            ),
            (_, None) => (false, "dense input (float features)".into()),
            (_, Some(_)) if data.width() > crate::compute::sparse::MAX_WIDTH => (
                false,
                format!(
                    "dense input ({} features: too wide for sparse rows)",
                    data.width()
                ),
            ),
            (SparseInput::On, Some(d)) => (
                true,
                format!(
                    "sparse input ({:.1}% nonzero; train.sparse_input = \"on\")",
                    100.0 * d
                ),
            ),
            (SparseInput::Auto, Some(d)) if d < limit => (
                true,
                format!(
                    "sparse input ({:.1}% nonzero < {:.0}%)",
                    100.0 * d,
                    100.0 * limit
                ),
            ),
            (SparseInput::Auto, Some(d)) => (
                false,
                format!(
                    "dense input ({:.1}% nonzero >= {:.0}%)",
                    100.0 * d,
                    100.0 * limit
                ),
            ),
        })
    }
}

pub struct Dataset {
    /// What the data is, for messages (a path, or "sine (generated)").
    pub name: String,
    pub features: Features,
    pub targets: TargetData,
    /// One sample's shape before flattening, e.g. `[28, 28]`.
    pub sample_shape: Vec<usize>,
    /// A compressed-row copy of byte features, when the sparse input path was chosen
    /// ([`Dataset::compress`]); batches then read it instead of the dense bytes.
    pub sparse: Option<CsrBytes>,
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

    /// The fraction of nonzero bytes over up to `max_rows` samples spread evenly through the
    /// set (`None` for float features).
    pub fn byte_density(&self, max_rows: usize) -> Option<f64> {
        let Features::Bytes(f) = &self.features else {
            return None;
        };
        let step = (self.len() / max_rows.max(1)).max(1);
        let (mut nonzero, mut total) = (0usize, 0usize);
        for i in (0..self.len()).step_by(step) {
            let row = f.item(i);
            nonzero += row.iter().filter(|&&b| b != 0).count();
            total += row.len();
        }
        Some(nonzero as f64 / total.max(1) as f64)
    }

    /// Builds the compressed-row copy of byte features that batches will read from.
    pub fn compress(&mut self) -> Result<()> {
        let Features::Bytes(f) = &self.features else {
            bail!(
                "{}: only byte features can be kept as sparse rows",
                self.name
            );
        };
        let rows = (0..f.count()).map(|i| f.item(i));
        let csr = CsrBytes::from_rows(f.item_len(), rows)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.name))?;
        self.sparse = Some(csr);
        Ok(())
    }

    /// `"balanced"` class weights over the samples `indices`: `n / (K · count_c)`, so that
    /// every class carries the same total weight and the mean weight per sample is 1
    /// (classes absent from `indices` get 1). `None` without class labels.
    pub fn balanced_class_weights(&self, indices: &[usize]) -> Option<Vec<f32>> {
        let k = self.classes()?;
        let counts = self.class_counts_of(indices.iter().copied());
        let n = indices.len() as f64;
        Some(
            counts
                .iter()
                .map(|&c| {
                    if c == 0 {
                        1.0
                    } else {
                        (n / (k as f64 * c as f64)) as f32
                    }
                })
                .collect(),
        )
    }

    pub fn label(&self, i: usize) -> u32 {
        match &self.targets {
            TargetData::Classes { labels, .. } => labels.get(i),
            TargetData::Values { .. } => panic!("{} has no class labels", self.name),
        }
    }

    /// Samples per class (empty for regression data).
    pub fn class_counts(&self) -> Vec<usize> {
        self.class_counts_of(0..self.len())
    }

    /// Samples per class among `samples` (empty for regression data).
    pub fn class_counts_of(&self, samples: impl IntoIterator<Item = usize>) -> Vec<usize> {
        let mut counts = vec![0; self.classes().unwrap_or(0)];
        if !counts.is_empty() {
            for i in samples {
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
            sparse: None,
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
    if explicit.is_none() {
        check_label_range(train, test, classes)?;
    }
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

/// Without `data.classes`, the class count is one more than the largest label. A label far
/// above the rest (more than twice as many classes as distinct labels, and more than 10)
/// is almost always a stray value, and would silently build a network with mostly unused
/// outputs: refused, with the fix.
fn check_label_range(train: &Dataset, test: &Dataset, classes: usize) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for ds in [train, test] {
        if let TargetData::Classes { labels, .. } = &ds.targets {
            seen.extend((0..ds.len()).map(|i| labels.get(i)));
        }
    }
    if classes > 10 && classes > 2 * seen.len() {
        let top: Vec<String> = seen.iter().rev().take(3).map(u32::to_string).collect();
        bail!(
            "{}: the largest label is {}, so the network would have {classes} outputs, but only \
             {} distinct labels occur (largest: {}); fix the stray labels, or set data.classes = \
             {classes} if that many classes are meant",
            train.name,
            classes - 1,
            seen.len(),
            top.join(", ")
        );
    }
    Ok(())
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
        sparse: None,
    }
}
