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
    assert!(history[0].train_loss < 0.5, "{history:?}");
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
