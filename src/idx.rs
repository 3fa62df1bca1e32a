//! IDX files (the MNIST container): header validation and memory-mapped access.
//!
//! Layout: two zero bytes, a data-type byte, a rank byte, `rank` big-endian `u32` sizes, then
//! the items in row-major order. A `.gz` file is decompressed once into a cache file that is
//! then mapped; see [`crate::cache`].

use memmap2::Mmap;
use std::fmt;
use std::fs::File;
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
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            IdxErrorKind::Io(e) | IdxErrorKind::Gzip(e) => Some(e),
            IdxErrorKind::Cache { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A validated IDX header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Sizes, outermost first: `dims[0]` is the item count.
    pub dims: Vec<usize>,
    /// Bytes before the data.
    pub len: usize,
}

impl Header {
    pub fn count(&self) -> usize {
        self.dims[0]
    }

    /// Elements per item: the product of the trailing dimensions (1 for a rank-1 file).
    pub fn item_len(&self) -> usize {
        self.dims[1..].iter().product()
    }
}

/// Validates the header and the payload length of a whole IDX file held in `bytes`.
///
/// Nothing is allocated from the header's numbers: the rank is one byte, and sizes are
/// multiplied with overflow checks and compared with the real length before any use.
pub fn parse(bytes: &[u8]) -> Result<Header, IdxErrorKind> {
    if bytes.is_empty() {
        return Err(IdxErrorKind::Empty);
    }
    if bytes.len() < 4 {
        return Err(IdxErrorKind::TooShort {
            len: bytes.len(),
            need: 4,
        });
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(IdxErrorKind::BadMagic {
            found: [bytes[0], bytes[1]],
        });
    }
    if bytes[2] != UNSIGNED_BYTE {
        return Err(IdxErrorKind::UnsupportedType { code: bytes[2] });
    }
    let rank = usize::from(bytes[3]);
    if rank == 0 {
        return Err(IdxErrorKind::ZeroRank);
    }
    let len = 4 + 4 * rank;
    if bytes.len() < len {
        return Err(IdxErrorKind::TooShort {
            len: bytes.len(),
            need: len,
        });
    }
    let raw: Vec<u64> = bytes[4..len]
        .chunks_exact(4)
        .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    if let Some(axis) = raw.iter().position(|&d| d == 0) {
        return Err(IdxErrorKind::ZeroDim { axis });
    }
    // Up to 255 sizes of 32 bits: even a u128 product can overflow (found by fuzzing).
    let expected = raw
        .iter()
        .try_fold(1u128, |acc, &d| acc.checked_mul(u128::from(d)));
    let Some(expected) = expected else {
        return Err(IdxErrorKind::Overflow { dims: raw });
    };
    let actual = bytes.len() - len;
    if expected != actual as u128 {
        return Err(IdxErrorKind::LengthMismatch {
            dims: raw,
            expected,
            actual,
        });
    }
    // The product equals a real length, so every size and the product fit a usize.
    let dims = raw.iter().map(|&d| d as usize).collect();
    Ok(Header { dims, len })
}

/// A memory-mapped, validated IDX file of unsigned bytes.
#[derive(Debug)]
pub struct IdxFile {
    /// The file the user named (a `.gz` when the data came from a cache).
    pub path: PathBuf,
    /// The file that is mapped (the cache for a `.gz`).
    pub mapped_path: PathBuf,
    header: Header,
    map: Mmap,
}

impl IdxFile {
    /// Opens an IDX file, decompressing a `.gz` once into a cache (see [`crate::cache`]).
    pub fn open(path: &Path, cache: &crate::cache::CachePolicy) -> Result<Self, IdxError> {
        let mapped_path = if is_gzip_name(path) {
            crate::cache::decompressed(path, cache)?
        } else {
            path.to_path_buf()
        };
        let mut file = Self::map_plain(&mapped_path)?;
        file.path = path.to_path_buf();
        Ok(file)
    }

