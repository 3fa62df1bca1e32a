//! `backprop lr-find`: the range test's suggestion lands near the rate a sweep of whole
//! training runs finds best, and the command writes its curve and nothing else.

mod common;

use backprop::commands::experiment::Experiment;
use backprop::train::Silent;
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn config_text(lr: f32) -> String {
    format!(
        "seed = 3\n[data]\ndir = \"{}\"\nmean = 0.1307\nstd = 0.3081\n[model]\nhidden = [100]\n\
         [train]\nepochs = 1\nbatch_size = 128\n[optimizer]\nkind = \"momentum\"\nlr = {lr}\n\
         momentum = 0.9\n",
        common::mnist_dir().display()
    )
}

/// Mean training loss over one epoch at a constant `lr`.
fn one_epoch_loss(dir: &Path, lr: f32) -> f64 {
    let exp = Experiment::prepare(common::loaded(&config_text(lr), dir)).unwrap();
    let mut trainer = exp.trainer(exp.initial_state(), None).unwrap();
    trainer
        .fit(exp.sets(), &mut Silent, &AtomicBool::new(false))
        .unwrap();
    trainer.state.history[0].train_loss
}

#[test]
fn the_suggestion_is_within_3x_of_the_good_rates_of_a_sweep() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = common::write_config(d, "c.toml", &config_text(0.01));
    let out = common::backprop()
        .args(["lr-find", "--config", "c.toml", "--json", "--steps", "250"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let found: serde_json::Value = serde_json::from_str(&common::stdout(&out)).unwrap();
    let suggested = found["suggestion"]["lr"].as_f64().unwrap();

    // The good rates, found the slow way: whole epochs at rates a factor 2 apart; good is
    // within 5% of the best epoch's loss.
    let rates = [0.005f32, 0.01, 0.02, 0.04, 0.08, 0.16];
    let losses: Vec<f64> = rates.iter().map(|&lr| one_epoch_loss(d, lr)).collect();
    let best = losses.iter().copied().fold(f64::INFINITY, f64::min);
    let good: Vec<f64> = (0..rates.len())
        .filter(|&i| losses[i] <= 1.05 * best)
        .map(|i| f64::from(rates[i]))
        .collect();
    let (low, high) = (good[0] / 3.0, good[good.len() - 1] * 3.0);
    assert!(
        (low..=high).contains(&suggested),
        "suggested {suggested:.3e}, good {good:?} ({rates:?} -> {losses:?}), {found}"
    );

    // The curve as CSV and PNG; nothing else written (no checkpoint).
    let csv = std::fs::read_to_string(d.join("lr-find.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("step,lr,loss,smoothed_loss"));
    assert_eq!(
        csv.lines().count() - 1,
        found["steps"].as_u64().unwrap() as usize
    );
    let png = std::fs::read(d.join("lr-find.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    let mut written: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(written, ["c.toml", "lr-find.csv", "lr-find.png"]);
    drop(config);
}

#[test]
fn bad_ranges_and_outputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::write_config(d, "c.toml", &config_text(0.01));
    let run = |args: &[&str]| {
        common::backprop()
            .arg("lr-find")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap()
    };
    let out = run(&["--config", "c.toml", "--start-lr", "1", "--end-lr", "0.1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stderr(&out).contains("--start-lr 1 must be below --end-lr 0.1"));
    let out = run(&["--config", "c.toml", "--plot", "curve.gif"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("curve.gif"),
        "{}",
        common::stderr(&out)
    );
    let out = run(&["--config", "c.toml", "--csv-out", "c.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("--csv-out"),
        "{}",
        common::stderr(&out)
    );
    assert!(std::fs::read_to_string(d.join("c.toml"))
        .unwrap()
        .contains("hidden = [100]"));
}
