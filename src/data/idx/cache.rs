//! Decompressed caches of `.gz` IDX files.
//!
//! `train-images-idx3-ubyte.gz` is decompressed once into `train-images-idx3-ubyte.backprop-cache`
//! beside it, which is then memory-mapped. A cache is keyed on content, not on times (which
//! `cp -p`, `tar` and `rsync -a` carry over): it is used only if its length and CRC-32 equal
//! the ISIZE and CRC-32 of the gzip trailer, checked on every open (a CRC over the cache
//! runs at several GB/s). Anything else (a stale cache, overwritten bytes, a cache another
//! user made unreadable) is rebuilt, or the per-user cache is used, and a note says so. When
//! the data folder is read-only the cache goes to the user's cache folder, under a name keyed
//! by the source's path, size and trailer. Caches are written to a temporary name and
//! renamed, so concurrent runs and killed runs never expose a half-written cache; the
//! temporaries of killed runs are removed by the next run.

use super::error::{IdxError, IdxErrorKind};
use crate::atomic;
use crate::data::files;
use flate2::read::MultiGzDecoder;
use std::fs::{self, Metadata};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub const SUFFIX: &str = "backprop-cache";

/// Where caches may go when the data folder cannot take them.
#[derive(Clone, Debug, Default)]
pub struct CachePolicy {
    /// Overrides `$XDG_CACHE_HOME/backprop` (or `~/.cache/backprop`).
    pub fallback_dir: Option<PathBuf>,
}

impl CachePolicy {
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        CachePolicy {
            fallback_dir: Some(dir.into()),
        }
    }

    fn fallback_dir(&self) -> Option<PathBuf> {
        self.fallback_dir
            .clone()
            .or_else(|| dirs::cache_dir().map(|d| d.join("backprop")))
    }
}

/// The path of an up-to-date decompressed copy of `gz`, building it if needed.
pub fn decompressed(gz: &Path, policy: &CachePolicy) -> Result<PathBuf, IdxError> {
    let meta = files::regular_metadata(gz).map_err(|e| IdxError::not_regular(gz, e))?;
    let trailer = gzip_trailer(gz)?;
    let stem = cache_stem(gz);
    let beside = gz.with_file_name(format!("{stem}.{SUFFIX}"));
    let fallback = policy.fallback_dir().map(|dir| {
        dir.join(format!(
            "{:016x}-{stem}.{SUFFIX}",
            source_key(gz, &meta, trailer)
        ))
    });
    for c in std::iter::once(&beside).chain(fallback.as_ref()) {
        if let Some(dir) = c.parent() {
            atomic::clean_stale(dir);
        }
        match verify(c, trailer) {
            Ok(true) => return Ok(c.clone()),
            Ok(false) => {}
            Err(why) => note(&format!("cache {} {why}; rebuilding it", c.display())),
        }
    }
    if folder_is_writable(&beside) {
        match write_cache(gz, &beside) {
            Err(IdxError {
                kind: IdxErrorKind::Cache { source, .. },
                ..
            }) if is_permission_problem(&source) => note(&format!(
                "cannot write the cache {} ({source}); using the per-user cache",
                beside.display()
            )),
            other => return other.map(|()| beside),
        }
    }
    let fallback = fallback.ok_or_else(|| {
        IdxError::new(
            gz,
            IdxErrorKind::Cache {
                target: beside.clone(),
                source: io::Error::other(
                    "the data folder is read-only and no user cache folder is known (set XDG_CACHE_HOME)",
                ),
            },
        )
    })?;
    if let Some(dir) = fallback.parent() {
        fs::create_dir_all(dir).map_err(|source| cache_error(gz, dir, source))?;
    }
    write_cache(gz, &fallback).map(|()| fallback)
}

/// Tells the user what the cache did (the data layer has no console of its own).
fn note(message: &str) {
    eprintln!("note: {message}");
}

/// The CRC-32 and ISIZE (length mod 2^32) of the gzip trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Trailer {
    crc: u32,
    isize: u32,
}

