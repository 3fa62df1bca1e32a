//! `backprop --config FILE`: train, report each epoch, save, plot.

use super::experiment::{default_threads, Experiment};
use super::{build_profile, exit, thread_pool};
use crate::cli::TrainArgs;
use crate::compute::blas;
use crate::config::{self, Loaded};
use crate::output::checkpoint::{self, Checkpoint, Periodic};
use crate::output::console::{self, Console};
use crate::output::tensorboard::TensorBoard;
use crate::output::{metrics, plot, predictions};
use crate::train::{Observer, Observers, StopReason, TrainState};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Steps between diagnostic probes (the first step of each epoch is always probed).
const PROBE_EVERY: usize = 50;

fn header(exp: &Experiment, threads: usize, batch: usize) -> String {
    let c = &exp.loaded.config;
    format!(
        "backprop {}: {} | {} train, {} validation, {} test samples | batch {}, {} lr {} | {}, \
         {threads} rayon thread(s) | {} build",
        env!("CARGO_PKG_VERSION"),
        exp.arch.describe(),
        exp.train_indices.len(),
        exp.validation.len(),
        exp.test.len(),
        batch,
        c.optimizer.kind.name(),
        c.optimizer.lr,
        blas::describe(),
        build_profile()
    )
}

fn save(exp: &Experiment, state: &TrainState, path: &Path) -> Result<()> {
    checkpoint::save(
        path,
        state,
        &exp.scaling,
        exp.loaded.config.seed,
        Some(&exp.loaded),
    )
}

/// The model and optimizer of a checkpoint, checked against the config that continues it.
fn resumed_state(exp: &Experiment, ck: Checkpoint, path: &Path) -> Result<TrainState> {
    let mut state = ck.state;
    if state.net.arch != exp.arch {
        bail!(
            "{} holds a {} network, but the config describes {}",
            path.display(),
            state.net.arch.describe(),
            exp.arch.describe()
        );
    }
    let hyper = exp.loaded.config.hyper();
    if hyper.kind != state.optimizer.hyper.kind {
        bail!(
            "{} was trained with optimizer {}, the config asks for {}; resuming needs the same kind",
            path.display(),
            state.optimizer.hyper.kind.name(),
            hyper.kind.name()
        );
    }
    if ck.scaling != exp.scaling {
        bail!(
            "{} was trained on inputs scaled as {:?}, the config scales them as {:?}",
            path.display(),
            ck.scaling,
            exp.scaling
        );
    }
    if ck.seed != exp.loaded.config.seed {
        console::warn(&format!(
            "{} was trained with seed {}, this run uses {}: shuffles will differ from an \
             uninterrupted run",
            path.display(),
            ck.seed,
            exp.loaded.config.seed
        ));
    }
    if state.epochs_done() >= exp.loaded.config.train.epochs {
        bail!(
            "{} already has {} epochs; --epochs is the run's total, so pass more than that",
            path.display(),
            state.epochs_done()
        );
    }
    state.optimizer.hyper = hyper;
    Ok(state)
}

/// The config (from `--config`, or the one a resumed checkpoint holds) with the command
/// line's overrides, validated; and the checkpoint being resumed.
pub(super) fn load_for_training(args: &TrainArgs) -> Result<(Loaded, Option<Checkpoint>)> {
    let resumed = match &args.resume {
        Some(p) => Some(checkpoint::load(p)?),
        None => None,
    };
    let mut loaded = match (&args.config, &resumed, &args.resume) {
        (Some(path), _, _) => config::load(path)?,
        (None, Some(ck), Some(p)) => ck.loaded_config(p)?,
        _ => bail!("--config FILE is required (see backprop --help)"),
    };
    args.overrides().apply(&mut loaded);
    loaded.resolve_outputs();
    loaded
        .config
        .validate()
        .with_context(|| format!("invalid config {}", loaded.path.display()))?;
    Ok((loaded, resumed))
}

/// The observers of a training run: the console, then each file the config asks for.
fn observers<'a>(exp: &'a Experiment, quiet: bool, total_epochs: usize) -> Result<Observers<'a>> {
    let out = &exp.loaded.config.output;
    let mut list: Vec<Box<dyn Observer + Send + 'a>> =
        vec![Box::new(Console::new(quiet, total_epochs, out.diagnostics))];
    if let Some(p) = &out.metrics {
        list.push(Box::new(metrics::JsonLines(p.clone())));
    }
    if let Some(p) = &out.csv {
        list.push(Box::new(metrics::Csv(p.clone())));
    }
    if let (Some(p), Some(every)) = (&out.save, out.checkpoint_every) {
        list.push(Box::new(Periodic {
            path: p.clone(),
            every,
            scaling: exp.scaling,
            seed: exp.loaded.config.seed,
            loaded: exp.loaded.clone(),
        }));
    }
    if let Some(dir) = &out.tensorboard {
        let loaded = &exp.loaded;
        let run = loaded
            .path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy();
        let config = toml::to_string(&loaded.config)?;
        list.push(Box::new(TensorBoard::create(dir, &run, &config)?));
    }
    Ok(Observers(list))
}

