//! Memory-mapped access to a validated IDX file. A `.gz` file is decompressed once into a
//! cache file that is then mapped; see [`super::cache`].

use super::cache::{self, CachePolicy};
use super::error::{IdxError, IdxErrorKind};
use super::format::{parse, Header};
use crate::data::files;
use crate::data::sigbus;
use memmap2::Mmap;
use std::path::{Path, PathBuf};

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
    /// Opens an IDX file, decompressing a `.gz` once into a cache (see [`super::cache`]).
    pub fn open(path: &Path, policy: &CachePolicy) -> Result<Self, IdxError> {
        let mapped_path = if is_gzip_name(path) {
            cache::decompressed(path, policy)?
        } else {
            path.to_path_buf()
        };
        let mut file = Self::map_plain(&mapped_path)?;
        file.path = path.to_path_buf();
        Ok(file)
    }

    /// Maps and validates an uncompressed IDX file.
    pub fn map_plain(path: &Path) -> Result<Self, IdxError> {
        let file = files::open_regular(path).map_err(|e| IdxError::not_regular(path, e))?;
        let meta = file.metadata().map_err(|e| IdxError::io(path, e))?;
        if meta.len() == 0 {
            // Mapping an empty file fails with an unhelpful EINVAL.
            return Err(IdxError::new(path, IdxErrorKind::Empty));
        }
        sigbus::watch(path);
        // SAFETY: the map is read-only. Our caches are replaced by rename, never truncated
        // in place; a user's file truncated while mapped raises SIGBUS on the next read,
        // which `sigbus` turns into a message naming the mapped files and exit status 1.
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
