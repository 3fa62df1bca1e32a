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
    let ck = backprop::checkpoint::load(&d.join("ck.safetensors")).unwrap();
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
            let ck = backprop::checkpoint::load(&d.join("ck.safetensors"))
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

#[test]
fn kill_9_during_decompression_never_leaves_a_bad_cache() {
    let _guard = common::training_lock();
    let data = tempfile::tempdir().unwrap();
    for name in backprop::data::STANDARD_NAMES {
        let gz = format!("{name}.gz");
        std::fs::copy(common::mnist_dir().join(&gz), data.path().join(&gz)).unwrap();
    }
    let config = common::repo().join("configs/mnist_300x300.toml");
    let run = || {
        common::backprop()
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
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    for delay in [5u64, 30, 60, 100, 150, 250] {
        let mut child = run();
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
    let out = run().wait_with_output().unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn two_runs_on_the_same_gz_dataset_at_once_both_succeed() {
    let _guard = common::training_lock();
    let data = tempfile::tempdir().unwrap();
    for name in backprop::data::STANDARD_NAMES {
        let gz = format!("{name}.gz");
        std::fs::copy(common::mnist_dir().join(&gz), data.path().join(&gz)).unwrap();
    }
    let config = common::repo().join("configs/mnist_300x300.toml");
    let spawn = || {
        common::backprop()
            .args([
                "--config",
                config.to_str().unwrap(),
                "--data-dir",
                data.path().to_str().unwrap(),
                "--hidden",
                "16",
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
    };
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
