//! The classic hand-written-backprop exercises, each trained from its shipped config to the
//! threshold the README promises.

mod common;

use backprop::commands::experiment::Experiment;
use backprop::config;
use backprop::train::{EpochRecord, Silent, StopReason, Trainer};
use backprop::train::{Evaluator, Subset};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// Trains `configs/<name>` with `edit` applied; returns the experiment and the trainer.
fn train(name: &str, edit: impl FnOnce(&mut config::Loaded)) -> (Experiment, Trainer, StopReason) {
    let mut loaded = config::load(&common::repo().join("configs").join(name)).unwrap();
    edit(&mut loaded);
    loaded.config.validate().unwrap();
    let exp = Experiment::prepare(loaded).unwrap();
    let mut trainer = exp.trainer(exp.initial_state(), None).unwrap();
    let reason = trainer
        .fit(exp.sets(), &mut Silent, &AtomicBool::new(false))
        .unwrap();
    (exp, trainer, reason)
}

fn last(t: &Trainer) -> &EpochRecord {
    t.state.history.last().unwrap()
}

/// The main job: 98.51% at the end and 98.07% at epoch 2 on the development machine (Zen 3,
/// OpenBLAS core Zen); another CPU's kernels round differently and move such figures by about
/// 0.1 point, hence the margins. The time to 98% is recorded at the first epoch there.
#[test]
fn the_main_config_passes_98_3_percent_and_times_its_way_to_98() {
    let _guard = common::training_lock();
    let (_, t, _) = train("mnist_300x300.toml", |_| {});
    let history = &t.state.history;
    let acc = last(&t).test_acc.unwrap();
    assert!(acc >= 0.983, "{acc}");
    let second = history[1].test_acc.unwrap();
    assert!(second >= 0.978, "epoch 2: {second}");
    let first = history
        .iter()
        .position(|r| r.test_acc.unwrap() >= 0.98)
        .unwrap();
    let elapsed: f64 = history[..=first].iter().map(|r| r.seconds).sum();
    assert!(history[..first].iter().all(|r| r.time_to_98.is_none()));
    for r in &history[first..] {
        assert!(
            (r.time_to_98.unwrap() - elapsed).abs() < 1e-9,
            "{history:?}"
        );
    }
}

#[test]
fn mnist_96_reaches_the_seeds_97_5_percent_and_stops_early() {
    let _guard = common::training_lock();
    let (_, t, reason) = train("mnist_96.toml", |_| {});
    // The seed reports 97.58% after 50 epochs; the stop rule watches a validation split.
    let acc = last(&t).test_acc.unwrap();
    assert!(acc >= 0.975, "{acc}");
    assert!(
        matches!(reason, StopReason::TargetAccuracy { .. }),
        "{reason:?}"
    );
    assert!(t.state.epochs_done() < 50);
}

#[test]
fn mnist_two_sigmoid_layers_with_l2_reach_97_percent() {
    let _guard = common::training_lock();
    let (exp, t, _) = train("mnist_sigmoid_l2.toml", |_| {});
    assert!(exp.loaded.config.optimizer.weight_decay > 0.0);
    let acc = last(&t).test_acc.unwrap();
    assert!(acc >= 0.970, "{acc}");
}

#[test]
fn fashion_mnist_300x300_reaches_89_5_percent() {
    let Some(dir) = common::fashion_dir() else {
        return common::missing_prerequisite(
            "Fashion-MNIST, in ../shared/datasets or /usr/share/datasets (package dataset-fashion-mnist)",
        );
    };
    let _guard = common::training_lock();
    let (exp, t, _) = train("fashion_300x300.toml", |l| {
        l.config.data.dir = Some(dir.clone());
    });
    assert_eq!(exp.train.len(), 60_000);
    assert_eq!(exp.train.class_counts(), vec![6000; 10]);
    let acc = last(&t).test_acc.unwrap();
    assert!(acc >= 0.895, "{acc}");
}

