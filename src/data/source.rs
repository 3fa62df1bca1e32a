//! Where data comes from: a folder of standard IDX files, four explicit IDX paths, generated
//! data, or CSV files. [`Source::open`] is the one door from a config to the two datasets.

use super::csv::{self, CsvConfig};
use super::dataset::{settle_classes, Dataset};
use super::files::{self, NotRegular};
use super::idx::CachePolicy;
use super::synth::{self, SineConfig, TanhConfig, XorConfig};
use crate::error::ShapeError;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The standard IDX names inside a data folder; each may also be gzipped.
pub const STANDARD_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Finds `name` or `name.gz` in `dir`. A candidate that exists but is not a regular file
/// (a dangling link, a link loop, a FIFO) is named with what it is, not passed over.
pub fn find_standard_file(dir: &Path, name: &str) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!(
            "data folder {} does not exist or is not a folder",
            dir.display()
        );
    }
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    for candidate in [&plain, &gz] {
        match files::regular_metadata(candidate) {
            Ok(_) => return Ok(candidate.clone()),
            Err(NotRegular::Missing(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(why) => bail!("{}: {why}", candidate.display()),
        }
    }
    bail!(
        "data folder {} has neither {name} nor {name}.gz (expected the four standard IDX files: {})",
        dir.display(),
        STANDARD_NAMES.join(", ")
    )
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

/// One of the data sources a config can name.
#[derive(Clone, Debug)]
pub enum Source {
    /// A folder with the four standard IDX files.
    IdxDir(PathBuf),
    /// Train images, train labels, test images, test labels.
    IdxFiles([PathBuf; 4]),
    Sine(SineConfig),
    Tanh(TanhConfig),
    Xor(XorConfig),
    Csv(CsvConfig),
}

/// What every source needs besides its own description.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// The class count the config asks for (checked against the labels).
    pub classes: Option<usize>,
    /// Seeds generated data and CSV test splits.
    pub seed: u64,
    pub cache: CachePolicy,
}

impl Source {
    /// Reads the training and the test set, with the class count settled and the widths of
    /// the two sets checked against each other.
    pub fn open(&self, options: &OpenOptions) -> Result<(Dataset, Dataset)> {
        let (mut train, mut test) = match self {
            Source::IdxDir(dir) => {
                load_idx_sets(&standard_paths(dir)?, options.classes, &options.cache)?
            }
            Source::IdxFiles(paths) => load_idx_sets(paths, options.classes, &options.cache)?,
            Source::Sine(sine) => synth::sine(sine, options.seed),
            Source::Tanh(t) => synth::tanh(t, options.seed),
            Source::Xor(xor) => synth::xor(xor),
            Source::Csv(table) => csv::load(table, Path::to_path_buf, options.seed)?,
        };
        if !train.is_bytes() {
            settle_classes(&mut train, &mut test, options.classes)?;
        }
        if train.width() != test.width() {
            return Err(ShapeError::new(
                format!("features per sample of {}", test.name),
                train.width(),
                test.width(),
            )
            .into());
        }
        if train.is_empty() || test.is_empty() {
            bail!("the training and the test set each need at least one sample");
        }
        Ok((train, test))
    }
}
