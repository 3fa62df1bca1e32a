//! Checkpoints: safetensors files that resume bit for bit and load in Python.

mod common;

use std::path::Path;

/// Metrics lines without the timing fields, which legitimately differ between runs.
fn figures(metrics: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            for k in [
                "seconds",
                "eval_seconds",
                "samples_per_sec",
                "elapsed",
                "time_to_98",
            ] {
                o.remove(k);
            }
            v
        })
        .collect()
}

/// A run whose schedule does not depend on `--epochs` (a cosine fixed at 4 epochs), so
/// that a run cut short and resumed can match an uninterrupted one.
fn resumable_config(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        "seed = 5\n[data]\ndir = \"{}\"\nmean = 0.1307\nstd = 0.3081\n[model]\nhidden = [64, 32]\ndropout = 0.2\n\
         [train]\nbatch_size = 100\n[optimizer]\nkind = \"adam\"\nlr = 0.002\n\
         [schedule]\nkind = \"cosine\"\nepochs = 4\n",
        common::mnist_dir().display()
    );
    common::write_config(dir, "resumable.toml", &text)
}

fn train(dir: &Path, extra: &[&str]) -> std::process::Output {
    let config = common::repo().join("configs/mnist_300x300.toml");
    train_with(dir, &config, extra)
}

fn train_with(dir: &Path, config: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--hidden",
        "64,32",
        "--threads",
        "2",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let out = common::backprop()
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    out
}

#[test]
fn two_epochs_then_one_more_equals_three_uninterrupted() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = resumable_config(d);
    train_with(
        d,
        &config,
        &["--epochs", "3", "--metrics-out", "full.jsonl"],
    );
    train_with(
        d,
        &config,
        &[
            "--epochs",
            "2",
            "--save",
            "ck.safetensors",
            "--metrics-out",
            "part.jsonl",
        ],
    );
    // Resume from the checkpoint alone: it holds the config that trained it.
    let resumed = common::backprop()
        .args([
            "--resume",
            "ck.safetensors",
            "--epochs",
            "3",
            "--metrics-out",
            "resumed.jsonl",
            "--quiet",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", common::stderr(&resumed));
    let full = figures(&d.join("full.jsonl"));
    let resumed = figures(&d.join("resumed.jsonl"));
    assert_eq!(full.len(), 3);
    assert_eq!(resumed, full, "bit-identical figures, epochs 1-3");
    assert_eq!(figures(&d.join("part.jsonl"))[..], full[..2]);
}

#[test]
fn resuming_a_different_architecture_is_refused() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train(d, &["--epochs", "1", "--save", "ck.safetensors"]);
    let config = common::repo().join("configs/mnist_300x300.toml");
    let out = common::backprop()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--resume",
            "ck.safetensors",
            "--epochs",
            "2",
            "--hidden",
            "10",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(err.contains("ck.safetensors holds a 784-64-32-10"), "{err}");
    assert!(err.contains("784-10-10"), "{err}");
}

#[test]
fn checkpoints_name_tensors_by_layer_and_hold_the_run() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train(d, &["--epochs", "1", "--save", "ck.safetensors"]);
    let ck = backprop::output::checkpoint::load(&d.join("ck.safetensors")).unwrap();
    let names: Vec<&str> = ck
        .state
        .net
        .tensors
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "layer0.weight",
            "layer0.bias",
            "layer1.weight",
            "layer1.bias",
            "layer2.weight",
            "layer2.bias"
        ]
    );
    assert_eq!(ck.state.epochs_done(), 1);
    assert_eq!(ck.seed, 42);
    assert_eq!(
        ck.state.optimizer.state.len(),
        2,
        "adam keeps its two moments"
    );
    assert!(ck.state.optimizer.state[0].iter().any(|&v| v != 0.0));
    let bytes = std::fs::read(d.join("ck.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("layer0.weight").unwrap().shape(), [784, 64]);
    assert_eq!(st.tensor("layer2.bias").unwrap().shape(), [10]);
    assert_eq!(
        st.tensor("optimizer.m.layer1.weight").unwrap().shape(),
        [64, 32]
    );
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert!(
        meta["config"].contains("hidden = [64, 32]"),
        "{}",
        meta["config"]
    );
    assert_eq!(meta["epoch"], "1");
}

#[test]
fn python_with_numpy_and_safetensors_gets_the_same_accuracy() {
    let probe = std::process::Command::new(common::python())
        .args(["-c", "import numpy, safetensors"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return common::missing_prerequisite(
            "Python with numpy and safetensors (.ci/run makes target/venv)",
        );
    }
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train(d, &["--epochs", "1", "--save", "ck.safetensors"]);
    let ck = d.join("ck.safetensors");
    let eval = common::run(&["eval", "--model", ck.to_str().unwrap(), "--json"]);
    assert!(eval.status.success(), "{}", common::stderr(&eval));
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    let rust_correct: u64 = (0..10)
        .map(|c| report["confusion"][c][c].as_u64().unwrap())
        .sum();

    let py = std::process::Command::new(common::python())
        .arg(common::repo().join("scripts/load_checkpoint.py"))
        .arg(&ck)
        .arg("--data-dir")
        .arg(common::mnist_dir())
        .output()
        .unwrap();
    let text = common::stdout(&py);
    assert!(py.status.success(), "{}{text}", common::stderr(&py));
    let py_correct: u64 = text
        .split('(')
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {text}"));
    // Same weights, same inputs; float32 sums in another order may flip a borderline sample.
    assert!(
        rust_correct.abs_diff(py_correct) <= 2,
        "rust {rust_correct} vs python {py_correct}"
    );
    assert!(rust_correct > 9000);
}