/// Whether `cache` holds exactly the data the trailer describes: `Ok(false)` when there is
/// no cache, `Err` saying what is wrong with one that exists.
fn verify(cache: &Path, trailer: Trailer) -> Result<bool, String> {
    let mut file = match files::open_regular(cache) {
        Ok(f) => f,
        Err(files::NotRegular::Missing(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(false)
        }
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if (len & 0xFFFF_FFFF) != u64::from(trailer.isize) {
        return Err("has the wrong length for its .gz".to_string());
    }
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot be read ({e})")),
        }
    }
    if hasher.finalize() != trailer.crc {
        return Err("does not match its .gz (CRC-32 differs)".to_string());
    }
    Ok(true)
}

fn cache_stem(gz: &Path) -> String {
    let name = gz
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.len().checked_sub(3) {
        Some(cut) if name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".gz") => {
            name[..cut].to_string()
        }
        _ => name,
    }
}

/// The last eight bytes of a gzip file: CRC-32 and ISIZE of the uncompressed data.
fn gzip_trailer(gz: &Path) -> Result<Trailer, IdxError> {
    let mut file = files::open_regular(gz).map_err(|e| IdxError::not_regular(gz, e))?;
    let len = file.metadata().map_err(|e| IdxError::io(gz, e))?.len();
    if len < 18 {
        let msg = format!("{len} bytes, shorter than the smallest gzip file (18 bytes)");
        return Err(IdxError::new(
            gz,
            IdxErrorKind::Gzip(io::Error::new(io::ErrorKind::UnexpectedEof, msg)),
        ));
    }
    let mut t = [0u8; 8];
    file.seek(SeekFrom::End(-8))
        .and_then(|_| file.read_exact(&mut t))
        .map_err(|e| IdxError::io(gz, e))?;
    Ok(Trailer {
        crc: u32::from_le_bytes([t[0], t[1], t[2], t[3]]),
        isize: u32::from_le_bytes([t[4], t[5], t[6], t[7]]),
    })
}

fn folder_is_writable(file: &Path) -> bool {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Mode bits, not a probe: root may write anywhere, but a folder the user made read-only
    // should still be left alone.
    fs::metadata(dir).is_ok_and(|m| !m.permissions().readonly())
}

fn is_permission_problem(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

fn cache_error(gz: &Path, target: &Path, source: io::Error) -> IdxError {
    IdxError::new(
        gz,
        IdxErrorKind::Cache {
            target: target.to_path_buf(),
            source,
        },
    )
}

fn write_cache(gz: &Path, target: &Path) -> Result<(), IdxError> {
    let file = files::open_regular(gz).map_err(|e| IdxError::not_regular(gz, e))?;
    let mut decoder = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file));
    let mut read_error = None;
    let written = atomic::write_with(target, |out| {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match decoder.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => out.write_all(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    read_error = Some(e);
                    return Err(io::Error::other("gzip read failed"));
                }
            }
        }
    });
    if let Some(e) = read_error {
        return Err(IdxError::new(gz, IdxErrorKind::Gzip(e)));
    }
    written.map_err(|source| cache_error(gz, target, source))
}

