//! Hostile input neither crashes nor hangs, and nothing untrusted is believed: sizes are
//! checked against memory, special files are refused before `open`, a data file truncated
//! mid-run is an error (not SIGBUS), caches are keyed on content, temporaries of killed runs
//! are cleaned, checkpoints are checked tensor by tensor.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd`, killing it (and failing) if it takes longer than `limit`.
fn within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("still running after {limit:?}: it blocked");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path the test owns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn train_on(data: &Path, extra: &[&str]) -> Command {
    let mut cmd = common::backprop();
    let cfg = common::write_config(
        data.parent().unwrap(),
        "run.toml",
        "[data]\ndir = \"data\"\n[model]\nhidden = [8]\n[train]\nepochs = 1\nbatch_size = 8\n",
    );
    cmd.args(["--config", cfg.to_str().unwrap(), "--quiet"])
        .args(["--data-dir", data.to_str().unwrap()])
        .args(extra);
    cmd
}

fn data_folder() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    common::write_band_dataset(&data, 4, 2, 40, 10);
    (dir, data)
}

fn failed(out: &Output, needles: &[&str]) {
    let err = common::stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

#[test]
fn hidden_widths_past_memory_are_refused_with_the_figures() {
    let (_dir, data) = data_folder();
    let out = within(
        train_on(&data, &["--hidden", "4000000000"]),
        Duration::from_secs(60),
    );
    failed(&out, &["needs about", "available", "--hidden"]);
}

#[test]
fn fifos_and_devices_are_refused_without_blocking() {
    let (_dir, data) = data_folder();
    let gz = data.join("train-images-idx3-ubyte.gz");
    std::fs::remove_file(&gz).unwrap();
    mkfifo(&gz);
    let out = within(train_on(&data, &[]), Duration::from_secs(30));
    failed(
        &out,
        &[
            "train-images-idx3-ubyte.gz",
            "FIFO (named pipe), not a regular file",
        ],
    );
    let out = within(
        {
            let mut c = common::backprop();
            c.args(["--config", "/dev/zero"]);
            c
        },
        Duration::from_secs(30),
    );
    failed(&out, &["/dev/zero", "character device, not a regular file"]);
}

#[test]
fn a_dangling_link_in_the_data_folder_is_named_as_such() {
    let (_dir, data) = data_folder();
    let p = data.join("train-labels-idx1-ubyte.gz");
    std::fs::remove_file(&p).unwrap();
    std::os::unix::fs::symlink(data.join("gone"), &p).unwrap();
    let out = within(train_on(&data, &[]), Duration::from_secs(30));
    failed(
        &out,
        &["train-labels-idx1-ubyte.gz", "dangling symbolic link"],
    );
}

#[test]
fn a_missing_file_gives_the_os_reason_once() {
    let (dir, data) = data_folder();
    let cfg = format!(
        "[data]\ntrain_images = \"{0}/nope\"\ntrain_labels = \"{0}/train-labels-idx1-ubyte.gz\"\n\
         test_images = \"{0}/t10k-images-idx3-ubyte\"\ntest_labels = \"{0}/t10k-labels-idx1-ubyte\"\n",
        data.display()
    );
    let cfg = common::write_config(dir.path(), "c.toml", &cfg);
    let out = common::run(&["--config", cfg.to_str().unwrap()]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nope: cannot read"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

#[test]
fn a_data_file_truncated_mid_run_is_an_error_not_a_crash() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    common::write_band_dataset(&data, 16, 2, 20_000, 10);
    // Uncompressed, so the user's own file is what is mapped.
    let gz = data.join("train-images-idx3-ubyte.gz");
    let raw = flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap());
    let images = data.join("train-images-idx3-ubyte");
    std::io::copy(
        &mut std::io::BufReader::new(raw),
        &mut std::fs::File::create(&images).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(&gz).unwrap();
    let metrics = dir.path().join("m.jsonl");
    let mut cmd = train_on(
        &data,
        &[
            "--epochs",
            "100000",
            "--metrics-out",
            metrics.to_str().unwrap(),
            "--threads",
            "1",
        ],
    );
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !metrics.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no epoch finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::File::options()
        .write(true)
        .open(&images)
        .unwrap()
        .set_len(100)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    failed(&out, &["truncated", "SIGBUS", "train-images-idx3-ubyte"]);
    assert!(std::fs::read_to_string(&metrics).unwrap().lines().count() >= 1);
}

#[test]
fn a_gz_replaced_by_one_with_an_older_mtime_rebuilds_its_cache() {
    let (_dir, data) = data_folder();
    assert!(within(train_on(&data, &[]), Duration::from_secs(60))
        .status
        .success());
    let gz = data.join("train-labels-idx1-ubyte.gz");
    let cache = data.join("train-labels-idx1-ubyte.backprop-cache");
    let old = std::fs::read(&cache).unwrap();
    // Same count, labels flipped; the file gets an mtime far in the past, as `cp -p` does.
    let labels: Vec<u8> = old[8..].iter().map(|l| 1 - l).collect();
    common::write_idx(&gz, &[labels.len() as u32], &labels);
    let f = std::fs::File::options().write(true).open(&gz).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    drop(f);
    let out = within(train_on(&data, &[]), Duration::from_secs(60));
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(&std::fs::read(&cache).unwrap()[8..], &labels[..]);
    assert!(
        common::stderr(&out).contains("rebuilding"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn a_cache_another_user_cannot_read_falls_back_to_the_user_cache() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let (dir, data) = data_folder();
    assert!(within(train_on(&data, &[]), Duration::from_secs(60))
        .status
        .success());
    let cache = data.join("train-images-idx3-ubyte.backprop-cache");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();
    for d in [dir.path(), data.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let user_cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(user_cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = train_on(&data, &[]);
    cmd.uid(65534)
        .gid(65534)
        .env("HOME", "/nonexistent")
        .env("XDG_CACHE_HOME", user_cache.path());
    let out = within(cmd, Duration::from_secs(60));
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("cannot be read"), "{err}");
}

#[test]
fn temporaries_of_killed_runs_are_cleaned_and_only_those() {
    let (dir, data) = data_folder();
    let dead = ".backprop-4194305-AbC123.tmp";
    let foreign = ".something-4194305-x.tmp";
    for d in [dir.path(), data.as_path()] {
        std::fs::write(d.join(dead), vec![0u8; 4096]).unwrap();
        std::fs::write(d.join(foreign), b"not ours").unwrap();
    }
    let save = dir.path().join("m.safetensors");
    let out = within(
        train_on(&data, &["--save", save.to_str().unwrap()]),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    for d in [dir.path(), data.as_path()] {
        assert!(!d.join(dead).exists(), "{} kept", d.display());
        assert!(d.join(foreign).exists());
    }
}

/// Rewrites a checkpoint with `edit` applied to its tensors and metadata.
fn tampered(
    src: &Path,
    dst: &Path,
    edit: impl Fn(&str, &mut Vec<usize>, &mut Vec<u8>),
    meta_edit: impl Fn(&mut std::collections::HashMap<String, String>),
) {
    use safetensors::{tensor::TensorView, SafeTensors};
    let bytes = std::fs::read(src).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    meta_edit(&mut meta);
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| (name, t.shape().to_vec(), t.data().to_vec()))
        .collect();
    for (name, shape, data) in &mut owned {
        edit(name, shape, data);
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    std::fs::write(dst, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

#[test]
fn checkpoints_are_checked_tensor_by_tensor() {
    let (dir, data) = data_folder();
    let d = dir.path();
    let good = d.join("good.safetensors");
    assert!(within(
        train_on(&data, &["--save", good.to_str().unwrap()]),
        Duration::from_secs(60)
    )
    .status
    .success());
    let eval = |p: &Path| {
        let mut c = common::backprop();
        c.args(["eval", "--model", p.to_str().unwrap()]);
        within(c, Duration::from_secs(60))
    };
    assert!(eval(&good).status.success());
    let transposed = d.join("t.safetensors");
    tampered(
        &good,
        &transposed,
        |name, shape, _| {
            if name == "layer0.weight" {
                shape.reverse();
            }
        },
        |_| {},
    );
    failed(
        &eval(&transposed),
        &[
            "tensor `layer0.weight`",
            "[8, 16]",
            "expected F32 of shape [16, 8]",
        ],
    );
    let nan = d.join("n.safetensors");
    tampered(
        &good,
        &nan,
        |name, _, data| {
            if name == "layer1.bias" {
                data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
            }
        },
        |_| {},
    );
    failed(&eval(&nan), &["tensor `layer1.bias` holds NaN at index 0"]);
    let huge = d.join("h.safetensors");
    tampered(
        &good,
        &huge,
        |_, _, _| {},
        |meta| {
            let arch = meta["architecture"].replace("\"outputs\":2", "\"outputs\":1000000000000");
            meta.insert("architecture".into(), arch);
        },
    );
    failed(
        &eval(&huge),
        &[
            "tensor `layer1.weight`",
            "expected F32 of shape [8, 1000000000000]",
        ],
    );
}
