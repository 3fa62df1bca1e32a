//! Every kind of bad input ends in exit status 1 and a message that names the file (and the
//! field, line or byte offset) and what was expected; never a panic, and nothing the user had
//! is changed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            files.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    files
}

struct Case {
    /// Folder with the user's data (a valid 4x4 two-class set, before `mutate`).
    data: tempfile::TempDir,
    /// Folder with the config and a precious checkpoint.
    work: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        let data = tempfile::tempdir().unwrap();
        common::write_band_dataset(data.path(), 4, 2, 40, 10);
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("model.safetensors"), b"precious").unwrap();
        Case { data, work }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.data.path().join(name)
    }

    /// Trains with `config` (the data folder substituted for `DATA`) and checks the failure.
    fn fails(&self, config: &str, needles: &[&str]) {
        self.fails_as(None, config, needles)
    }

    /// As [`Case::fails`], run as user `uid` when given.
    fn fails_as(&self, uid: Option<u32>, config: &str, needles: &[&str]) {
        let before_data = snapshot(self.data.path());
        let before_work = snapshot(self.work.path());
        let text = config.replace("DATA", &self.data.path().display().to_string());
        let cfg = common::write_config(self.work.path(), "run.toml", &text);
        let save = self.work.path().join("model.safetensors");
        let mut cmd = common::backprop();
        cmd.args([
            "--config",
            cfg.to_str().unwrap(),
            "--save",
            save.to_str().unwrap(),
            "--quiet",
        ]);
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid).env("HOME", "/nonexistent");
        }
        let out = cmd.output().expect("the binary runs");
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        for n in needles {
            assert!(err.contains(n), "expected `{n}` in: {err}");
        }
        // The user's files are untouched; the only new files are complete caches.
        let after = snapshot(self.data.path());
        for (p, bytes) in &before_data {
            assert!(after.get(p) == Some(bytes), "{} changed", p.display());
        }
        for p in after.keys().filter(|p| !before_data.contains_key(*p)) {
            let name = p.file_name().unwrap().to_string_lossy();
            assert!(
                name.ends_with(".backprop-cache") && !name.starts_with('.'),
                "stray {name}"
            );
        }
        let mut work_after = snapshot(self.work.path());
        work_after.remove(&cfg);
        let mut work_before = before_work;
        work_before.remove(&cfg);
        assert_eq!(
            work_after, work_before,
            "the checkpoint folder is unchanged"
        );
    }

    fn fails_with_dir(&self, needles: &[&str]) {
        self.fails("[data]\ndir = \"DATA\"\n[model]\nhidden = [4]\n", needles);
    }
}

const IMAGES: &str = "t10k-images-idx3-ubyte";
const LABELS: &str = "t10k-labels-idx1-ubyte";

#[test]
fn idx_empty_file() {
    let c = Case::new();
    std::fs::write(c.file(IMAGES), b"").unwrap();
    c.fails_with_dir(&[IMAGES, "is empty", "expected an IDX file"]);
}

#[test]
fn idx_shorter_than_its_header() {
    let c = Case::new();
    std::fs::write(c.file(IMAGES), [0, 0, 8, 3, 0, 0, 0]).unwrap();
    c.fails_with_dir(&[
        IMAGES,
        "7 bytes long, shorter than its own IDX header (16 bytes)",
    ]);
}

#[test]
fn idx_wrong_magic() {
    let c = Case::new();
    std::fs::write(c.file(IMAGES), b"PK\x03\x04 not idx at all").unwrap();
    c.fails_with_dir(&[IMAGES, "bad magic at byte 0: found 50 4B, expected 00 00"]);
}

#[test]
fn idx_element_type_other_than_unsigned_byte() {
    let c = Case::new();
    let mut bytes = std::fs::read(c.file(IMAGES)).unwrap();
    bytes[2] = 0x0D;
    std::fs::write(c.file(IMAGES), bytes).unwrap();
    c.fails_with_dir(&[
        IMAGES,
        "offset 2",
        "0x0D (f32, a valid IDX type)",
        "0x08 unsigned byte",
        "0x0E f64",
        "only 0x08 unsigned byte is supported",
    ]);
}

