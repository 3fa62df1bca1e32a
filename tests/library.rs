//! The library as a dependency sees it: `MlpBuilder` on arrays and on a path, the trained
//! `Model` (predict, evaluate, save, load) agreeing with the command line, clear errors, and
//! a lean build without the `cli` feature.

mod common;

use backprop::{Activation, Loss, MlpBuilder, Model, OptimizerKind};
use ndarray::{array, Array2};

fn xor() -> (Array2<f32>, Vec<u32>) {
    (
        array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]],
        vec![0, 1, 1, 0],
    )
}

/// The settings of `examples/xor.rs`.
fn xor_builder() -> MlpBuilder {
    MlpBuilder::new()
        .hidden([8])
        .activation(Activation::Tanh)
        .loss(Loss::SoftmaxCrossEntropy)
        .optimizer(OptimizerKind::Momentum)
        .lr(0.2)
        .epochs(300)
        .batch_size(4)
        .seed(1)
        .threads(1)
}

#[test]
fn xor_in_memory_is_learned_and_reproducible() {
    // OpenBLAS' thread count is process-wide: training tests take turns.
    let _guard = common::training_lock();
    let (x, y) = xor();
    let epochs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = epochs.clone();
    let model = xor_builder()
        .on_epoch(move |r| {
            seen.store(r.epoch, std::sync::atomic::Ordering::Relaxed);
        })
        .fit_arrays(x.view(), &y)
        .unwrap();
    assert_eq!(epochs.load(std::sync::atomic::Ordering::Relaxed), 300);
    assert_eq!(model.history().len(), 300);
    assert_eq!(model.predict_classes(x.view()).unwrap(), [0, 1, 1, 0]);
    let p = model.predict(x.view()).unwrap();
    assert_eq!(p.dim(), (4, 2));
    for (row, &label) in p.rows().into_iter().zip(&y) {
        assert!((row.sum() - 1.0).abs() < 1e-6);
        assert!(row[label as usize] > 0.9, "{p}");
    }
    let again = xor_builder().fit_arrays(x.view(), &y).unwrap();
    assert_eq!(again.predict(x.view()).unwrap(), p, "same seed, same model");
    // A column-major view holds the same rows.
    let fortran = x.t().to_owned();
    assert_eq!(model.predict(fortran.t()).unwrap(), p);
}

#[test]
fn bad_arrays_and_settings_get_errors_that_name_them() {
    // OpenBLAS' thread count is process-wide: training tests take turns.
    let _guard = common::training_lock();
    let (x, y) = xor();
    let err = |r: anyhow::Result<Model>| format!("{:#}", r.unwrap_err());
    let e = err(xor_builder().fit_arrays(x.view(), &y[..3]));
    assert!(e.contains("labels (one per row of x)"), "{e}");
    assert!(e.contains('4') && e.contains('3'), "{e}");
    let mut nan = x.clone();
    nan[[2, 1]] = f32::NAN;
    let e = err(xor_builder().fit_arrays(nan.view(), &y));
    assert!(e.contains("x[2, 1] is NaN"), "{e}");
    let e = err(xor_builder().lr(0.0).fit_arrays(x.view(), &y));
    assert!(
        e.contains("invalid MlpBuilder settings: optimizer.lr"),
        "{e}"
    );
    let e = err(xor_builder().hidden([4, 0]).fit_arrays(x.view(), &y));
    assert!(e.contains("model.hidden: layer 1 has width 0"), "{e}");
    let values = x.column(0).to_owned().insert_axis(ndarray::Axis(1));
    let e = err(xor_builder().fit_arrays(x.view(), values.view()));
    assert!(e.contains("mean_squared_error"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("table.csv");
    std::fs::write(&csv, "a,b,y\n0,0,0\n").unwrap();
    let e = err(xor_builder().fit_path(&csv));
    assert!(
        e.contains("table.csv: a CSV file needs its target column(s)"),
        "{e}"
    );
    let e = err(xor_builder().fit_path(dir.path().join("missing")));
    assert!(
        e.contains("expected a folder of IDX files or a .csv file"),
        "{e}"
    );

    let model = xor_builder().epochs(1).fit_arrays(x.view(), &y).unwrap();
    let wide = Array2::<f32>::zeros((2, 3));
    let e = format!("{:#}", model.predict(wide.view()).unwrap_err());
    assert!(
        e.contains("x: features per sample (the model's inputs)"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        model
            .evaluate_arrays(x.view(), &vec![0, 1, 2, 0])
            .unwrap_err()
    );
    assert!(
        e.contains("label 2 of row 2 is not below the model's 2 classes"),
        "{e}"
    );
}

#[test]
fn a_csv_file_trains_through_fit_path() {
    // OpenBLAS' thread count is process-wide: training tests take turns.
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("above.csv");
    let mut text = String::from("x0,x1,above\n");
    for i in 0..200 {
        let (a, b) = ((i * 7 % 20) as f32 / 20.0, (i * 13 % 20) as f32 / 20.0);
        text += &format!("{a},{b},{}\n", u8::from(b > a));
    }
    std::fs::write(&csv, text).unwrap();
    let model = MlpBuilder::new()
        .hidden([16])
        .optimizer(OptimizerKind::Adam)
        .lr(0.02)
        .epochs(60)
        .batch_size(20)
        .threads(1)
        .csv_target(&["above"], true)
        .fit_path(&csv)
        .unwrap();
    let last = model.history().last().unwrap();
    assert!(last.test_acc.unwrap() > 0.85, "{last:?}");
}

#[test]
fn mnist_from_a_path_evaluates_saves_and_matches_backprop_eval() {
    let _guard = common::training_lock();
    let data = common::mnist_dir();
    let model = MlpBuilder::new()
        .hidden([64])
        .optimizer(OptimizerKind::Momentum)
        .lr(0.05)
        .epochs(1)
        .batch_size(64)
        .standardize(0.1307, 0.3081)
        .threads(2)
        .fit_path(&data)
        .unwrap();
    let test = model.evaluate_path(&data).unwrap();
    assert_eq!(test.samples, 10_000);
    let accuracy = test.accuracy.unwrap();
    assert!(accuracy > 0.93, "{accuracy}");
    assert_eq!(
        Some(accuracy),
        model.history()[0].test_acc,
        "the epoch's test figure"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mnist.safetensors");
    model.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    assert_eq!(back.evaluate_path(&data).unwrap(), test);
    // The command line reads what the library wrote, config and all.
    let eval = common::run(&["eval", "--model", path.to_str().unwrap(), "--json"]);
    assert!(eval.status.success(), "{}", common::stderr(&eval));
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    let correct: u64 = (0..10)
        .map(|c| report["confusion"][c][c].as_u64().unwrap())
        .sum();
    assert_eq!(correct, (accuracy * 10_000.0).round() as u64);
}

#[test]
fn without_the_cli_feature_the_library_depends_on_no_command_line_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = |features: &[&str]| {
        let out = std::process::Command::new(&cargo)
            .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
            .args(features)
            .current_dir(common::repo())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stdout(&out)
    };
    let cli_crates = ["clap", "indicatif", "plotters", "image", "dejavu", "ctrlc"];
    let has = |tree: &str, name: &str| tree.lines().any(|l| l.starts_with(&format!("{name} v")));
    let lean = tree(&["--no-default-features"]);
    let full = tree(&[]);
    for name in cli_crates {
        assert!(!has(&lean, name), "{name} in the lean library:\n{lean}");
        assert!(has(&full, name), "{name} missing from the default build");
    }
}
