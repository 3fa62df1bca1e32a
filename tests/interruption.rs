//! Interruption, kill -9, concurrent runs and read-only data lose nothing and crash nothing.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn signal(child: &Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |t| t.lines().count())
}

fn long_run(dir: &Path, extra: &[&str]) -> Child {
    let config = common::repo().join("configs/mnist_300x300.toml");
    common::backprop()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--hidden",
            "32",
            "--epochs",
            "100",
            "--threads",
            "2",
        ])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn interrupted_run_saves_and_says_how_to_resume(sig: &str) {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let child = long_run(
        d,
        &[
            "--save",
            "ck.safetensors",
            "--metrics-out",
            "m.jsonl",
            "--plot",
            "c.png",
        ],
    );
    wait_for("the first epoch", Duration::from_secs(120), || {
        lines(&d.join("m.jsonl")) >= 1
    });
    signal(&child, sig);
    let out = child.wait_with_output().unwrap();
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted in epoch"), "{err}");
    assert!(err.contains("continue with: backprop --resume"), "{err}");
    let ck = backprop::output::checkpoint::load(&d.join("ck.safetensors")).unwrap();
    let epochs = ck.state.epochs_done();
    assert!(epochs >= 1);
    assert_eq!(
        lines(&d.join("m.jsonl")),
        epochs,
        "metrics of every completed epoch"
    );
    assert!(
        image::open(d.join("c.png")).is_ok(),
        "the plot so far is written"
    );
}

#[test]
fn sigint_stops_after_the_batch_and_saves_everything() {
    interrupted_run_saves_and_says_how_to_resume("-INT");
}

#[test]
fn sigterm_is_handled_like_ctrl_c() {
    interrupted_run_saves_and_says_how_to_resume("-TERM");
}

