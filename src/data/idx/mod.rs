//! IDX files (the MNIST container): the format, its errors, the decompressed cache of a `.gz`,
//! and memory-mapped access. Dependencies run error <- format, error <- cache <- file.

pub mod cache;
mod error;
mod file;
mod format;

pub use cache::CachePolicy;
pub use error::{IdxError, IdxErrorKind, DATA_TYPES, UNSIGNED_BYTE};
pub use file::{is_gzip_name, IdxFile};
pub use format::{encode, parse, Header};