/// Seed 001's identity exercise: 1-3-1 tanh, online, learns tanh(x) (with bias units);
/// the seed's check is the output at x = -2.
#[test]
fn the_identity_exercise_learns_tanh_and_gets_x_minus_2_right() {
    let (exp, t, _) = train("identity_tanh.toml", |l| l.config.output.predictions = None);
    assert_eq!(
        exp.arch.describe(),
        "1-3-1 (tanh, tanh; mean_squared_error)"
    );
    assert_eq!(exp.loaded.config.train.batch_size, 1, "online training");
    let mse = last(&t).test_loss;
    assert!(mse < 2e-4, "{mse}");
    // No input scaling in this config: the network reads x itself.
    let net = &t.state.net;
    let mut acts = backprop::model::Activations::new(&net.arch, 1);
    acts.input_mut(1)[0] = -2.0;
    net.forward(&mut acts, 1, backprop::model::Input::Dense);
    let prediction = acts.output(1)[[0, 0]];
    assert!((prediction - (-2f32).tanh()).abs() < 0.03, "{prediction}");
}

#[test]
fn the_sine_fit_is_within_0_01_of_the_noiseless_curve() {
    let dir = tempfile::tempdir().unwrap();
    let csv: PathBuf = dir.path().join("fit.csv");
    let (exp, t, _) = train("sine.toml", |l| {
        l.config.output.predictions = Some(csv.clone())
    });
    assert_eq!(exp.loaded.config.train.batch_size, 1, "online training");
    let mse = last(&t).test_loss;
    assert!(mse <= 0.01, "{mse}");
    // The same figure from the written predictions, against sin(x) itself.
    backprop::output::predictions::write_regression_csv(
        &csv,
        &t.state.net,
        &exp.test,
        &exp.transform,
    )
    .unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("x,target,prediction"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 200);
    let mse_csv = rows
        .iter()
        .map(|r| (r[2] - r[0].sin()).powi(2))
        .sum::<f64>()
        / 200.0;
    assert!((mse_csv - mse).abs() < 1e-5, "{mse_csv} vs {mse}");
    assert!((rows[199][0] - 4.0 * std::f64::consts::PI).abs() < 1e-4);
}

#[test]
fn xor_is_solved_for_at_least_9_of_10_seeds() {
    let mut solved = 0;
    for seed in 1..=10 {
        let (exp, t, _) = train("xor.toml", |l| l.config.seed = seed);
        let net = &t.state.net;
        let mut outputs = Vec::new();
        let score = Evaluator::new(net, &exp.test, 4).run(
            net,
            &exp.test,
            &exp.transform,
            Subset::All,
            |ix, out| {
                for (&i, row) in ix.iter().zip(out.rows()) {
                    outputs.push((exp.test.values(i)[0], row[0]));
                }
            },
        );
        let right_side = outputs.iter().all(|(target, out)| target * out > 0.0);
        if right_side && score.mean_loss() <= 0.01 {
            solved += 1;
        }
    }
    eprintln!("XOR solved for {solved} of 10 seeds");
    assert!(solved >= 9, "solved {solved} of 10");
}

#[test]
fn a_users_csv_table_trains_through_the_same_path_and_predictions_are_written() {
    // y = 2a - b + 0.5 and a class label from its sign, as a user's small table.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b,y\n");
    for i in 0..400 {
        let a = (i % 20) as f32 / 10.0 - 1.0;
        let b = (i / 20) as f32 / 10.0 - 1.0;
        text += &format!("{a},{b},{}\n", 2.0 * a - b + 0.5);
    }
    std::fs::write(dir.path().join("table.csv"), text).unwrap();
    let config = common::write_config(
        dir.path(),
        "csv.toml",
        "[data]\nvalidation_split = 0.2\n[data.csv]\ntrain = \"table.csv\"\ntarget = [\"y\"]\ntest_fraction = 0.25\n\
         [model]\nhidden = [8]\nactivation = \"tanh\"\nloss = \"mean_squared_error\"\n\
         [train]\nepochs = 300\nbatch_size = 16\ntarget_loss = 0.001\n\
         [optimizer]\nkind = \"adam\"\nlr = 0.01\n[output]\npredictions = \"fit.csv\"\n",
    );
    let out = common::run(&["--config", config.to_str().unwrap(), "--quiet"]);
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(stdout.contains("target loss reached"), "{stdout}");
    let fit = std::fs::read_to_string(dir.path().join("fit.csv")).unwrap();
    let mut lines = fit.lines();
    assert_eq!(lines.next(), Some("x0,x1,target,prediction"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 100, "a quarter of 400 rows held out");
    for r in &rows {
        assert!(
            (r[2] - (2.0 * r[0] - r[1] + 0.5)).abs() < 1e-5,
            "targets are the table's"
        );
    }
    let mse = rows.iter().map(|r| (r[3] - r[2]).powi(2)).sum::<f64>() / rows.len() as f64;
    assert!(mse < 0.01, "held-out MSE {mse}");
}