#[test]
fn a_second_interrupt_exits_at_once() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    // Full-batch steps of a wide network are slow, so the first interrupt is still waiting
    // for its batch when the second arrives.
    let config = common::repo().join("configs/mnist_300x300.toml");
    let child = common::backprop()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--hidden",
            "1000,1000",
            "--batch-size",
            "60000",
            "--epochs",
            "5",
            "--threads",
            "1",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "-INT");
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("second interrupt: exiting now"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn kill_9_never_leaves_a_corrupt_checkpoint_or_metrics_file() {
    let _guard = common::training_lock();
    let data = tempfile::tempdir().unwrap();
    common::write_band_dataset(data.path(), 8, 3, 600, 100);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = common::write_config(
        d,
        "fast.toml",
        &format!(
            "[data]\ndir = \"{}\"\n[model]\nhidden = [256, 256]\n[train]\nepochs = 100000\nbatch_size = 50\n\
             [output]\nsave = \"ck.safetensors\"\ncheckpoint_every = 1\nmetrics = \"m.jsonl\"\ncsv = \"m.csv\"\n",
            data.path().display()
        ),
    );
    let mut kills = 0;
    for round in 0..12u64 {
        let child = common::backprop()
            .args([
                "--config",
                config.to_str().unwrap(),
                "--quiet",
                "--threads",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill at scattered moments, most of them while files are being rewritten.
        std::thread::sleep(Duration::from_millis(150 + (round * 37) % 200));
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        if d.join("ck.safetensors").exists() {
            let ck = backprop::output::checkpoint::load(&d.join("ck.safetensors"))
                .unwrap_or_else(|e| panic!("round {round}: corrupt checkpoint: {e:#}"));
            assert!(ck.state.epochs_done() >= 1);
        }
        if let Ok(text) = std::fs::read_to_string(d.join("m.jsonl")) {
            for line in text.lines() {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("round {round}: broken metrics line {line}: {e}"));
            }
        }
        if let Ok(text) = std::fs::read_to_string(d.join("m.csv")) {
            assert!(text.starts_with("epoch,lr,"), "round {round}");
            assert!(text.ends_with('\n'), "round {round}: a whole file");
        }
    }
    assert_eq!(kills, 12);
    assert!(
        d.join("ck.safetensors").exists(),
        "some checkpoint was completed"
    );
}

/// A fresh copy of the vendored MNIST `.gz` files (no caches yet).
fn mnist_gz_copy() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    for name in backprop::data::STANDARD_NAMES {
        let gz = format!("{name}.gz");
        std::fs::copy(common::mnist_dir().join(&gz), data.path().join(&gz)).unwrap();
    }
    data
}

/// Starts a one-epoch run of a tiny network on the data folder `data`.
fn spawn_tiny_run(data: &Path) -> Child {
    let config = common::repo().join("configs/mnist_300x300.toml");
    common::backprop()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .args([
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--quiet",
            "--threads",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn kill_9_during_decompression_never_leaves_a_bad_cache() {
    let _guard = common::training_lock();
    let data = mnist_gz_copy();
    for delay in [5u64, 30, 60, 100, 150, 250] {
        let mut child = spawn_tiny_run(data.path());
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        let cache = data.path().join("train-images-idx3-ubyte.backprop-cache");
        if let Ok(meta) = std::fs::metadata(&cache) {
            assert_eq!(
                meta.len(),
                47_040_016,
                "after a kill at {delay} ms the cache is whole"
            );
        }
    }
    let out = spawn_tiny_run(data.path()).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn two_runs_on_the_same_gz_dataset_at_once_both_succeed() {
    let _guard = common::training_lock();
    let data = mnist_gz_copy();
    let spawn = || spawn_tiny_run(data.path());
    let (a, b) = (spawn(), spawn());
    for out in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert!(common::stdout(&out).contains("test accuracy"));
    }
    let leftovers: Vec<String> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_read_only_data_folder_caches_in_the_user_cache() {
    use std::os::unix::fs::PermissionsExt;
    let _guard = common::training_lock();
    let data = tempfile::tempdir().unwrap();
    common::write_band_dataset(data.path(), 6, 2, 100, 20);
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let before: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let config = common::repo().join("configs/mnist_300x300.toml");
    let out = common::backprop()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.path().to_str().unwrap(),
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--quiet",
        ])
        .env("XDG_CACHE_HOME", cache.path())
        .output()
        .unwrap();
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let after: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "nothing written into the read-only folder");
    let cached: Vec<String> = std::fs::read_dir(cache.path().join("backprop"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 2, "{cached:?}");
    assert!(cached
        .iter()
        .any(|n| n.ends_with("-train-images-idx3-ubyte.backprop-cache")));
}

/// A memory figure of this process in kB from /proc (`RssAnon`: heap and stacks;
/// `RssFile`: mapped file pages, which the kernel may drop and re-read at will).
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_dataset_larger_than_ram_is_mapped_not_loaded() {
    use backprop::data::{load_idx_sets, InputTransform};
    use backprop::optim::{Hyper, Optimizer};
    let _guard = common::training_lock();
    // 40 million 28x28 images: 31 GB, more than this machine's RAM. Sparse files: they cost
    // no disk, and read as zeros.
    let dir = tempfile::tempdir().unwrap();
    let count: u32 = 40_000_000;
    let sparse = |name: &str, dims: &[u32], item: u64| {
        let path = dir.path().join(name);
        let header = backprop::data::idx::encode(dims, &[]);
        std::fs::write(&path, &header).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(header.len() as u64 + u64::from(count) * item)
            .unwrap();
        path
    };
    let paths = [
        sparse("train-images-idx3-ubyte", &[count, 28, 28], 784),
        sparse("train-labels-idx1-ubyte", &[count], 1),
        sparse("t10k-images-idx3-ubyte", &[count, 28, 28], 784),
        sparse("t10k-labels-idx1-ubyte", &[count], 1),
    ];
    let before = status_kb("RssAnon:");
    let (train, _) = load_idx_sets(&paths, Some(10), &Default::default()).unwrap();
    assert_eq!(train.len(), count as usize);
    let text = "[data]\ndir = \"x\"\n[model]\nhidden = [32]\n";
    let loaded = common::loaded(text, dir.path());
    let arch = backprop::commands::experiment::architecture(&loaded, &train).unwrap();
    let mut net =
        backprop::model::Network::initialised(arch, backprop::model::init::Init::Auto, 0.0, 1);
    let mut opt = Optimizer::new(Hyper::default(), &net.tensors);
    let mut work = backprop::train::StepBuffers::new(&net, &train, 64, false);
    let transform = InputTransform::new(1.0 / 255.0, 0.0, 1.0);
    // Minibatches from all over the file, as a shuffled epoch would take them. (Each row is a
    // page fault on a cold file, slow on some virtual machines: keep the count modest.)
    for step in 0..20usize {
        let rows: Vec<usize> = (0..64)
            .map(|i| (step * 7_919_993 + i * 624_999) % count as usize)
            .collect();
        let batch = backprop::train::Batch {
            data: &train,
            transform: &transform,
            indices: &rows,
        };
        let score = work.step(&mut net, &mut opt, batch, 0.01, false);
        assert!(score.loss_sum.is_finite());
    }
    let grown_mb = status_kb("RssAnon:").saturating_sub(before) / 1024;
    let mapped_mb = status_kb("RssFile:") / 1024;
    eprintln!(
        "heap grew by {grown_mb} MB for a 31 GB dataset; {mapped_mb} MB of mapped pages resident"
    );
    assert!(grown_mb < 50, "{grown_mb} MB");
}
