//! The IDX error type: which file, and what is wrong with it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The element types the IDX format defines, with their names; only unsigned byte is read.
pub const DATA_TYPES: [(u8, &str); 6] = [
    (0x08, "unsigned byte"),
    (0x09, "signed byte"),
    (0x0B, "i16"),
    (0x0C, "i32"),
    (0x0D, "f32"),
    (0x0E, "f64"),
];
pub const UNSIGNED_BYTE: u8 = 0x08;

#[derive(Debug)]
pub enum IdxErrorKind {
    Io(io::Error),
    NotAFile,
    /// A FIFO, a device, a dangling link...: the reason, as text.
    NotRegular(String),
    Empty,
    TooShort {
        len: usize,
        need: usize,
    },
    BadMagic {
        found: [u8; 2],
    },
    UnsupportedType {
        code: u8,
    },
    ZeroRank,
    ZeroDim {
        axis: usize,
    },
    Overflow {
        dims: Vec<u64>,
    },
    LengthMismatch {
        dims: Vec<u64>,
        expected: u128,
        actual: usize,
    },
    Gzip(io::Error),
    Cache {
        target: PathBuf,
        source: io::Error,
    },
}

/// An IDX file that cannot be used, with the file it is about.
#[derive(Debug)]
pub struct IdxError {
    pub path: PathBuf,
    pub kind: IdxErrorKind,
}

impl IdxError {
    pub fn new(path: &Path, kind: IdxErrorKind) -> Self {
        IdxError {
            path: path.to_path_buf(),
            kind,
        }
    }

    pub fn io(path: &Path, err: io::Error) -> Self {
        Self::new(path, IdxErrorKind::Io(err))
    }

    /// A path that is not a regular file (or cannot be opened as one).
    pub fn not_regular(path: &Path, why: crate::data::files::NotRegular) -> Self {
        use crate::data::files::NotRegular as N;
        let kind = match why {
            N::Missing(e) | N::Io(e) => IdxErrorKind::Io(e),
            N::Directory => IdxErrorKind::NotAFile,
            other => IdxErrorKind::NotRegular(other.to_string()),
        };
        Self::new(path, kind)
    }
}

fn type_list() -> String {
    DATA_TYPES
        .iter()
        .map(|(code, name)| format!("0x{code:02X} {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn dims_text(dims: &[u64]) -> String {
    dims.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" x ")
}

impl fmt::Display for IdxErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use IdxErrorKind::*;
        match self {
            Io(e) => write!(f, "cannot read: {e}"),
            NotAFile => write!(f, "is a directory, expected an IDX file"),
            NotRegular(why) => write!(f, "{why}; expected an IDX file"),
            Empty => write!(
                f,
                "is empty; expected an IDX file (magic 00 00, type byte, rank byte, sizes, data)"
            ),
            TooShort { len, need } => write!(
                f,
                "is {len} bytes long, shorter than its own IDX header ({need} bytes)"
            ),
            BadMagic { found } => write!(
                f,
                "bad magic at byte 0: found {:02X} {:02X}, expected 00 00 (not an IDX file?)",
                found[0], found[1]
            ),
            UnsupportedType { code } => {
                let name = DATA_TYPES
                    .iter()
                    .find(|(c, _)| c == code)
                    .map(|(_, n)| format!("{n}, a valid IDX type"))
                    .unwrap_or_else(|| "not an IDX type".to_string());
                write!(
                    f,
                    "data type byte (offset 2) is 0x{code:02X} ({name}); IDX defines {}; \
                     only 0x08 unsigned byte is supported",
                    type_list()
                )
            }
            ZeroRank => write!(
                f,
                "rank byte (offset 3) is 0; an IDX file needs at least one dimension"
            ),
            ZeroDim { axis } => write!(
                f,
                "dimension {axis} (header offset {}) is 0; every size must be at least 1",
                4 + 4 * axis
            ),
            Overflow { dims } => write!(
                f,
                "header sizes {} multiply past what this machine can address",
                dims_text(dims)
            ),
            LengthMismatch {
                dims,
                expected,
                actual,
            } => write!(
                f,
                "header says {} = {expected} data bytes, but the file has {actual} after the header ({})",
                dims_text(dims),
                if (*actual as u128) < *expected {
                    "truncated"
                } else {
                    "trailing bytes"
                }
            ),
            Gzip(e) => write!(f, "corrupt or truncated gzip data: {e}"),
            Cache { target, source } => write!(
                f,
                "cannot write the decompressed cache {}: {source}",
                target.display()
            ),
        }
    }
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

impl std::error::Error for IdxError {
    // No `source`: the Display above already ends with the OS's reason, and a source
    // would print it a second time in `{:#}` chains.
}
