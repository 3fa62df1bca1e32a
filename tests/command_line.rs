//! The command line and what it refuses: bad flag values name the flag (exit 2), runs that
//! would silently do nonsense are refused with the fix, each command answers an interrupt
//! in its own terms (exit 130), and files agree with each other digit for digit.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

const TINY: &str = "seed = 1\n[data]\ndir = \"data\"\n[model]\nhidden = [8]\n\
                    [train]\nepochs = 1\nbatch_size = 8\n";

fn workspace(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    common::write_band_dataset(&dir.path().join("data"), 4, 2, 40, 10);
    common::write_config(dir.path(), "run.toml", config);
    dir
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    common::backprop()
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn bad_flag_values_name_the_flag_with_usage_status() {
    let dir = workspace(TINY);
    for (flag, value) in [
        ("--threads", "0"),
        ("--threads", "100000"),
        ("--batch-size", "0"),
        ("--epochs", "0"),
        ("--lr", "inf"),
        ("--lr", "-1"),
        ("--hidden", "3,0"),
    ] {
        let out = run_in(dir.path(), &["--config", "run.toml", flag, value]);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag), "{flag} {value}: {err}");
        assert!(!err.contains("invalid config"), "{err}");
    }
    for (flag, value) in [
        ("--per-tensor", "0"),
        ("--threshold", "nan"),
        ("--inputs", "0"),
    ] {
        let out = run_in(
            dir.path(),
            &["gradcheck", "--config", "run.toml", flag, value],
        );
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(common::stderr(&out).contains(flag));
    }
}

#[test]
fn no_arguments_is_a_usage_error() {
    let out = common::run(&[]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("Usage:") && err.contains("--config"), "{err}");
}

#[test]
fn an_empty_hidden_list_means_no_hidden_layers() {
    let dir = workspace(TINY);
    let out = run_in(dir.path(), &["--config", "run.toml", "--hidden", ""]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stdout(&out).contains(": 16-2 ("),
        "{}",
        common::stdout(&out)
    );
}

