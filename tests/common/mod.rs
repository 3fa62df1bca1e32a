//! Helpers shared by the integration tests: paths, fixtures and running the binary.
#![allow(dead_code)]

use backprop::config::{self, Loaded};
use backprop::data::idx;
use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn mnist_dir() -> PathBuf {
    repo().join("data/mnist")
}

/// Fashion-MNIST from `../shared` or the Debian package, if present.
pub fn fashion_dir() -> Option<PathBuf> {
    [
        repo().join("../shared/datasets/fashion-mnist"),
        PathBuf::from("/usr/share/datasets/fashion-mnist"),
    ]
    .into_iter()
    .find(|d| {
        d.join("train-images-idx3-ubyte.gz").exists() || d.join("train-images-idx3-ubyte").exists()
    })
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes an IDX file of unsigned bytes (gzipped if the name ends in `.gz`).
pub fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    let bytes = idx::encode(dims, data);
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        gzip(&bytes)
    } else {
        bytes
    };
    std::fs::write(path, bytes).unwrap();
}

/// A learnable image dataset: `side x side` images, `classes` classes, the class drawn as a
/// bright band at a class-specific row, plus noise. Written with the standard names.
pub fn write_band_dataset(dir: &Path, side: usize, classes: usize, train: usize, test: usize) {
    let mut state = 12345u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut make = |n: usize| {
        let mut images = Vec::with_capacity(n * side * side);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = i % classes;
            labels.push(class as u8);
            let band = class * side / classes;
            for r in 0..side {
                for _ in 0..side {
                    let noise = (next() % 90) as u8;
                    images.push(if r == band { 255 - noise } else { noise });
                }
            }
        }
        (images, labels)
    };
    let (ti, tl) = make(train);
    let (vi, vl) = make(test);
    let (s, n, t) = (side as u32, train as u32, test as u32);
    write_idx(&dir.join("train-images-idx3-ubyte.gz"), &[n, s, s], &ti);
    write_idx(&dir.join("train-labels-idx1-ubyte.gz"), &[n], &tl);
    write_idx(&dir.join("t10k-images-idx3-ubyte"), &[t, s, s], &vi);
    write_idx(&dir.join("t10k-labels-idx1-ubyte"), &[t], &vl);
}

pub fn backprop() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backprop"));
    cmd.env_remove("NO_COLOR");
    cmd
}

pub fn run(args: &[&str]) -> Output {
    backprop().args(args).output().expect("the binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A config from TOML text, as if its file were in `dir`.
pub fn loaded(text: &str, dir: &Path) -> Loaded {
    let config = config::parse(text).unwrap_or_else(|e| panic!("{e}"));
    config.validate().unwrap();
    Loaded {
        config,
        path: dir.join("test.toml"),
        base_dir: dir.to_path_buf(),
    }
}

/// Writes `text` as a config file in `dir`.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Serialises the tests that train for real: they each want both cores.
pub fn training_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A test's prerequisite (data, Python, a tool) is missing. Under `CI=true`, where `.ci/run`
/// installs everything, that is a failure; elsewhere the test says loudly that it did not run.
/// Returns so the caller can `return` without reporting anything as checked.
pub fn missing_prerequisite(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("prerequisite missing under CI=true: {what}");
    }
    eprintln!("\n*** NOT RUN: {what} (this test checked nothing) ***\n");
}

/// The Python that has the test tools: `.ci/run`'s virtual environment, else `python3`.
pub fn python() -> PathBuf {
    let venv = repo().join("target/venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}
