//! Bad input gets a clear error naming the file and what was expected; never a panic.

mod common;

use std::path::Path;

/// A valid 4x4, 2-class dataset in a fresh folder.
fn dataset() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::write_band_dataset(dir.path(), 4, 2, 40, 10);
    dir
}

const CONFIG: &str =
    "[data]\ndir = \"data\"\n[model]\nhidden = [8]\n[train]\nepochs = 1\nbatch_size = 8\n";

/// Runs a 1-epoch training on `data_dir` with the config text; returns (status, stderr).
fn train(data_dir: &Path, config: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), "c.toml", config);
    let out = common::run(&[
        "--config",
        cfg.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--quiet",
    ]);
    let err = common::stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code().unwrap_or(-1), err)
}

fn expect_error(data_dir: &Path, file: &str, needles: &[&str]) {
    let (code, err) = train(data_dir, CONFIG);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(file), "should name {file}: {err}");
    for n in needles {
        assert!(err.contains(n), "should say `{n}`: {err}");
    }
}

#[test]
fn a_valid_dataset_trains() {
    let d = dataset();
    let (code, err) = train(d.path(), CONFIG);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn wrong_magic() {
    let d = dataset();
    let p = d.path().join("t10k-images-idx3-ubyte");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[0] = 0x1f;
    std::fs::write(&p, bytes).unwrap();
    expect_error(
        d.path(),
        "t10k-images-idx3-ubyte",
        &["bad magic", "expected 00 00"],
    );
}

#[test]
fn truncated_payload() {
    let d = dataset();
    let p = d.path().join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
    expect_error(
        d.path(),
        "t10k-images-idx3-ubyte",
        &["10 x 4 x 4 = 160 data bytes", "155", "truncated"],
    );
}

#[test]
fn image_and_label_counts_disagree() {
    let d = dataset();
    common::write_idx(&d.path().join("t10k-labels-idx1-ubyte"), &[9], &[0; 9]);
    expect_error(
        d.path(),
        "t10k-labels-idx1-ubyte",
        &["10 items", "9 labels", "same count"],
    );
}

#[test]
fn a_header_claiming_billions_of_items() {
    let d = dataset();
    common::write_idx(
        &d.path().join("t10k-images-idx3-ubyte"),
        &[4_000_000_000, 4, 4],
        &[0; 160],
    );
    expect_error(
        d.path(),
        "t10k-images-idx3-ubyte",
        &["4000000000 x 4 x 4 = 64000000000 data bytes", "160"],
    );
}

#[test]
fn a_label_beyond_the_configured_classes() {
    let d = dataset();
    let mut labels = vec![0u8; 10];
    labels[6] = 7;
    common::write_idx(&d.path().join("t10k-labels-idx1-ubyte"), &[10], &labels);
    let config = CONFIG.replace("dir = \"data\"", "dir = \"data\"\nclasses = 2");
    let (code, err) = train(d.path(), &config);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("t10k-labels-idx1-ubyte: label 7 at item 6 (byte offset 14)"),
        "{err}"
    );
    assert!(err.contains("data.classes = 2"), "{err}");
}

#[test]
fn corrupt_gzip() {
    let d = dataset();
    let p = d.path().join("train-images-idx3-ubyte.gz");
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 8].fill(0xAA);
    std::fs::write(&p, bytes).unwrap();
    expect_error(
        d.path(),
        "train-images-idx3-ubyte.gz",
        &["corrupt or truncated gzip"],
    );
    // Nothing half-written was left behind as a cache.
    let caches = std::fs::read_dir(d.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("train-images-idx3-ubyte.backprop-cache")
        })
        .count();
    assert_eq!(caches, 0);
}

#[test]
fn a_missing_file_in_the_data_folder() {
    let d = dataset();
    std::fs::remove_file(d.path().join("train-labels-idx1-ubyte.gz")).unwrap();
    expect_error(
        d.path(),
        "train-labels-idx1-ubyte",
        &["has neither", "train-labels-idx1-ubyte.gz"],
    );
}

fn config_error(text: &str, needles: &[&str]) {
    let d = dataset();
    let (code, err) = train(d.path(), text);
    assert_eq!(code, 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "should say `{n}`: {err}");
    }
}

#[test]
fn config_unknown_key_names_line_and_column() {
    config_error(
        "[data]\ndir = \"d\"\n[train]\nepochs = 1\nlearning_rate = 0.1\n",
        &[
            "c.toml",
            "line 5, column 1",
            "unknown field `learning_rate`",
        ],
    );
}

#[test]
fn config_wrong_type_names_line_and_column() {
    config_error(
        "[data]\ndir = \"d\"\n[model]\nhidden = \"300\"\n",
        &[
            "c.toml",
            "line 4, column 10",
            "invalid type: string \"300\", expected a sequence",
        ],
    );
}

#[test]
fn config_file_missing() {
    let out = common::run(&["--config", "/nonexistent/run.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(
        err.contains("cannot read config file /nonexistent/run.toml"),
        "{err}"
    );
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn config_input_width_and_classes_must_match_the_data() {
    config_error(
        &CONFIG.replace("dir = \"data\"", "dir = \"data\"\ninput_width = 784"),
        &["data.input_width = 784", "16 features per sample", "[4, 4]"],
    );
    config_error(
        &CONFIG.replace("dir = \"data\"", "dir = \"data\"\nclasses = 1"),
        &["data.classes: must be at least 2"],
    );
}
