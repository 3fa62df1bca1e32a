//! The output plan: every path a run will write, resolved and checked before training, so
//! that nothing the user has is overwritten and no run is thrown away at the end. An output
//! is refused when it is one of the run's inputs (the config, a data file, the checkpoint
//! being resumed), another output, an existing directory or special file, in a folder that
//! cannot be written, or (a plot) not `.png` or `.svg`. If a path still fails mid-run, the
//! model is saved somewhere else ([`save_rescued`]) and the message says where.

use crate::data::files::{regular_metadata, NotRegular};
use anyhow::{anyhow, bail, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A path the run will write, and the flag or config key that named it (for messages).
#[derive(Clone, Debug)]
pub struct Output {
    pub named_by: String,
    pub path: PathBuf,
    /// The one kind of output allowed to replace an input: `--save` naming the checkpoint
    /// being resumed, on purpose.
    pub may_replace: Option<PathBuf>,
    /// A plot, whose extension picks the format.
    pub is_plot: bool,
}

/// A path the run reads.
#[derive(Clone, Debug)]
pub struct Input {
    pub what: String,
    pub path: PathBuf,
}

/// What identifies a file: its inode when it exists, else its normalised path.
#[derive(PartialEq, Eq, Debug)]
enum Identity {
    Inode(u64, u64),
    Path(PathBuf),
}

fn identity(p: &Path) -> Identity {
    if let Ok(m) = std::fs::metadata(p) {
        return Identity::Inode(m.dev(), m.ino());
    }
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let normal = match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(abs.clone()),
        _ => abs,
    };
    Identity::Path(normal)
}

fn folder_of(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Checks every output against the inputs, each other, and the file system.
pub fn check(outputs: &[Output], inputs: &[Input]) -> Result<()> {
    for (i, out) in outputs.iter().enumerate() {
        let shown = out.path.display();
        match regular_metadata(&out.path) {
            Ok(_) => {}
            Err(NotRegular::Missing(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(NotRegular::DanglingLink(_)) => {}
            Err(why) => bail!("{} {shown} {why}; name a file to write", out.named_by),
        }
        let id = identity(&out.path);
        for input in inputs {
            let replaceable = out
                .may_replace
                .as_ref()
                .is_some_and(|p| identity(p) == identity(&input.path));
            if !replaceable && identity(&input.path) == id {
                bail!(
                    "{} {shown} is {} ({}); writing it would destroy it. Name another file",
                    out.named_by,
                    input.what,
                    input.path.display()
                );
            }
        }
        if let Some(other) = outputs[..i].iter().find(|o| identity(&o.path) == id) {
            bail!(
                "{} and {} both name {shown}; one would replace the other. Give each its own file",
                other.named_by,
                out.named_by
            );
        }
        if out.is_plot {
            let ext = out
                .path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase());
            if !matches!(ext.as_deref(), Some("png" | "svg")) {
                bail!("{} {shown} must end in .png or .svg", out.named_by);
            }
        }
        writable(&out.path).map_err(|e| {
            anyhow!(
                "{} {shown} cannot be written: {e}; checked before training so that no run \
                 is lost",
                out.named_by
            )
        })?;
    }
    Ok(())
}

/// Creates the folder if needed and writes (then removes) a probe file in it, as the
/// atomic write will; also removes temporaries that dead runs left there.
fn writable(path: &Path) -> std::io::Result<()> {
    let dir = folder_of(path);
    std::fs::create_dir_all(dir)?;
    crate::atomic::clean_stale(dir);
    tempfile::Builder::new()
        .prefix(&format!(".backprop-{}-", std::process::id()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map(drop)
}

/// Writes with `save` to `path`; if that fails, to `path` with a suffix beside it, then to
/// the temporary folder. Returns where it went and, if not to `path`, why.
pub fn save_rescued(
    path: &Path,
    save: impl Fn(&Path) -> Result<()>,
) -> (Option<PathBuf>, Option<anyhow::Error>) {
    let first = match save(path) {
        Ok(()) => return (Some(path.to_path_buf()), None),
        Err(e) => e,
    };
    let name = path.file_name().map_or("model.safetensors".into(), |n| {
        n.to_string_lossy().into_owned()
    });
    let rescued = format!("{name}.rescued-{}", std::process::id());
    let candidates = [
        path.with_file_name(&rescued),
        std::env::temp_dir().join(&rescued),
    ];
    for c in candidates {
        if save(&c).is_ok() {
            return (Some(c), Some(first));
        }
    }
    (None, Some(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(named_by: &str, path: &Path) -> Output {
        Output {
            named_by: named_by.into(),
            path: path.to_path_buf(),
            may_replace: None,
            is_plot: named_by == "--plot",
        }
    }

    #[test]
    fn outputs_over_inputs_each_other_or_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let data = d.join("train.csv");
        std::fs::write(&data, "a,y\n").unwrap();
        let inputs = [Input {
            what: "the training data".into(),
            path: data.clone(),
        }];
        let e = check(&[out("--csv-out", &d.join("./train.csv"))], &inputs).unwrap_err();
        assert!(e.to_string().contains("is the training data"), "{e}");
        let e = check(
            &[
                out("--metrics-out", &d.join("x")),
                out("--save", &d.join("x")),
            ],
            &inputs,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("--metrics-out and --save both name"),
            "{e}"
        );
        let e = check(&[out("--save", d)], &inputs).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = check(&[out("--plot", &d.join("curves.jpg"))], &inputs).unwrap_err();
        assert!(e.to_string().contains("must end in .png or .svg"), "{e}");
        check(&[out("--save", &d.join("new/m.safetensors"))], &inputs).unwrap();
        assert_eq!(std::fs::read_dir(d.join("new")).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_save_goes_beside_then_to_the_temp_folder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.safetensors");
        let (at, why) = save_rescued(&target, |p| {
            if p == target {
                bail!("disk full")
            }
            std::fs::write(p, b"model")?;
            Ok(())
        });
        let at = at.unwrap();
        assert!(at.to_string_lossy().contains("m.safetensors.rescued-"));
        assert_eq!(std::fs::read(&at).unwrap(), b"model");
        assert!(why.unwrap().to_string().contains("disk full"));
    }
}
