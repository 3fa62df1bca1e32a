//! Data: where it comes from ([`source`]: IDX files with their `.gz` cache, CSV tables,
//! generated sets), what a dataset is ([`dataset`]), how raw values become inputs
//! ([`transform`]) and how minibatches are cut and gathered ([`batch`]).

pub mod batch;
pub mod csv;
pub mod dataset;
pub mod files;
pub mod idx;
#[cfg(feature = "cli")]
pub mod image;
pub mod sigbus;
pub mod source;
pub mod synth;
pub mod transform;

pub use batch::{gather, split_indices, Batcher, TargetBuffer};
pub use dataset::{
    float_dataset, settle_classes, Dataset, Features, Labels, SparseInput, TargetData,
    SPARSE_BELOW_DENSITY, SPARSE_MAX_STEP_ROWS,
};
pub use idx::CachePolicy;
pub use source::{
    find_standard_file, load_idx_sets, standard_paths, OpenOptions, Source, STANDARD_NAMES,
};
pub use transform::{InputScaling, InputTransform};
