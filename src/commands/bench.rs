//! `backprop bench --config FILE`: seconds per training epoch against the same epoch's
//! products floor (`sgemm` and the sparse kernels), measured pair by pair.

use super::experiment::{default_threads, Experiment};
use super::train::load_for_training;
use super::{build_profile, thread_pool};
use crate::cli::BenchArgs;
use crate::compute::{blas, coretype};
use crate::eval::bench::{epoch_batches, products_floor};
use crate::train::{EpochRecord, Silent, StopReason};
use anyhow::{bail, Context, Result};
use std::sync::atomic::AtomicBool;

#[derive(serde::Serialize)]
struct BenchReport {
    architecture: String,
    batch_size: usize,
    steps_per_epoch: usize,
    epochs: Vec<EpochRecord>,
    median_seconds_per_epoch: f64,
    floor_seconds_per_epoch: f64,
    /// Which first-layer path ran, and why.
    input_path: String,
    ratio_to_floor: f64,
    median_seconds_per_step: f64,
    final_test_acc: Option<f64>,
    final_test_loss: f64,
    blas_core: String,
    blas_config: String,
    rayon_threads: usize,
    profile: &'static str,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn run(args: &BenchArgs, interrupt: &AtomicBool) -> Result<i32> {
    let (loaded, _) = load_for_training(&args.train)?;
    let threads = loaded.config.threads.unwrap_or_else(default_threads);
    let pool = thread_pool(threads)?;
    let exp = Experiment::prepare(loaded)?;
    let mut trainer = exp.trainer(exp.initial_state(), None)?;
    let batch = trainer.batch_size();
    let epochs = trainer.rules.epochs;
    let batches = epoch_batches(
        exp.train_indices.len(),
        batch,
        exp.loaded.config.train.drop_last,
    );
    // Each epoch is followed by a floor measurement, so both see the same machine state and
    // the ratio is taken pair by pair.
    let mut floors = Vec::with_capacity(epochs);
    for epoch in 1..=epochs {
        trainer.rules.epochs = epoch;
        let reason = pool.install(|| trainer.fit(exp.sets(), &mut Silent, interrupt))?;
        match reason {
            StopReason::Diverged { detail, .. } => bail!("the benchmark run diverged: {detail}"),
            StopReason::Interrupted { .. } => {
                eprintln!("interrupted: no benchmark result");
                return Ok(super::exit::INTERRUPTED);
            }
            _ if trainer.state.epochs_done() < epoch => break,
            _ => {}
        }
        floors.push(pool.install(|| {
            products_floor(&trainer.state.net, &exp.train, &batches, args.floor_repeats)
        }));
    }
    let history = trainer.state.history.clone();
    let last = history.last().context("no epoch completed")?;
    let med = median(history.iter().map(|r| r.seconds).collect());
    let floor = median(floors.clone());
    let ratio = median(
        history
            .iter()
            .zip(&floors)
            .map(|(r, f)| r.seconds / f)
            .collect(),
    );
    let report = BenchReport {
        architecture: exp.arch.describe(),
        batch_size: batch,
        steps_per_epoch: batches.len(),
        median_seconds_per_epoch: med,
        floor_seconds_per_epoch: floor,
        input_path: exp.input_path.clone(),
        ratio_to_floor: ratio,
        median_seconds_per_step: med / batches.len() as f64,
        final_test_acc: last.test_acc,
        final_test_loss: last.test_loss,
        epochs: history,
        blas_core: blas::core_name(),
        blas_config: blas::config(),
        rayon_threads: threads,
        profile: build_profile(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} | batch {batch} | {}",
            report.architecture,
            coretype::describe()
        );
        println!(
            "epoch {:.4} s, products floor {:.4} s (medians of {}), ratio {:.3} (median of the \
             epoch/floor pairs); {:.2} us/step",
            med,
            floor,
            report.epochs.len(),
            report.ratio_to_floor,
            1e6 * report.median_seconds_per_step
        );
    }
    Ok(0)
}
