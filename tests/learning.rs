//! The network really learns: real MNIST, reproducibly, and the same config on a dataset of
//! another shape.

mod common;

use backprop::commands::experiment::Experiment;
use backprop::config;
use backprop::train::{EpochRecord, Silent, StopReason};
use std::sync::atomic::AtomicBool;

fn train_main_config(epochs: usize, seed: u64, subset: Option<usize>) -> Vec<EpochRecord> {
    let mut loaded = config::load(&common::repo().join("configs/mnist_300x300.toml")).unwrap();
    loaded.config.train.epochs = epochs;
    loaded.config.seed = seed;
    loaded.config.validate().unwrap();
    let mut exp = Experiment::prepare(loaded).unwrap();
    if let Some(n) = subset {
        exp.train_indices.truncate(n);
    }
    let mut trainer = exp.trainer(exp.initial_state(), None).unwrap();
    let reason = trainer
        .fit(exp.sets(), &mut Silent, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(reason, StopReason::EpochsDone);
    trainer.state.history
}

#[test]
fn one_epoch_of_the_main_config_passes_ninety_percent_on_mnist() {
    let _guard = common::training_lock();
    let history = train_main_config(1, 42, None);
    let acc = history[0].test_acc.unwrap();
    assert!(acc >= 0.90, "test accuracy {acc}");
    // Label smoothing (0.1 of 10 classes) puts a floor of about 0.5 under the training loss.
    assert!(history[0].train_loss < 0.8, "{history:?}");
}

#[test]
fn same_seed_same_numbers_other_seed_other_numbers() {
    let _guard = common::training_lock();
    let a = train_main_config(2, 7, Some(6000));
    let b = train_main_config(2, 7, Some(6000));
    let c = train_main_config(2, 8, Some(6000));
    let losses = |h: &[EpochRecord]| -> Vec<u64> {
        h.iter()
            .flat_map(|r| [r.train_loss.to_bits(), r.test_loss.to_bits()])
            .collect()
    };
    assert_eq!(losses(&a), losses(&b), "bit-identical with the same seed");
    assert_ne!(losses(&a), losses(&c));
}

#[test]
fn the_mnist_config_trains_unchanged_on_8x8_images_of_3_classes() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    common::write_band_dataset(dir.path(), 8, 3, 3000, 600);
    let config = common::repo().join("configs/mnist_300x300.toml");
    let out = common::run(&[
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--epochs",
        "3",
    ]);
    let text = common::stdout(&out);
    assert!(out.status.success(), "{}{text}", common::stderr(&out));
    assert!(text.contains("64-300-300-3"), "{text}");
    assert!(
        text.contains("3000 train, 0 validation, 600 test"),
        "{text}"
    );
    let result = text.lines().find(|l| l.starts_with("result:")).unwrap();
    let acc: f64 = result
        .split("test accuracy ")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(acc >= 95.0, "{result}");
}