/// FNV-1a over the source's canonical path, size and gzip trailer (never its mtime).
fn source_key(gz: &Path, meta: &Metadata, trailer: Trailer) -> u64 {
    let path = fs::canonicalize(gz).unwrap_or_else(|_| gz.to_path_buf());
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let path_bytes = path.to_string_lossy();
    let parts = [
        path_bytes.as_bytes(),
        &meta.len().to_le_bytes(),
        &trailer.crc.to_le_bytes(),
        &trailer.isize.to_le_bytes(),
    ];
    for byte in parts.iter().flat_map(|p| p.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn cache_is_built_beside_then_reused_then_rebuilt_when_stale() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("x-idx1-ubyte.gz");
        fs::write(&gz, gzip(b"first")).unwrap();
        let policy = CachePolicy::in_dir(dir.path().join("user-cache"));
        let cache = decompressed(&gz, &policy).unwrap();
        assert_eq!(cache, dir.path().join("x-idx1-ubyte.backprop-cache"));
        assert_eq!(fs::read(&cache).unwrap(), b"first");

        // A cache of the wrong size is rebuilt.
        fs::write(&cache, b"firs").unwrap();
        assert_eq!(
            fs::read(decompressed(&gz, &policy).unwrap()).unwrap(),
            b"first"
        );

        // A cache older than its source is rebuilt.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&gz, gzip(b"other")).unwrap();
        assert_eq!(
            fs::read(decompressed(&gz, &policy).unwrap()).unwrap(),
            b"other"
        );
    }

    #[test]
    fn cache_is_keyed_on_content_not_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("z-idx1-ubyte.gz");
        let policy = CachePolicy::in_dir(dir.path().join("user-cache"));
        fs::write(&gz, gzip(b"first data")).unwrap();
        let cache = decompressed(&gz, &policy).unwrap();
        // A replacement with an older mtime (as `cp -p` leaves it): still rebuilt.
        fs::write(&gz, gzip(b"other data")).unwrap();
        let old = fs::File::options().write(true).open(&gz).unwrap();
        old.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000))
            .unwrap();
        drop(old);
        assert_eq!(
            fs::read(decompressed(&gz, &policy).unwrap()).unwrap(),
            b"other data"
        );
        // Bytes overwritten in place, same length, newer mtime: caught by the CRC.
        fs::write(&cache, b"XXXXX data").unwrap();
        assert_eq!(
            fs::read(decompressed(&gz, &policy).unwrap()).unwrap(),
            b"other data"
        );
    }

    #[test]
    fn a_fifo_named_gz_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p-idx1-ubyte.gz");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = decompressed(&fifo, &CachePolicy::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("FIFO (named pipe), not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn stale_cache_temporaries_of_killed_runs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("w-idx1-ubyte.gz");
        fs::write(&gz, gzip(b"payload")).unwrap();
        let orphan = dir.path().join(".backprop-4194305-AbCdEf.tmp");
        fs::write(&orphan, vec![0u8; 1000]).unwrap();
        decompressed(&gz, &CachePolicy::in_dir(dir.path().join("u"))).unwrap();
        assert!(!orphan.exists());
    }

    #[test]
    fn corrupt_and_truncated_gzip_are_named_errors_and_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let policy = CachePolicy::in_dir(dir.path().join("user-cache"));
        let gz = dir.path().join("bad.gz");
        let good = gzip(&[7u8; 10_000]);
        fs::write(&gz, &good[..good.len() / 2]).unwrap();
        let err = decompressed(&gz, &policy).unwrap_err();
        assert!(matches!(err.kind, IdxErrorKind::Gzip(_)), "{err}");
        assert!(err.to_string().contains("bad.gz"));

        let mut flipped = good.clone();
        flipped[12] ^= 0xFF;
        flipped[20] ^= 0xFF;
        fs::write(&gz, &flipped).unwrap();
        let err = decompressed(&gz, &policy).unwrap_err();
        assert!(matches!(err.kind, IdxErrorKind::Gzip(_)), "{err}");

        fs::write(&gz, b"tiny").unwrap();
        assert!(matches!(
            decompressed(&gz, &policy).unwrap_err().kind,
            IdxErrorKind::Gzip(_)
        ));
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "only bad.gz remains: {left:?}");
    }

    #[test]
    fn a_read_only_folder_sends_the_cache_to_the_user_cache() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        let gz = data.join("y.gz");
        fs::write(&gz, gzip(b"payload")).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
        let user = dir.path().join("user-cache");
        let cache = decompressed(&gz, &CachePolicy::in_dir(&user)).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(cache.starts_with(&user), "{}", cache.display());
        assert!(cache.to_string_lossy().ends_with("-y.backprop-cache"));
        assert_eq!(fs::read(&cache).unwrap(), b"payload");
        assert_eq!(fs::read_dir(&data).unwrap().count(), 1);
    }
}
