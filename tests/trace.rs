//! `backprop trace`: a recorded step agrees with its f64 recomputation, a changed tensor is
//! found, and the numpy reference (scripts/trace_reference.py) reproduces the step while each
//! planted classic mistake is named by `--compare`.

mod common;

use backprop::eval::trace::compare::Mistake;
use backprop::eval::trace::file;
use std::path::{Path, PathBuf};

/// A tanh network with a square hidden layer (for the wrong-layer mistake), momentum and L2,
/// traced at its third step.
fn record(dir: &Path, f64: bool) -> PathBuf {
    let band = dir.join("band");
    if !band.exists() {
        std::fs::create_dir(&band).unwrap();
        common::write_band_dataset(&band, 8, 4, 200, 40);
    }
    let config = common::write_config(
        dir,
        "run.toml",
        "seed = 5\n[data]\ndir = \"band\"\n[model]\nhidden = [16, 16]\nactivation = \"tanh\"\n\
         init = \"xavier_normal\"\n[train]\nbatch_size = 20\n[optimizer]\nkind = \"momentum\"\n\
         lr = 0.1\nweight_decay = 0.001\n",
    );
    let out = dir.join(if f64 {
        "ours64.safetensors"
    } else {
        "ours.safetensors"
    });
    let mut args = vec!["trace", "--config", config.to_str().unwrap(), "--step", "2"];
    args.extend(["--out", out.to_str().unwrap()]);
    if f64 {
        args.push("--f64");
    }
    let run = common::run(&args);
    assert!(run.status.success(), "{}", common::stderr(&run));
    assert!(
        common::stdout(&run).contains("step 2 (epoch 1, batch 3"),
        "{}",
        common::stdout(&run)
    );
    out
}

fn compare(theirs: &Path, ours: &Path) -> (Option<i32>, String) {
    let out = common::run(&[
        "trace",
        "--compare",
        theirs.to_str().unwrap(),
        "--against",
        ours.to_str().unwrap(),
    ]);
    (
        out.status.code(),
        common::stdout(&out) + &common::stderr(&out),
    )
}

#[test]
fn a_step_agrees_with_its_f64_recomputation_and_a_changed_tensor_is_found() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let ours = record(dir.path(), false);
    let ours64 = record(dir.path(), true);
    let trace = file::load(&ours).unwrap();
    for name in [
        "input",
        "target",
        "layer1.pre",
        "loss",
        "layer0.delta",
        "layer2.bias.grad",
    ] {
        assert!(trace.get(name).is_some(), "{name} missing");
    }
    assert_eq!(trace.get("layer1.weight.grad").unwrap().shape, vec![16, 16]);
    let (code, text) = compare(&ours64, &ours);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("everything compared agrees"), "{text}");
    // One entry of the middle delta off by 1%: found there, at that index.
    let mut changed = file::load(&ours64).unwrap();
    let delta = changed
        .tensors
        .iter_mut()
        .find(|t| t.name == "layer1.delta")
        .unwrap();
    delta.data[21] *= 1.01;
    delta.data[21] += 1e-3;
    let theirs = dir.path().join("theirs.safetensors");
    file::save(&changed, &theirs, true).unwrap();
    let (code, text) = compare(&theirs, &ours);
    assert_eq!(code, Some(5), "{text}");
    assert!(
        text.contains("first disagreement: layer1.delta (20x16)"),
        "{text}"
    );
    assert!(text.contains("at [1, 5]"), "{text}");
}

/// The mistakes of the reference script and what `--compare` must say of each.
fn mistakes() -> Vec<(&'static str, Option<Mistake>)> {
    vec![
        ("none", None),
        (
            "softmax-derivative",
            Some(Mistake::SoftmaxDerivativeOnCrossEntropy),
        ),
        ("summed", Some(Mistake::SummedNotAveraged { batch: 20 })),
        ("transposed", Some(Mistake::Transposed)),
        ("no-bias-gradient", Some(Mistake::MissingBiasGradient)),
        ("sign-flip", Some(Mistake::SignFlip)),
        (
            "derivative-from-z",
            Some(Mistake::DerivativeFromPreActivation { activation: "tanh" }),
        ),
        (
            "wrong-activations",
            Some(Mistake::WrongActivations {
                used: "layer1.out".into(),
                right: "layer0.out".into(),
            }),
        ),
    ]
}

#[test]
fn the_numpy_reference_agrees_and_each_planted_mistake_is_named() {
    let python = common::python();
    let ready = std::process::Command::new(&python)
        .args(["-c", "import numpy, safetensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        return common::missing_prerequisite("numpy and safetensors in target/venv");
    }
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let ours = record(dir.path(), false);
    let script = common::repo().join("scripts/trace_reference.py");
    for (name, expected) in mistakes() {
        let theirs = dir.path().join(format!("{name}.safetensors"));
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg(&ours)
            .args(["--out", theirs.to_str().unwrap(), "--mistake", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", common::stderr(&out));
        let (code, text) = compare(&theirs, &ours);
        match expected {
            None => {
                assert_eq!(code, Some(0), "{name}: {text}");
                assert!(!text.contains("not compared"), "{name}: {text}");
            }
            Some(m) => {
                assert_eq!(code, Some(5), "{name}: {text}");
                let said = format!("likely mistake: {}", m.describe());
                assert!(text.contains(&said), "{name}: expected {said:?} in {text}");
            }
        }
    }
}

#[test]
fn a_step_with_dropout_or_class_weights_is_refused_not_traced_wrong() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, field) in [
        ("[model]\ndropout = 0.2\n", "model.dropout"),
        (
            "[train]\nclass_weights = \"balanced\"\n",
            "train.class_weights",
        ),
    ] {
        let text = format!(
            "[data]\ndir = \"{}\"\n{extra}",
            common::mnist_dir().display()
        );
        let config = common::write_config(dir.path(), "c.toml", &text);
        let out = common::backprop()
            .args([
                "trace",
                "--config",
                config.to_str().unwrap(),
                "--out",
                "t.safetensors",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
        assert!(
            common::stderr(&out).contains(field),
            "{}",
            common::stderr(&out)
        );
        assert!(!dir.path().join("t.safetensors").exists());
    }
}