pub fn run(args: &TrainArgs, interrupt: &AtomicBool) -> Result<i32> {
    let (loaded, resumed) = load_for_training(args)?;
    let threads = loaded.config.threads.unwrap_or_else(default_threads);
    let pool = thread_pool(threads)?;
    let exp = Experiment::prepare(loaded)?;
    exp.warnings.iter().for_each(|w| console::warn(w));
    let state = match (resumed, &args.resume) {
        (Some(ck), Some(p)) => resumed_state(&exp, ck, p)?,
        _ => exp.initial_state(),
    };
    let mut trainer = exp.trainer(state, Some(PROBE_EVERY))?;
    if !args.quiet {
        println!("{}", header(&exp, threads, trainer.batch_size()));
        if cfg!(debug_assertions) {
            console::warn("this is a debug build, many times slower: use cargo run --release");
        }
        if let Some(advice) = blas::core_advice() {
            console::warn(&advice);
        }
    }
    let mut observers = observers(&exp, args.quiet, trainer.rules.epochs)?;
    let reason = pool.install(|| trainer.fit(exp.sets(), &mut observers, interrupt));
    observers.run_end();
    let reason = reason?;
    finish(&exp, &trainer.state, &reason)
}

/// Saves, plots and reports after the loop; returns the exit status.
fn finish(exp: &Experiment, state: &TrainState, reason: &StopReason) -> Result<i32> {
    let out = &exp.loaded.config.output;
    let done = state.epochs_done();
    let diverged = matches!(reason, StopReason::Diverged { .. });
    if let (Some(p), true) = (&out.save, done > 0) {
        // After a divergence an existing checkpoint is the last good one: keep it as it is.
        if !diverged || !p.exists() {
            save(exp, state, p)?;
        }
    }
    if let (Some(p), true) = (&out.plot, done > 0) {
        let title = format!("{} on {}", exp.arch.describe(), exp.train.name);
        if let Err(e) = plot::learning_curves(p, &state.history, &title) {
            console::warn(&format!("{e:#}"));
        }
    }
    if let Some(p) = &out.predictions {
        if exp.test.classes().is_none() {
            predictions::write_regression_csv(p, &state.net, &exp.test, &exp.transform)?;
        } else {
            console::warn("output.predictions is for regression runs; skipped");
        }
    }
    match reason {
        StopReason::Interrupted {
            epoch,
            batches_done,
        } => {
            eprintln!(
                "interrupted in epoch {epoch} after {batches_done} batch(es); the model is kept \
                 as it was after epoch {done}"
            );
            if let (Some(p), true) = (&out.save, done > 0) {
                eprintln!(
                    "saved to {0}; continue with: backprop --resume {0} --epochs {1}",
                    p.display(),
                    exp.loaded.config.train.epochs
                );
            }
            return Ok(exit::INTERRUPTED);
        }
        StopReason::Diverged {
            epoch,
            batch,
            detail,
        } => {
            eprintln!(
                "error: training diverged in epoch {epoch}, batch {batch}: {detail}. The learning \
                 rate ({}) is most likely too high: try {}",
                exp.loaded.config.optimizer.lr,
                exp.loaded.config.optimizer.lr / 10.0
            );
            if let (Some(p), true) = (&out.save, done > 0) {
                eprintln!(
                    "the last good state (after epoch {done}) is in {}",
                    p.display()
                );
            }
            return Ok(exit::DIVERGED);
        }
        _ => {}
    }
    print_result(state, reason);
    Ok(0)
}

fn print_result(state: &TrainState, reason: &StopReason) {
    let Some(last) = state.history.last() else {
        return;
    };
    let why = match reason {
        StopReason::TargetAccuracy { accuracy } => {
            format!("target accuracy reached ({:.2}%)", 100.0 * accuracy)
        }
        StopReason::TargetLoss { loss } => format!("target loss reached ({loss:.5})"),
        StopReason::Patience { best_epoch } => {
            format!("no improvement since epoch {best_epoch}")
        }
        _ => "all epochs done".to_string(),
    };
    let secs: f64 = state.history.iter().map(|r| r.seconds).sum();
    let acc = last.test_acc.map_or(String::new(), |a| {
        format!(", test accuracy {:.2}%", 100.0 * a)
    });
    println!(
        "result: test loss {:.5}{acc} after {} epochs ({why}); training {}/epoch",
        last.test_loss,
        last.epoch,
        console::duration(secs / state.history.len() as f64)
    );
}