#[test]
fn idx_rank_zero() {
    let c = Case::new();
    std::fs::write(c.file(IMAGES), [0, 0, 8, 0]).unwrap();
    c.fails_with_dir(&[IMAGES, "rank byte (offset 3) is 0"]);
}

#[test]
fn idx_a_dimension_of_zero() {
    let c = Case::new();
    common::write_idx(&c.file(IMAGES), &[10, 0, 4], &[]);
    c.fails_with_dir(&[IMAGES, "dimension 1 (header offset 8) is 0"]);
}

#[test]
fn idx_counts_that_multiply_past_the_file_or_usize() {
    let c = Case::new();
    common::write_idx(&c.file(IMAGES), &[u32::MAX, u32::MAX, u32::MAX], &[0; 160]);
    c.fails_with_dir(&[
        IMAGES,
        "4294967295 x 4294967295 x 4294967295",
        "160 after the header",
    ]);
}

#[test]
fn idx_payload_longer_than_the_header_says() {
    let c = Case::new();
    common::write_idx(&c.file(IMAGES), &[10, 4, 4], &[0; 170]);
    c.fails_with_dir(&[IMAGES, "160 data bytes", "has 170", "trailing bytes"]);
}

#[test]
fn idx_images_and_labels_of_different_counts() {
    let c = Case::new();
    common::write_idx(&c.file(LABELS), &[12], &[0; 12]);
    c.fails_with_dir(&[IMAGES, LABELS, "10 items", "12 labels", "same count"]);
}

#[test]
fn idx_labels_above_the_class_count() {
    let c = Case::new();
    let mut labels = [0u8; 10];
    labels[3] = 9;
    common::write_idx(&c.file(LABELS), &[10], &labels);
    c.fails(
        "[data]\ndir = \"DATA\"\nclasses = 2\n",
        &[
            LABELS,
            "label 9 at item 3 (byte offset 11)",
            "data.classes = 2",
        ],
    );
}

