//! What leaves backprop for other tools: ONNX models run by onnxruntime, TensorBoard event
//! files read by TensorBoard's own reader (both from `target/venv`, made by `.ci/run`).

mod common;

use backprop::data::idx::IdxFile;
use backprop::{Activation, Loss, MlpBuilder, OptimizerKind};
use ndarray::{Array2, ArrayView2};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn python_has(modules: &str) -> bool {
    Command::new(common::python())
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn f32_file(path: &Path, values: impl IntoIterator<Item = f32>) {
    let bytes: Vec<u8> = values.into_iter().flat_map(f32::to_le_bytes).collect();
    std::fs::write(path, bytes).unwrap();
}

/// Runs `scripts/check_onnx.py`; returns its report (it has already failed on a problem).
fn check_onnx(args: &[&str]) -> Value {
    let out = Command::new(common::python())
        .arg(common::repo().join("scripts/check_onnx.py"))
        .args(args)
        .output()
        .unwrap();
    let report = common::stdout(&out);
    assert!(
        out.status.success(),
        "check_onnx.py failed: {report}{}",
        common::stderr(&out)
    );
    eprintln!("check_onnx.py: {report}");
    serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"))
}

fn export(model: &Path, onnx: &Path) -> String {
    let out = common::run(&[
        "export",
        "--model",
        model.to_str().unwrap(),
        "--onnx",
        onnx.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    common::stdout(&out)
}

#[test]
fn onnx_export_agrees_with_backprop_on_every_mnist_test_image() {
    if !python_has("numpy, onnxruntime") {
        return common::missing_prerequisite(
            "Python with numpy and onnxruntime (.ci/run makes target/venv)",
        );
    }
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Standardised inputs (mean 0.1307, std 0.3081): the transform must be in the graph.
    let config = common::repo().join("configs/mnist_300x300.toml");
    let out = common::backprop()
        .args(["--config", config.to_str().unwrap(), "--hidden", "64"])
        .args(["--epochs", "1", "--threads", "2", "--quiet"])
        .args(["--save", "ck.safetensors"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let ck = d.join("ck.safetensors");
    let onnx = d.join("mnist.onnx");
    let said = export(&ck, &onnx);
    assert!(said.contains("input uint8 [N, 28, 28], opset 17"), "{said}");

    // backprop's own probabilities for the raw test bytes.
    let paths = backprop::data::standard_paths(&common::mnist_dir()).unwrap();
    let images = IdxFile::open(&paths[2], &Default::default()).unwrap();
    let labels = IdxFile::open(&paths[3], &Default::default()).unwrap();
    let n = images.count();
    let x = ArrayView2::from_shape((n, images.item_len()), images.data()).unwrap();
    let model = backprop::Model::load(&ck).unwrap();
    let p = model.predict_bytes(x).unwrap();
    let (input, expected, label_file) = (d.join("x.u8"), d.join("p.f32"), d.join("y.u8"));
    std::fs::write(&input, images.data()).unwrap();
    std::fs::write(&label_file, labels.data()).unwrap();
    f32_file(&expected, p.iter().copied());

    // `backprop eval` counts the same right answers.
    let eval = common::run(&["eval", "--model", ck.to_str().unwrap(), "--json"]);
    assert!(eval.status.success(), "{}", common::stderr(&eval));
    let eval: Value = serde_json::from_slice(&eval.stdout).unwrap();
    let eval_correct: u64 = (0..10)
        .map(|c| eval["confusion"][c][c].as_u64().unwrap())
        .sum();
    let argmax = |row: ndarray::ArrayView1<f32>| {
        (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap()
    };
    let lib_correct = p
        .rows()
        .into_iter()
        .zip(labels.data())
        .filter(|(row, &l)| argmax(*row) == usize::from(l))
        .count() as u64;
    assert_eq!(
        lib_correct, eval_correct,
        "library forward vs backprop eval"
    );

    let report = check_onnx(&[
        onnx.to_str().unwrap(),
        input.to_str().unwrap(),
        expected.to_str().unwrap(),
        "--shape",
        &format!("{n},28,28"),
        "--dtype",
        "uint8",
        "--labels",
        label_file.to_str().unwrap(),
        "--atol",
        "1e-5",
    ]);
    assert_eq!(report["rows"], 10_000, "{report}");
    assert_eq!(report["output"], "probabilities", "{report}");
    assert_eq!(report["argmax_mismatch"], 0, "{report}");
    assert!(report["max_abs_diff"].as_f64().unwrap() <= 1e-5, "{report}");
    assert!(report["batch_of_one"].as_f64().unwrap() <= 1e-6, "{report}");
    assert!(
        report["row_sum_error"].as_f64().unwrap() <= 1e-5,
        "{report}"
    );
    assert_eq!(
        report["correct"].as_u64().unwrap(),
        eval_correct,
        "{report}"
    );
    assert!(eval_correct > 9000, "{eval_correct}");
}

#[test]
fn onnx_export_of_a_float_model_without_config_takes_floats() {
    if !python_has("numpy, onnxruntime") {
        return common::missing_prerequisite(
            "Python with numpy and onnxruntime (.ci/run makes target/venv)",
        );
    }
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Inside a ring or not: SiLU hidden units, one sigmoid output, standardised floats.
    let x = Array2::from_shape_fn((300, 3), |(i, j)| ((i * 37 + j * 11) % 41) as f32 / 8.0);
    let y: Vec<u32> = x
        .rows()
        .into_iter()
        .map(|r| u32::from((r[0] - 2.5).hypot(r[1] - 2.5) < 1.5))
        .collect();
    let model = MlpBuilder::new()
        .hidden([12, 6])
        .activation(Activation::Silu)
        .loss(Loss::SigmoidBinaryCrossEntropy)
        .optimizer(OptimizerKind::Adam)
        .lr(0.01)
        .epochs(20)
        .batch_size(32)
        .standardize(2.5, 1.5)
        .threads(2)
        .fit_arrays(x.view(), &y)
        .unwrap();
    let ck = d.join("ring.safetensors");
    model.save(&ck).unwrap();
    let onnx = d.join("ring.onnx");
    let said = export(&ck, &onnx);
    assert!(said.contains("input float [N, 3]"), "{said}");
    // The library writes the same graph as the command.
    let from_library = model
        .to_onnx(backprop::output::onnx::InputKind::Floats)
        .unwrap();
    assert_eq!(std::fs::read(&onnx).unwrap(), from_library);

    let (input, expected) = (d.join("x.f32"), d.join("p.f32"));
    f32_file(&input, x.iter().copied());
    f32_file(&expected, model.predict(x.view()).unwrap().iter().copied());
    let report = check_onnx(&[
        onnx.to_str().unwrap(),
        input.to_str().unwrap(),
        expected.to_str().unwrap(),
        "--shape",
        "300,3",
        "--dtype",
        "float32",
    ]);
    assert_eq!(report["output"], "probabilities", "{report}");
    assert!(report["max_abs_diff"].as_f64().unwrap() <= 1e-5, "{report}");
}

#[test]
fn exporting_a_file_that_is_not_a_checkpoint_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.safetensors");
    std::fs::write(&bogus, "hello").unwrap();
    let onnx = dir.path().join("out.onnx");
    let out = common::run(&[
        "export",
        "--model",
        bogus.to_str().unwrap(),
        "--onnx",
        onnx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(
        err.contains("notes.safetensors: not a safetensors file"),
        "{err}"
    );
    assert!(!onnx.exists());
}

/// Scalars as (tag, step, f32 bits), so that equality is exact and sortable.
type Scalar = (String, i64, u32);

fn read_run(run: &Path) -> Value {
    let out = Command::new(common::python())
        .arg(common::repo().join("scripts/read_tensorboard.py"))
        .arg(run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn scalars(run: &Value) -> Vec<Scalar> {
    let mut s: Vec<Scalar> = run["scalars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let value = v[2].as_f64().unwrap() as f32;
            (
                v[0].as_str().unwrap().to_string(),
                v[1].as_i64().unwrap(),
                value.to_bits(),
            )
        })
        .collect();
    s.sort();
    s
}

#[test]
fn tensorboard_logs_read_back_with_tensorboards_reader() {
    if !python_has("tensorboard") {
        return common::missing_prerequisite("Python with tensorboard (.ci/run makes target/venv)");
    }
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["data", "cfg"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    common::write_band_dataset(&d.join("data"), 8, 4, 400, 100);
    let text = format!(
        "seed = 9\n[data]\ndir = \"{}\"\nvalidation_split = 0.2\n[model]\nhidden = [16]\n\
         [train]\nepochs = 3\nbatch_size = 50\n[optimizer]\nkind = \"adam\"\nlr = 0.01\n\
         [schedule]\nkind = \"cosine\"\n[output]\ntensorboard = \"tb\"\n",
        d.join("data").display()
    );
    let config = common::write_config(&d.join("cfg"), "bands.toml", &text);
    let train = |extra: &[&str]| {
        let out = common::backprop()
            .args([
                "--config",
                config.to_str().unwrap(),
                "--quiet",
                "--threads",
                "2",
            ])
            .args(extra)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::stderr(&out));
    };
    train(&["--metrics-out", "m.jsonl"]);
    // The config's folder, not the working directory, is where `tb` lives.
    assert!(!d.join("tb").exists());
    let run = read_run(&d.join("cfg/tb/bands"));

    let mut expected: Vec<Scalar> = Vec::new();
    for line in std::fs::read_to_string(d.join("m.jsonl")).unwrap().lines() {
        let r: backprop::train::EpochRecord = serde_json::from_str(line).unwrap();
        let step = r.epoch as i64;
        for (tag, v) in [
            ("loss/train", r.train_loss),
            ("accuracy/train", r.train_acc.unwrap()),
            ("loss/validation", r.val_loss.unwrap()),
            ("accuracy/validation", r.val_acc.unwrap()),
            ("loss/test", r.test_loss),
            ("accuracy/test", r.test_acc.unwrap()),
            ("lr", f64::from(r.lr)),
        ] {
            expected.push((tag.to_string(), step, (v as f32).to_bits()));
        }
    }
    expected.sort();
    assert_eq!(expected.len(), 21);
    assert_eq!(scalars(&run), expected);
    // The cosine schedule shows: the lr falls epoch by epoch.
    let lrs: Vec<u32> = expected
        .iter()
        .filter(|s| s.0 == "lr")
        .map(|s| s.2)
        .collect();
    assert!(f32::from_bits(lrs[0]) > f32::from_bits(lrs[2]), "{lrs:?}");

    assert_eq!(run["plugins"]["config"], "text", "{run}");
    let texts = run["texts"].as_array().unwrap();
    assert_eq!(texts.len(), 1, "{run}");
    assert_eq!(
        (&texts[0][0], &texts[0][1]),
        (&Value::from("config"), &Value::from(0))
    );
    let shown = texts[0][2].as_str().unwrap();
    let toml = shown
        .strip_prefix("```toml\n")
        .and_then(|t| t.strip_suffix("```\n"))
        .unwrap_or_else(|| panic!("not a TOML code block: {shown}"));
    let logged = backprop::config::parse(toml).unwrap();
    assert_eq!(
        (logged.seed, logged.model.hidden.as_slice()),
        (9, &[16][..])
    );
    assert!(logged.output.tensorboard.unwrap().ends_with("cfg/tb"));

    // The flag, and a second run into a taken name: a run folder of its own.
    train(&["--tensorboard", "flag", "--epochs", "2"]);
    train(&["--tensorboard", "flag", "--epochs", "1"]);
    assert_eq!(scalars(&read_run(&d.join("flag/bands"))).len(), 14);
    assert_eq!(scalars(&read_run(&d.join("flag/bands-2"))).len(), 7);
}