    /// Maps and validates an uncompressed IDX file.
    pub fn map_plain(path: &Path) -> Result<Self, IdxError> {
        let meta = std::fs::metadata(path).map_err(|e| IdxError::io(path, e))?;
        if meta.is_dir() {
            return Err(IdxError::new(path, IdxErrorKind::NotAFile));
        }
        if meta.len() == 0 {
            // Mapping an empty file fails with an unhelpful EINVAL.
            return Err(IdxError::new(path, IdxErrorKind::Empty));
        }
        let file = File::open(path).map_err(|e| IdxError::io(path, e))?;
        // SAFETY: the map is read-only; the files we map are replaced by rename, never
        // truncated in place, so the mapping stays valid for the life of the process.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| IdxError::io(path, e))?;
        let header = parse(&map).map_err(|kind| IdxError::new(path, kind))?;
        Ok(IdxFile {
            path: path.to_path_buf(),
            mapped_path: path.to_path_buf(),
            header,
            map,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn dims(&self) -> &[usize] {
        &self.header.dims
    }

    pub fn count(&self) -> usize {
        self.header.count()
    }

    pub fn item_len(&self) -> usize {
        self.header.item_len()
    }

    /// All items, row-major, straight from the mapping.
    pub fn data(&self) -> &[u8] {
        &self.map[self.header.len..]
    }

    /// Item `i` (a flattened image, or one label byte).
    pub fn item(&self, i: usize) -> &[u8] {
        let n = self.item_len();
        &self.data()[i * n..(i + 1) * n]
    }
}

pub fn is_gzip_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Serialises an IDX file of unsigned bytes (used by tests and data generators).
pub fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let rank = u8::try_from(dims.len()).expect("IDX rank fits a byte");
    let mut out = vec![0, 0, UNSIGNED_BYTE, rank];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_valid_rank3_header() {
        let bytes = encode(&[2, 3, 4], &[7; 24]);
        let h = parse(&bytes).unwrap();
        assert_eq!(h.dims, vec![2, 3, 4]);
        assert_eq!(h.len, 16);
        assert_eq!(h.count(), 2);
        assert_eq!(h.item_len(), 12);
    }

    #[test]
    fn rank1_items_are_single_bytes() {
        let h = parse(&encode(&[5], &[0, 1, 2, 3, 4])).unwrap();
        assert_eq!(h.item_len(), 1);
    }

    #[test]
    fn rejects_each_malformation_with_its_own_kind() {
        use IdxErrorKind::*;
        assert!(matches!(parse(&[]), Err(Empty)));
        assert!(matches!(parse(&[0, 0, 8]), Err(TooShort { need: 4, .. })));
        assert!(matches!(
            parse(&[1, 2, 8, 1, 0, 0, 0, 1, 9]),
            Err(BadMagic { found: [1, 2] })
        ));
        assert!(matches!(
            parse(&[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(UnsupportedType { code: 0x0D })
        ));
        assert!(matches!(parse(&[0, 0, 8, 0]), Err(ZeroRank)));
        assert!(matches!(
            parse(&[0, 0, 8, 2, 0, 0, 0, 1]),
            Err(TooShort { need: 12, .. })
        ));
        assert!(matches!(
            parse(&encode(&[3, 0], &[])),
            Err(ZeroDim { axis: 1 })
        ));
        assert!(matches!(
            parse(&encode(&[2, 2], &[1, 2, 3])),
            Err(LengthMismatch {
                expected: 4,
                actual: 3,
                ..
            })
        ));
        assert!(matches!(
            parse(&encode(&[2, 2], &[1, 2, 3, 4, 5])),
            Err(LengthMismatch { actual: 5, .. })
        ));
    }

    #[test]
    fn a_header_claiming_billions_is_a_length_error_not_an_allocation() {
        let bytes = encode(&[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]);
        match parse(&bytes) {
            Err(IdxErrorKind::LengthMismatch { expected, .. }) => {
                assert_eq!(expected, u128::from(u32::MAX).pow(3))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn sizes_whose_product_overflows_even_u128_are_an_error() {
        let bytes = encode(&[u32::MAX; 5], &[]);
        assert!(matches!(parse(&bytes), Err(IdxErrorKind::Overflow { .. })));
    }

    #[test]
    fn messages_name_what_was_expected() {
        let e = IdxError::new(
            Path::new("x.idx"),
            parse(&[0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap_err(),
        );
        let text = e.to_string();
        assert!(text.starts_with("x.idx: "), "{text}");
        assert!(text.contains("0x0C (i32, a valid IDX type)"), "{text}");
        assert!(text.contains("only 0x08 unsigned byte"), "{text}");
    }
}
