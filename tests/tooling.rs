//! What surrounds training: evaluation, prediction, plots, gradient checks, the verdicts that
//! explain a network that does not learn, and output discipline.

mod common;

use backprop::output::diagnosis::Cause;
use std::path::Path;

fn config_in(dir: &Path, body: &str) -> String {
    let text = format!(
        "seed = 3\n[data]\ndir = \"{}\"\n{body}",
        common::mnist_dir().display()
    );
    common::write_config(dir, "run.toml", &text)
        .to_string_lossy()
        .into_owned()
}

fn quick_model(dir: &Path) -> String {
    let config = config_in(dir, "mean = 0.1307\nstd = 0.3081\n[model]\nhidden = [64]\n[optimizer]\nkind = \"momentum\"\nlr = 0.05\n");
    let model = dir.join("m.safetensors").to_string_lossy().into_owned();
    let out = common::run(&[
        "--config", &config, "--epochs", "1", "--save", &model, "--quiet",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    model
}

#[test]
fn eval_prints_a_table_and_json_with_the_confusion_matrix() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let model = quick_model(dir.path());
    let out = common::run(&["eval", "--model", &model]);
    let text = common::stdout(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(text.contains("samples   10000"), "{text}");
    assert!(text.contains("class  support  precision  recall"), "{text}");
    assert!(
        text.contains("confusion matrix (rows: true class, columns: predicted)"),
        "{text}"
    );
    let json = common::run(&["eval", "--model", &model, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let confusion = v["confusion"].as_array().unwrap();
    assert_eq!(confusion.len(), 10);
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, 10_000);
    let support: Vec<u64> = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["support"].as_u64().unwrap())
        .collect();
    assert_eq!(
        support,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert!(v["accuracy"].as_f64().unwrap() > 0.9);
}

/// The first MNIST test image (a 7), as the user might draw it: dark ink on white, 3x larger.
fn drawn_seven(path: &Path) {
    let paths = backprop::data::standard_paths(&common::mnist_dir()).unwrap();
    let (_, test) = backprop::data::load_idx_sets(&paths, None, &Default::default()).unwrap();
    let mut px = vec![0.0f32; 784];
    test.raw_features(0, &mut px);
    let img = image::GrayImage::from_fn(84, 84, |x, y| {
        let v = px[(y / 3 * 28 + x / 3) as usize] as u8;
        image::Luma([255 - v])
    });
    img.save(path).unwrap();
}

#[test]
fn predict_reads_idx_files_and_a_drawn_png() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let model = quick_model(dir.path());
    let png = dir.path().join("seven.png");
    drawn_seven(&png);
    let out = common::run(&["predict", "--model", &model, png.to_str().unwrap()]);
    let text = common::stdout(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let fields: Vec<&str> = text.trim().split('\t').collect();
    assert_eq!(fields[1], "7", "{text}");
    let p: f64 = fields[2].parse().unwrap();
    assert!(p > 0.5 && p <= 1.0, "{text}");

    let idx = common::mnist_dir().join("t10k-images-idx3-ubyte.gz");
    let out = common::run(&["predict", "--model", &model, idx.to_str().unwrap()]);
    let text = common::stdout(&out);
    assert_eq!(text.lines().count(), 10_000);
    // The first three test digits are 7, 2, 1.
    let classes: Vec<&str> = text
        .lines()
        .take(3)
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(classes, ["7", "2", "1"]);
}

#[test]
fn learning_curves_are_drawn_as_png_and_svg() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(
        dir.path(),
        "validation_split = 0.1\n[model]\nhidden = [32]\n[optimizer]\nlr = 0.1\n",
    );
    let png = dir.path().join("curves.png");
    let svg = dir.path().join("curves.svg");
    for plot in [&png, &svg] {
        let out = common::run(&[
            "--config",
            &config,
            "--epochs",
            "2",
            "--quiet",
            "--plot",
            plot.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1100, 450));
    let colours: std::collections::HashSet<_> = img.pixels().take(1100 * 450).step_by(7).collect();
    assert!(colours.len() > 20, "a real drawing, not a blank canvas");
    let text = std::fs::read_to_string(&svg).unwrap();
    for label in [
        "epoch",
        "accuracy (%)",
        "loss",
        "train",
        "validation",
        "test",
    ] {
        assert!(
            text.contains(&format!("\n{label}\n</text>")),
            "svg lacks {label}"
        );
    }
}

#[test]
fn gradcheck_passes_on_a_shrunk_mnist_network_and_fails_an_impossible_threshold() {
    let config = common::repo().join("configs/mnist_sigmoid_l2.toml");
    let ok = common::run(&[
        "gradcheck",
        "--config",
        config.to_str().unwrap(),
        "--inputs",
        "12",
    ]);
    let text = common::stdout(&ok);
    assert_eq!(ok.status.code(), Some(0), "{text}{}", common::stderr(&ok));
    assert!(text.contains("12-256-256-10"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("layer")).count(),
        6,
        "{text}"
    );
    assert!(text.contains("OK: worst relative error"), "{text}");
    let strict = common::run(&[
        "gradcheck",
        "--config",
        config.to_str().unwrap(),
        "--inputs",
        "12",
        "--threshold",
        "1e-15",
    ]);
    assert_eq!(strict.status.code(), Some(4));
    assert!(common::stdout(&strict).contains("FAILED"));
}

#[test]
fn a_learning_rate_of_10_diverges_names_the_batch_and_keeps_the_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("sine.safetensors");
    let model = model.to_str().unwrap();
    let sine = common::repo().join("configs/sine.toml");
    let good = common::run(&[
        "--config",
        sine.to_str().unwrap(),
        "--epochs",
        "1",
        "--save",
        model,
        "-q",
    ]);
    assert!(good.status.success(), "{}", common::stderr(&good));
    let before = std::fs::read(model).unwrap();
    let out = common::run(&[
        "--resume", model, "--epochs", "3", "--lr", "10", "--save", model,
    ]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("training diverged in epoch 2, batch"), "{err}");
    assert!(err.contains("NaN") || err.contains("inf"), "{err}");
    assert!(err.contains("layer"), "{err}");
    assert!(err.contains("try 1"), "suggests lr / 10: {err}");
    assert!(err.contains("the last good state (after epoch 1)"), "{err}");
    let ck = backprop::output::checkpoint::load(Path::new(model)).unwrap();
    assert_eq!(ck.state.epochs_done(), 1);
    assert!(ck.state.net.params.iter().all(|p| p.is_finite()));
    assert!(
        std::fs::read(model).unwrap() == before,
        "the good checkpoint is untouched"
    );
}

/// Warnings other than the one about this machine's OpenBLAS build.
fn run_warnings(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.starts_with("warning:") && !l.contains("OpenBLAS chose"))
        .collect()
}

fn warnings_of(body: &str, epochs: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), body);
    let out = common::run(&["--config", &config, "--epochs", epochs, "--quiet"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    common::stderr(&out)
}

#[test]
fn tiny_initial_weights_on_a_deep_relu_network_are_diagnosed() {
    let _guard = common::training_lock();
    let err = warnings_of(
        "[model]\nhidden = [128, 128, 128, 128, 128]\ninit = \"normal\"\ninit_std = 0.01\n[optimizer]\nlr = 0.01\n",
        "1",
    );
    assert!(err.contains(Cause::InitTooSmall.title()), "{err}");
    assert!(err.contains("init = \"auto\""), "{err}");
    assert!(!err.contains(Cause::DeadUnits.title()), "{err}");
}

#[test]
fn raw_byte_inputs_are_named_as_the_cause_not_the_saturation() {
    let _guard = common::training_lock();
    let err = warnings_of("scale = \"none\"\n[model]\nhidden = [64]\nactivation = \"sigmoid\"\ninit = \"xavier_uniform\"\n", "1");
    assert!(err.contains("inputs are raw bytes 0..255"), "{err}");
    assert!(err.contains(Cause::InputsUnscaled.title()), "{err}");
    assert!(err.contains("data.scale = \"unit\""), "{err}");
    assert!(!err.contains(Cause::InitTooLarge.title()), "{err}");
}

#[test]
fn relus_killed_by_negative_biases_are_blamed_on_the_biases() {
    let _guard = common::training_lock();
    let err = warnings_of("[model]\nhidden = [64]\nbias_init = -4.0\n", "1");
    assert!(err.contains(Cause::BiasKillsRelu.title()), "{err}");
    assert!(err.contains("its biases average -4.000"), "{err}");
}

#[test]
fn a_healthy_run_warns_about_nothing_and_diagnostics_print_per_layer() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "mean = 0.1307\nstd = 0.3081\n[model]\nhidden = [64]\n[optimizer]\nkind = \"momentum\"\nlr = 0.05\n");
    let out = common::run(&["--config", &config, "--epochs", "2", "--diagnostics"]);
    let (text, err) = (common::stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "{err}");
    assert!(run_warnings(&err).is_empty(), "{err}");
    assert!(text.contains("layer 0 (relu): |grad|"), "{text}");
    assert!(text.contains("dead "), "{text}");
    assert!(text.contains("update/weight"), "{text}");
}