#[test]
fn runs_that_would_do_nonsense_are_refused() {
    let cases = [
        (
            "[schedule]\nkind = \"cosine\"\nepochs = 0\n",
            "schedule.epochs: must be at least 1",
        ),
        (
            "[schedule]\nwarmup_epochs = 3\n",
            "schedule.warmup_epochs: is 3, but the run has 1 epoch(s)",
        ),
    ];
    for (extra, needle) in cases {
        let dir = workspace(&format!("{TINY}{extra}"));
        let out = run_in(dir.path(), &["--config", "run.toml"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            common::stderr(&out).contains(needle),
            "{}",
            common::stderr(&out)
        );
    }
    let dir =
        workspace(&TINY.replace("dir = \"data\"", "dir = \"data\"\nvalidation_split = 0.001"));
    let out = run_in(dir.path(), &["--config", "run.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("rounds to 0 validation samples"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn a_stray_label_far_above_the_rest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..30)
        .map(|i| format!("{i},{}\n", [0, 1, 200][i % 3]))
        .collect();
    std::fs::write(dir.path().join("t.csv"), format!("x,y\n{rows}")).unwrap();
    let cfg = "[data.csv]\ntrain = \"t.csv\"\ntarget = [\"y\"]\nclassification = true\n\
               [train]\nepochs = 1\n";
    common::write_config(dir.path(), "run.toml", cfg);
    let out = run_in(dir.path(), &["--config", "run.toml"]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("201 outputs, but only 3 distinct labels"),
        "{err}"
    );
    assert!(err.contains("data.classes = 201"), "{err}");
}

#[test]
fn non_finite_csv_cells_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..20).map(|i| format!("{i},{}\n", i % 2)).collect();
    std::fs::write(dir.path().join("t.csv"), format!("x,y\n{rows}nan,1\n")).unwrap();
    common::write_config(
        dir.path(),
        "run.toml",
        "[data.csv]\ntrain = \"t.csv\"\ntarget = [\"y\"]\n[model]\nloss = \"mean_squared_error\"\n",
    );
    let out = run_in(dir.path(), &["--config", "run.toml"]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("t.csv: line 22, column `x`: `nan` is not a finite number"),
        "{err}"
    );
}

/// A one-epoch model of the 4x4 band data, saved as `m.safetensors`.
fn model(dir: &Path) {
    let out = run_in(
        dir,
        &["--config", "run.toml", "--save", "m.safetensors", "--quiet"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn predict_refuses_gifs_and_tiny_images() {
    let dir = workspace(TINY);
    let d = dir.path();
    model(d);
    std::fs::write(d.join("x.gif"), b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap();
    let out = run_in(d, &["predict", "--model", "m.safetensors", "x.gif"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stderr(&out).contains("is a GIF image, not a PNG or JPEG"));
    image::GrayImage::new(1, 1).save(d.join("dot.png")).unwrap();
    let out = run_in(d, &["predict", "--model", "m.safetensors", "dot.png"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("the image is 1x1 pixels, too small"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn predict_csv_out_on_a_regression_model_succeeds_without_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::write_config(
        d,
        "run.toml",
        "[data.sine]\ntrain_samples = 64\ntest_samples = 16\n[model]\nhidden = [8]\n\
         loss = \"mean_squared_error\"\n[train]\nepochs = 1\n",
    );
    model(d);
    let out = run_in(
        d,
        &[
            "predict",
            "--model",
            "m.safetensors",
            "--csv-out",
            "fit.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(std::fs::read_to_string(d.join("fit.csv"))
        .unwrap()
        .starts_with("x,target,prediction"));
}

/// Starts `args` in `dir`, waits `after`, sends SIGINT, and returns the output.
fn interrupted(dir: &Path, args: &[&str], after: Duration) -> Output {
    let child = common::backprop()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    // SAFETY: kill on a child we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait_with_output().unwrap()
}

#[test]
fn predict_eval_and_bench_answer_an_interrupt_with_130_in_their_own_terms() {
    let _guard = common::training_lock();
    let dir = workspace(TINY);
    let d = dir.path();
    model(d);
    // An IDX file of 4x4 items big enough to take seconds to predict.
    common::write_idx(&d.join("many"), &[3_000_000, 4, 4], &vec![7u8; 48_000_000]);
    let out = interrupted(
        d,
        &["predict", "--model", "m.safetensors", "many"],
        Duration::from_millis(1500),
    );
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted") && !err.contains("saving"),
        "{err}"
    );
    let cfg = "seed = 1\n[data]\ndir = \"data\"\n[model]\nhidden = [8]\n[train]\nepochs = 100000\nbatch_size = 1\n";
    common::write_config(d, "long.toml", cfg);
    let out = interrupted(
        d,
        &["bench", "--config", "long.toml", "--threads", "1"],
        Duration::from_millis(1500),
    );
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("no benchmark result"), "{err}");
}

#[test]
fn an_interrupt_before_the_first_epoch_says_nothing_was_saved() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("data")).unwrap();
    common::write_band_dataset(&d.join("data"), 16, 2, 200_000, 10);
    common::write_config(
        d,
        "run.toml",
        "[data]\ndir = \"data\"\n[model]\nhidden = [1024, 1024]\n[train]\nepochs = 2\nbatch_size = 1\n",
    );
    let out = interrupted(
        d,
        &[
            "--config",
            "run.toml",
            "--save",
            "m.safetensors",
            "--threads",
            "1",
            "--quiet",
        ],
        Duration::from_millis(1500),
    );
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("before any epoch completed: nothing was saved"),
        "{err}"
    );
    assert!(!err.contains("kept as it was after epoch 0"), "{err}");
    assert!(!d.join("m.safetensors").exists());
}

#[test]
fn a_resumed_metrics_file_repeats_the_earlier_lines_byte_for_byte() {
    let dir = workspace(&TINY.replace("epochs = 1", "epochs = 2"));
    let d = dir.path();
    let out = run_in(
        d,
        &[
            "--config",
            "run.toml",
            "--save",
            "ck.safetensors",
            "--metrics-out",
            "a.jsonl",
            "--csv-out",
            "a.csv",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let out = run_in(
        d,
        &[
            "--resume",
            "ck.safetensors",
            "--epochs",
            "3",
            "--metrics-out",
            "b.jsonl",
            "--csv-out",
            "b.csv",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    for (a, b) in [("a.jsonl", "b.jsonl"), ("a.csv", "b.csv")] {
        let a = std::fs::read_to_string(d.join(a)).unwrap();
        let b = std::fs::read_to_string(d.join(b)).unwrap();
        assert!(b.starts_with(&a), "{a}\nvs\n{b}");
    }
}

#[test]
fn the_plot_labels_whole_epochs_only() {
    let dir = workspace(&TINY.replace("epochs = 1", "epochs = 3"));
    let out = run_in(
        dir.path(),
        &["--config", "run.toml", "--plot", "c.svg", "--quiet"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let svg = std::fs::read_to_string(dir.path().join("c.svg")).unwrap();
    for label in ["1.5", "2.5", "1.2"] {
        assert!(
            !svg.contains(&format!("\n{label}\n</text>")),
            "fractional epoch {label}"
        );
    }
    assert!(svg.contains("\n2\n</text>"), "epoch 2 labelled");
}

#[test]
fn gradcheck_on_unstandardised_mnist_skips_relu_kinks_instead_of_failing() {
    // The first 12 pixels of MNIST are all 0: with zero biases every first-layer ReLU input
    // sits exactly on the kink, where a central difference averages two slopes.
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[data]\ndir = \"{}\"\n[model]\nhidden = [32, 32]\n",
        common::mnist_dir().display()
    );
    let cfg = common::write_config(dir.path(), "g.toml", &cfg);
    let out = common::run(&[
        "gradcheck",
        "--config",
        cfg.to_str().unwrap(),
        "--inputs",
        "12",
    ]);
    let text = common::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", common::stderr(&out));
    assert!(
        text.contains("entries skipped: perturbing them moved a ReLU input"),
        "{text}"
    );
    assert!(text.contains("OK: worst relative error"), "{text}");
}