#[test]
fn idx_truncated_gzip() {
    let c = Case::new();
    let p = c.file("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() * 2 / 3]).unwrap();
    c.fails_with_dir(&["train-images-idx3-ubyte.gz", "corrupt or truncated gzip"]);
}

#[test]
fn idx_a_directory_where_a_file_is_expected() {
    let c = Case::new();
    std::fs::create_dir(c.data.path().join("sub")).unwrap();
    let config = format!(
        "[data]\ntrain_images = \"DATA/sub\"\ntrain_labels = \"DATA/train-labels-idx1-ubyte.gz\"\n\
         test_images = \"DATA/{IMAGES}\"\ntest_labels = \"DATA/{LABELS}\"\n"
    );
    c.fails(&config, &["sub: is a directory, expected an IDX file"]);
}

#[test]
fn idx_a_missing_path() {
    let c = Case::new();
    let config = format!(
        "[data]\ntrain_images = \"DATA/nope.gz\"\ntrain_labels = \"DATA/train-labels-idx1-ubyte.gz\"\n\
         test_images = \"DATA/{IMAGES}\"\ntest_labels = \"DATA/{LABELS}\"\n"
    );
    c.fails(
        &config,
        &["nope.gz: cannot read", "No such file or directory"],
    );
}

#[test]
fn idx_a_file_without_read_permission() {
    use std::os::unix::fs::PermissionsExt;
    let c = Case::new();
    let p = c.file(IMAGES);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads files whatever their mode: then the run is made as `nobody`.
    let as_root = std::fs::read(&p).is_ok();
    if as_root {
        for dir in [c.data.path(), c.work.path()] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
    }
    c.fails_as(
        as_root.then_some(65534),
        GOOD,
        &[IMAGES, "cannot read", "Permission denied"],
    );
}

const GOOD: &str = "[data]\ndir = \"DATA\"\n[model]\nhidden = [4]\n";

#[test]
fn toml_syntax_error_with_line_and_column() {
    Case::new().fails(
        "[data]\ndir = \"DATA\"\n[model\nhidden = [4]\n",
        &["run.toml", "line 3, column 7"],
    );
}

#[test]
fn toml_unknown_key_wrong_type_and_negative_sizes() {
    let c = Case::new();
    c.fails(
        &format!("{GOOD}[train]\nepoch = 3\n"),
        &[
            "run.toml",
            "line 6, column 1",
            "unknown field `epoch`",
            "`epochs`",
        ],
    );
    c.fails(
        &format!("{GOOD}[train]\nepochs = true\n"),
        &["line 6, column 10", "invalid type: boolean `true`"],
    );
    c.fails(
        "[data]\ndir = \"DATA\"\n[model]\nhidden = [-4]\n",
        &["line 4, column 11", "invalid value: integer `-4`"],
    );
    c.fails(
        &format!("{GOOD}[train]\nbatch_size = 0\n"),
        &[
            "invalid config",
            "run.toml",
            "train.batch_size: must be at least 1",
        ],
    );
    c.fails(
        "[data]\ndir = \"DATA\"\n[model]\nhidden = [0]\n",
        &["model.hidden: layer 0 has width 0"],
    );
}

#[test]
fn toml_learning_rates_at_or_below_zero() {
    let c = Case::new();
    c.fails(
        &format!("{GOOD}[optimizer]\nlr = 0\n"),
        &["optimizer.lr: must be positive, got 0"],
    );
    c.fails(
        &format!("{GOOD}[optimizer]\nlr = 0.0\n"),
        &["optimizer.lr: must be positive, got 0"],
    );
    c.fails(
        &format!("{GOOD}[optimizer]\nlr = -0.1\n"),
        &["optimizer.lr: must be positive, got -0.1"],
    );
}

#[test]
fn toml_unknown_activation_or_optimizer_lists_the_known_ones() {
    let c = Case::new();
    c.fails(
        "[data]\ndir = \"DATA\"\n[model]\nactivation = \"gelu\"\n",
        &[
            "line 4, column 14",
            "unknown variant `gelu`",
            "expected one of `relu`, `leaky_relu`, `sigmoid`, `tanh`, `identity`",
        ],
    );
    c.fails(
        &format!("{GOOD}[optimizer]\nkind = \"rmsprop\"\n"),
        &[
            "unknown variant `rmsprop`",
            "`sgd`, `momentum`, `nesterov`, `adam`, `adamw`",
        ],
    );
}

#[test]
fn toml_layer_sizes_and_paths_that_do_not_fit_the_data() {
    let c = Case::new();
    c.fails(
        "[data]\ndir = \"DATA\"\ninput_width = 784\n",
        &[
            "data.input_width = 784",
            "16 features per sample (shape [4, 4])",
        ],
    );
    c.fails(
        "[data]\ndir = \"DATA/missing\"\n",
        &["data folder", "missing does not exist"],
    );
    c.fails(
        "[data]\ndir = \"DATA\"\n[model]\nloss = \"sigmoid_binary_cross_entropy\"\nhidden = [3]\n[data.sine]\n",
        &["give exactly one source"],
    );
}

#[test]
fn a_batch_larger_than_the_dataset_is_clamped_with_a_warning() {
    let c = Case::new();
    let cfg = common::write_config(
        c.work.path(),
        "big.toml",
        &format!(
            "[data]\ndir = \"{}\"\n[train]\nbatch_size = 1000\nepochs = 1\n",
            c.data.path().display()
        ),
    );
    let out = common::run(&["--config", cfg.to_str().unwrap()]);
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("train.batch_size = 1000 is larger than the 40 training samples; using 40"),
        "{err}"
    );
    assert!(common::stdout(&out).contains("batch 40,"));
}

fn csv_case(train: &str, needles: &[&str]) {
    let c = Case::new();
    std::fs::write(c.file("t.csv"), train).unwrap();
    c.fails(
        "[data.csv]\ntrain = \"DATA/t.csv\"\ntarget = [\"y\"]\n[model]\nloss = \"mean_squared_error\"\n",
        needles,
    );
}

#[test]
fn csv_ragged_rows_non_numbers_and_missing_targets() {
    csv_case(
        "a,b,y\n1,2,3\n4,5\n",
        &["t.csv: line 3: 2 fields, expected 3"],
    );
    csv_case(
        "a,b,y\n1,2,3\n4,five,6\n",
        &["t.csv: line 3, column `b`: `five` is not a number"],
    );
    csv_case(
        "a,b,z\n1,2,3\n",
        &["t.csv: no target column `y`; the header has a, b, z"],
    );
}

// Runs through `--data-dir`, as a user overriding the config's data would.

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