#[test]
fn results_go_to_stdout_and_nothing_draws_when_not_a_terminal() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(
        dir.path(),
        "[model]\nhidden = [16]\n[optimizer]\nlr = 0.1\n",
    );
    let out = common::run(&["--config", &config, "--epochs", "2"]);
    let (text, err) = (common::stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "{err}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("epoch ")).count(),
        2,
        "{text}"
    );
    assert!(
        text.lines().last().unwrap().starts_with("result: "),
        "{text}"
    );
    assert!(
        !err.contains('\r') && !err.contains('\x1b'),
        "no bar, no colour on a pipe: {err:?}"
    );
    let quiet = common::run(&["--config", &config, "--epochs", "1", "--quiet"]);
    let text = common::stdout(&quiet);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("result: "));
}

#[test]
fn every_subcommand_documents_its_options_with_defaults() {
    for (sub, needles) in [
        (
            "train",
            &[
                "--config",
                "--epochs",
                "--batch-size",
                "--lr",
                "--hidden",
                "--seed",
                "--threads",
                "--data-dir",
                "--metrics-out",
                "--csv-out",
                "--plot",
                "--save",
                "--resume",
                "--tensorboard",
                "--quiet",
            ][..],
        ),
        ("eval", &["--model", "--data-dir", "--json"][..]),
        ("predict", &["--model", "--invert", "[default: auto]"][..]),
        (
            "gradcheck",
            &[
                "--inputs",
                "--samples",
                "[default: 4]",
                "--threshold",
                "[default: 0.001]",
            ][..],
        ),
        ("bench", &["--floor-repeats", "[default: 3]", "--json"][..]),
        ("export", &["--model", "--onnx"][..]),
    ] {
        let out = common::run(&[sub, "--help"]);
        let text = common::stdout(&out);
        assert!(out.status.success());
        for n in needles {
            assert!(text.contains(n), "{sub} --help lacks {n}: {text}");
        }
    }
}