/// One-cycle is evaluated every step: each epoch records the lr and momentum of its last step,
/// the run ends at max_lr / final_div with the momentum back at its top, and it learns.
#[test]
fn one_cycle_records_its_last_steps_and_learns() {
    let dir = tempfile::tempdir().unwrap();
    common::write_band_dataset(dir.path(), 8, 4, 400, 100);
    let cfg = common::write_config(
        dir.path(),
        "c.toml",
        "[data]\ndir = \".\"\n[model]\nhidden = [16]\n[train]\nepochs = 3\nbatch_size = 40\n\
         [optimizer]\nkind = \"momentum\"\nlr = 0.01\n\
         [schedule]\nkind = \"one_cycle\"\nmax_lr = 0.2\nfinal_div = 1000.0\n",
    );
    let metrics = dir.path().join("m.jsonl");
    let out = common::run(&[
        "--config",
        cfg.to_str().unwrap(),
        "--metrics-out",
        metrics.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let field = |i: usize, k: &str| lines[i][k].as_f64().unwrap();
    assert_eq!(lines.len(), 3);
    assert!((field(2, "lr") - 0.2 / 1000.0).abs() < 1e-7, "{lines:?}");
    assert!((field(2, "momentum") - 0.95).abs() < 1e-6, "{lines:?}");
    // 30 steps: the peak is step round(0.3 * 29) = 9, epoch 1's last.
    assert!((field(0, "lr") - 0.2).abs() < 1e-7, "{lines:?}");
    assert!((field(0, "momentum") - 0.85).abs() < 1e-6, "{lines:?}");
    assert!(
        field(1, "lr") < 0.2 && field(1, "lr") > field(2, "lr"),
        "{lines:?}"
    );
    assert!(field(1, "momentum") > 0.85 && field(1, "momentum") < 0.95);
    assert!(field(2, "test_acc") > 0.9, "{lines:?}");
}

/// Label smoothing trains on `(1 - ε) y + ε / K` targets: it still learns, and its training
/// loss keeps the floor the uniform part puts under it, where the plain loss goes to ~0.
#[test]
fn label_smoothing_learns_and_keeps_its_loss_floor() {
    let dir = tempfile::tempdir().unwrap();
    common::write_band_dataset(dir.path(), 8, 4, 400, 100);
    let mut finals = Vec::new();
    for smoothing in ["0.0", "0.2"] {
        let cfg = common::write_config(
            dir.path(),
            "c.toml",
            &format!(
                "[data]\ndir = \".\"\n[model]\nhidden = [16]\nlabel_smoothing = {smoothing}\n\
                 [train]\nepochs = 20\nbatch_size = 40\n[optimizer]\nkind = \"momentum\"\nlr = 0.05\n"
            ),
        );
        let metrics = dir.path().join(format!("m{smoothing}.jsonl"));
        let out = common::run(&[
            "--config",
            cfg.to_str().unwrap(),
            "--metrics-out",
            metrics.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let text = std::fs::read_to_string(&metrics).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        finals.push((
            last["train_loss"].as_f64().unwrap(),
            last["test_acc"].as_f64().unwrap(),
        ));
    }
    let ((plain, plain_acc), (smooth, smooth_acc)) = (finals[0], finals[1]);
    assert!(plain_acc > 0.95 && smooth_acc > 0.95, "{finals:?}");
    // With ε = 0.2 over 4 classes the best possible loss is the entropy of (0.85, 0.05 x 3).
    let floor = -(0.85f64 * 0.85f64.ln() + 3.0 * 0.05 * 0.05f64.ln());
    assert!(
        plain < 0.05 && smooth > floor - 1e-3,
        "{finals:?}, floor {floor}"
    );
}

fn train_with_dropout(rate: f32, seed: u64) -> Vec<EpochRecord> {
    let mut loaded = config::load(&common::repo().join("configs/mnist_300x300.toml")).unwrap();
    loaded.config.train.epochs = 2;
    loaded.config.seed = seed;
    loaded.config.model.dropout = backprop::config::Rates::All(rate);
    loaded.config.validate().unwrap();
    let mut exp = Experiment::prepare(loaded).unwrap();
    exp.train_indices.truncate(6000);
    let mut trainer = exp.trainer(exp.initial_state(), None).unwrap();
    trainer
        .fit(exp.sets(), &mut Silent, &AtomicBool::new(false))
        .unwrap();
    trainer.state.history
}

/// Dropout masks come from the seeded streams (the same run twice is bit-identical), they
/// make the training loss noisier than the evaluated one, and the network still learns.
#[test]
fn dropout_is_reproducible_regularises_and_learns() {
    let _guard = common::training_lock();
    let a = train_with_dropout(0.5, 3);
    let b = train_with_dropout(0.5, 3);
    let plain = train_with_dropout(0.0, 3);
    let bits = |h: &[EpochRecord]| -> Vec<u64> {
        h.iter()
            .flat_map(|r| [r.train_loss.to_bits(), r.test_loss.to_bits()])
            .collect()
    };
    assert_eq!(bits(&a), bits(&b), "bit-identical with the same seed");
    let (dropped, kept) = (&a[1], &plain[1]);
    assert!(dropped.test_acc.unwrap() > 0.9, "{a:?}");
    // Half the hidden units dropped while training: a clearly higher training loss.
    assert!(
        dropped.train_loss > 1.3 * kept.train_loss,
        "dropout {dropped:?} plain {kept:?}"
    );
}

/// Two overlapping Gaussian classes, the second rare (5%), as CSV: `x,y`.
fn write_imbalanced_csv(path: &std::path::Path, rows: usize, seed: u64) {
    let mut s = seed;
    let mut uniform = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut text = String::from("x,y\n");
    for i in 0..rows {
        let rare = i % 20 == 0;
        let normal = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
        let x = normal + if rare { 1.5 } else { 0.0 };
        text += &format!("{x:.5},{}\n", u8::from(rare));
    }
    std::fs::write(path, text).unwrap();
}

fn rare_class_recall(dir: &std::path::Path, weights: &str) -> f64 {
    let text = format!(
        "[data.csv]\ntrain = \"train.csv\"\ntest = \"test.csv\"\ntarget = [\"y\"]\n\
         classification = true\n[model]\nhidden = [8]\n[train]\nepochs = 15\nbatch_size = 50\n\
         {weights}\n[optimizer]\nkind = \"momentum\"\nlr = 0.05\n"
    );
    let loaded = common::loaded(&text, dir);
    let exp = Experiment::prepare(loaded).unwrap();
    let mut trainer = exp.trainer(exp.initial_state(), None).unwrap();
    trainer
        .fit(exp.sets(), &mut Silent, &AtomicBool::new(false))
        .unwrap();
    let net = &trainer.state.net;
    let mut evaluator = backprop::train::Evaluator::new(net, &exp.test, 1000);
    let report = backprop::eval::report::report(&mut evaluator, net, &exp.test, &exp.transform);
    report.classes[1].recall.unwrap()
}

/// Balanced class weights move the decision boundary towards the common class: the rare
/// class' recall rises from the unweighted model's.
#[test]
fn balanced_class_weights_raise_the_rare_class_recall() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    write_imbalanced_csv(&dir.path().join("train.csv"), 4000, 1);
    write_imbalanced_csv(&dir.path().join("test.csv"), 4000, 2);
    let plain = rare_class_recall(dir.path(), "");
    let balanced = rare_class_recall(dir.path(), "class_weights = \"balanced\"");
    let listed = rare_class_recall(dir.path(), "class_weights = [0.5263, 10.0]");
    assert!(plain < 0.3, "unweighted recall {plain}");
    assert!(
        balanced > 0.5 && listed > 0.5,
        "{plain} -> {balanced}, {listed}"
    );
}
