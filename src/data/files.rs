//! Opening the user's files: only regular files (or links to them) are opened, so a FIFO,
//! a device or a socket is refused before `open` could block on it or read forever; a
//! dangling link or a link loop is named as such.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a path cannot be opened as a regular file.
#[derive(Debug)]
pub enum NotRegular {
    /// The OS's own error (no such file, permission denied, ...).
    Missing(io::Error),
    DanglingLink(PathBuf),
    LinkLoop,
    Directory,
    Special(&'static str),
    Io(io::Error),
}

impl fmt::Display for NotRegular {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotRegular::Missing(e) => write!(f, "{e}"),
            NotRegular::DanglingLink(to) => {
                write!(f, "is a dangling symbolic link (to {})", to.display())
            }
            NotRegular::LinkLoop => write!(f, "is a symbolic link loop"),
            NotRegular::Directory => write!(f, "is a directory, not a regular file"),
            NotRegular::Special(kind) => write!(f, "is a {kind}, not a regular file"),
            NotRegular::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NotRegular {}

impl From<NotRegular> for io::Error {
    fn from(e: NotRegular) -> io::Error {
        let kind = match &e {
            NotRegular::Missing(e) | NotRegular::Io(e) => e.kind(),
            NotRegular::DanglingLink(_) => io::ErrorKind::NotFound,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e.to_string())
    }
}

fn special_kind(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_dir() {
        None
    } else if t.is_fifo() {
        Some("FIFO (named pipe)")
    } else if t.is_char_device() {
        Some("character device")
    } else if t.is_block_device() {
        Some("block device")
    } else if t.is_socket() {
        Some("socket")
    } else if !t.is_file() {
        Some("special file")
    } else {
        None
    }
}

/// The metadata of `path` if it is a regular file (following links).
pub fn regular_metadata(path: &Path) -> Result<Metadata, NotRegular> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(NotRegular::Directory),
        Ok(meta) => match special_kind(&meta) {
            Some(kind) => Err(NotRegular::Special(kind)),
            None => Ok(meta),
        },
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(NotRegular::LinkLoop),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => Err(NotRegular::DanglingLink(
                std::fs::read_link(path).unwrap_or_default(),
            )),
            _ => Err(NotRegular::Missing(e)),
        },
        Err(e) => Err(NotRegular::Io(e)),
    }
}

/// Opens `path` for reading if it is a regular file. Opened non-blocking and checked again
/// on the descriptor, so a FIFO swapped in after the first check cannot block either.
pub fn open_regular(path: &Path) -> Result<File, NotRegular> {
    regular_metadata(path)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(NotRegular::Io)?;
    let meta = file.metadata().map_err(NotRegular::Io)?;
    if let Some(kind) = special_kind(&meta) {
        return Err(NotRegular::Special(kind));
    }
    if meta.is_dir() {
        return Err(NotRegular::Directory);
    }
    // O_NONBLOCK means nothing for a regular file's reads; clear it all the same.
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

/// Reads a whole regular file.
pub fn read_regular(path: &Path) -> Result<Vec<u8>, NotRegular> {
    use std::io::Read;
    let mut file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(NotRegular::Io)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_dangling_links_and_loops_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.gz");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_regular(&fifo).unwrap_err().to_string();
        assert_eq!(e, "is a FIFO (named pipe), not a regular file");
        let e = open_regular(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("character device, not a regular file"), "{e}");
        let link = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("gone"), &link).unwrap();
        assert!(matches!(
            open_regular(&link),
            Err(NotRegular::DanglingLink(_))
        ));
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        assert!(matches!(open_regular(&a), Err(NotRegular::LinkLoop)));
        assert!(matches!(
            open_regular(dir.path()),
            Err(NotRegular::Directory)
        ));
    }
}