#[cfg(unix)]
#[test]
fn output_files_honour_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let config = common::repo().join("configs/xor.toml");
    for (umask, mode) in [("022", 0o644), ("077", 0o600)] {
        let dir = tempfile::tempdir().unwrap();
        // The umask is per process: set it in a shell that then becomes the binary.
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_backprop"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "--epochs",
                "3",
                "--quiet",
            ])
            .args(["--metrics-out", "m.jsonl", "--csv-out", "m.csv"])
            .args(["--save", "ck.safetensors"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::stderr(&out));
        for name in ["m.jsonl", "m.csv", "ck.safetensors"] {
            let meta = std::fs::metadata(dir.path().join(name)).unwrap();
            assert_eq!(
                meta.permissions().mode() & 0o777,
                mode,
                "{name} under umask {umask}"
            );
        }
    }
}

/// A core the user chose is respected, never re-executed away; when it is slower than the CPU
/// allows, the run says so once.
#[test]
fn a_user_chosen_openblas_core_is_respected_and_its_cost_named() {
    let has_avx2 =
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(
        dir.path(),
        "c.toml",
        &format!(
            "[data]\ndir = \"{}\"\n[model]\nhidden = [8]\n[train]\nepochs = 1\nbatch_size = 1000\n",
            common::mnist_dir().display()
        ),
    );
    let out = common::backprop()
        .args(["--config", cfg.to_str().unwrap()])
        .env("OPENBLAS_CORETYPE", "Prescott")
        .output()
        .unwrap();
    let (text, err) = (common::stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "{err}");
    assert!(text.contains("OpenBLAS core Prescott"), "{text}");
    assert!(text.contains("OPENBLAS_CORETYPE=Prescott"), "{text}");
    assert!(!text.contains("corrected from"), "{text}");
    if has_avx2 {
        assert!(
            err.contains("OpenBLAS runs its Prescott kernels on a CPU that has"),
            "{err}"
        );
    }
}
