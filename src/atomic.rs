//! Files written whole or not at all: a temporary file in the target's folder, synced, then
//! renamed over the target. A crash (even `kill -9`) leaves either the old file or the new
//! one, never half of either. The file gets the permissions a plain create would (0666 less
//! the umask), not the private 0600 of a temporary file. Temporary names carry the writer's
//! pid (`.backprop-<pid>-XXXXXX.tmp`), so [`clean_stale`] can remove those of dead runs.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const PREFIX: &str = ".backprop-";
const SUFFIX: &str = ".tmp";

/// Writes `target` atomically with whatever `fill` writes.
pub fn write_with<F>(target: &Path, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    // 0666 less the umask, as any new file: tempfile's default 0600 would lock other users
    // out of a shared cache or result.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", std::process::id()))
        .suffix(SUFFIX)
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    {
        let mut out = io::BufWriter::new(tmp.as_file_mut());
        fill(&mut out)?;
        out.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// Writes `bytes` to `target` atomically.
pub fn write(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(target, |out| out.write_all(bytes))
}

/// The pid in a temporary name of ours, `.backprop-<pid>-XXXXXX.tmp`.
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    rest.split_once('-')?.0.parse().ok()
}

/// Whether process `pid` is alive and is this program (a reused pid belongs to another).
fn alive(pid: u32) -> bool {
    let comm = |p: &str| std::fs::read_to_string(format!("/proc/{p}/comm")).ok();
    match (comm(&pid.to_string()), comm("self")) {
        (Some(theirs), Some(ours)) => theirs == ours,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Removes the temporaries of this program in `dir` whose writer is no longer running (a
/// run killed with `kill -9` mid-write); returns what was removed. Others' files, and
/// temporaries of live runs, are never touched.
pub fn clean_stale(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = owner(&name.to_string_lossy()) else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && pid != std::process::id() && !alive(pid) {
            let path = entry.path();
            if std::fs::remove_file(&path).is_ok() {
                removed.push(path);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_target_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        std::fs::write(&target, "old").unwrap();
        write(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_fill_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        std::fs::write(&target, "old").unwrap();
        let err = write_with(&target, |out| {
            out.write_all(b"partial")?;
            Err(io::Error::other("disk on fire"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temporaries_of_dead_runs_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // pid 2^22 + 1 is above Linux's pid_max: never alive.
        let dead = d.join(".backprop-4194305-abc123.tmp");
        let live = d.join(format!(".backprop-{}-xyz.tmp", std::process::id()));
        let other = d.join(".other-4194305-abc.tmp");
        let user = d.join("notes.tmp");
        for p in [&dead, &live, &other, &user] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(clean_stale(d), vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && other.exists() && user.exists());
    }

    #[test]
    fn new_files_are_readable_by_others_as_the_umask_allows() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("shared");
        write(&target, b"x").unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_ne!(mode & 0o044, 0, "mode {mode:o}");
    }
}
