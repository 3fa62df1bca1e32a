//! `backprop --config FILE`: train, report each epoch, save, plot.

use super::experiment::{self, default_threads, Experiment};
use super::{build_profile, exit, thread_pool};
use crate::cli::TrainArgs;
use crate::compute::coretype;
use crate::config::{self, Loaded};
use crate::data::{standard_paths, Source};
use crate::output::checkpoint::{self, Checkpoint, Periodic};
use crate::output::console::{self, Console};
use crate::output::diagnosis;
use crate::output::tensorboard::TensorBoard;
use crate::output::{metrics, plan, plot, predictions};
use crate::train::{DataFacts, Observer, Observers, StopReason, TrainState};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Steps between diagnostic probes (the first step of each epoch is always probed).
pub(super) const PROBE_EVERY: usize = 50;

pub(super) fn header(exp: &Experiment, threads: usize, batch: usize) -> String {
    let c = &exp.loaded.config;
    format!(
        "backprop {}: {} | {} train, {} validation, {} test samples, {} | batch {}, {} lr {}{} \
         | {}, {threads} rayon thread(s) | {} build",
        env!("CARGO_PKG_VERSION"),
        exp.arch.describe(),
        exp.train_indices.len(),
        exp.validation.len(),
        exp.test.len(),
        exp.input_path,
        batch,
        c.optimizer.kind.name(),
        c.optimizer.lr,
        loss_shaping(exp),
        coretype::describe(),
        build_profile()
    )
}

/// What changes the training loss or the passes: dropout, label smoothing, class weights.
fn loss_shaping(exp: &Experiment) -> String {
    let mut parts = String::new();
    let rates = exp.dropout_rates();
    if rates.iter().any(|&r| r > 0.0) {
        parts += &format!(", dropout {rates:?}");
    }
    let smoothing = exp.loaded.config.model.label_smoothing;
    if smoothing > 0.0 {
        parts += &format!(", label smoothing {smoothing}");
    }
    if !exp.class_weights.is_empty() {
        let w: Vec<String> = exp
            .class_weights
            .iter()
            .map(|w| format!("{w:.3}"))
            .collect();
        parts += &format!(", class weights [{}]", w.join(", "));
    }
    parts
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
pub(super) fn resumed_state(exp: &Experiment, ck: Checkpoint, path: &Path) -> Result<TrainState> {
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
        (None, Some(ck), Some(p)) => {
            let mut loaded = ck.loaded_config(p)?;
            forget_outputs(&mut loaded, p);
            loaded
        }
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

/// A resumed checkpoint's config keeps the outputs of the run that wrote it (often the
/// checkpoint itself): a resumed run writes only where this command line says.
fn forget_outputs(loaded: &mut Loaded, checkpoint: &Path) {
    let o = &mut loaded.config.output;
    let old: Vec<String> = [
        &o.metrics,
        &o.csv,
        &o.plot,
        &o.save,
        &o.predictions,
        &o.tensorboard,
    ]
    .into_iter()
    .flatten()
    .map(|p| p.display().to_string())
    .collect();
    if !old.is_empty() {
        console::warn(&format!(
            "the config stored in {} wrote to {}; a resumed run writes only to the files this \
             command line names (--save, --metrics-out, --csv-out, --plot, --tensorboard)",
            checkpoint.display(),
            old.join(", ")
        ));
    }
    (o.metrics, o.csv, o.plot, o.save, o.predictions) = (None, None, None, None, None);
    o.tensorboard = None;
}

/// Every path this run writes, with the flag or key that named it.
fn planned_outputs(args: &TrainArgs, loaded: &Loaded) -> Vec<plan::Output> {
    let o = &loaded.config.output;
    let named = |given: bool, flag: &str, key: &str| {
        if given {
            flag.to_string()
        } else {
            format!("output.{key} in {}", loaded.path.display())
        }
    };
    let list = [
        (
            args.metrics_out.is_some(),
            "--metrics-out",
            "metrics",
            &o.metrics,
        ),
        (args.csv_out.is_some(), "--csv-out", "csv", &o.csv),
        (args.plot.is_some(), "--plot", "plot", &o.plot),
        (args.save.is_some(), "--save", "save", &o.save),
        (false, "", "predictions", &o.predictions),
    ];
    list.into_iter()
        .filter_map(|(given, flag, key, path)| {
            Some(plan::Output {
                named_by: named(given, flag, key),
                path: path.clone()?,
                // Only an explicit --save may replace the checkpoint being resumed.
                may_replace: if given && key == "save" {
                    args.resume.clone()
                } else {
                    None
                },
                is_plot: key == "plot",
            })
        })
        .collect()
}

/// Every path this run reads.
fn planned_inputs(args: &TrainArgs, loaded: &Loaded) -> Vec<plan::Input> {
    let input = |what: &str, path: &Path| plan::Input {
        what: what.to_string(),
        path: path.to_path_buf(),
    };
    let mut list = Vec::new();
    if let Some(c) = &args.config {
        list.push(input("the config file", c));
    }
    if let Some(r) = &args.resume {
        list.push(input("the checkpoint being resumed", r));
    }
    match experiment::source(loaded) {
        Ok(Source::IdxDir(dir)) => {
            for p in standard_paths(&dir).into_iter().flatten() {
                list.push(input("a data file", &p));
            }
        }
        Ok(Source::IdxFiles(paths)) => {
            paths
                .iter()
                .for_each(|p| list.push(input("a data file", p)));
        }
        Ok(Source::Csv(csv)) => {
            list.push(input("the training data", &csv.train));
            if let Some(t) = &csv.test {
                list.push(input("the test data", t));
            }
        }
        _ => {}
    }
    list
}

/// The training data's figures for the diagnosis.
fn facts(exp: &Experiment) -> DataFacts {
    DataFacts::measure(&exp.train, &exp.transform, &exp.train_indices)
}

/// The observers of a training run: the console, then each file the config asks for.
pub(super) fn observers<'a>(
    exp: &'a Experiment,
    quiet: bool,
    total_epochs: usize,
) -> Result<Observers<'a>> {
    let out = &exp.loaded.config.output;
    let mut list: Vec<Box<dyn Observer + Send + 'a>> = vec![Box::new(
        Console::new(quiet, total_epochs, out.diagnostics).with_facts(facts(exp)),
    )];
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

/// Checks the paths the run reads and, if `writes`, those it writes (see [`plan`]).
pub(super) fn check_plan(args: &TrainArgs, loaded: &Loaded, writes: bool) -> Result<()> {
    let outputs = match writes {
        true => planned_outputs(args, loaded),
        false => Vec::new(),
    };
    plan::check(&outputs, &planned_inputs(args, loaded))?;
    if let (Some(p), None) = (&args.resume, &loaded.config.output.save) {
        console::warn(&format!(
            "no --save: the model resumed from {} will not be saved at the end; pass --save FILE \
             to keep it",
            p.display()
        ));
    }
    Ok(())
}

/// The experiment (its warnings told) and the trainer, fresh or resumed.
pub(super) fn prepare(
    args: &TrainArgs,
    loaded: Loaded,
    resumed: Option<Checkpoint>,
) -> Result<(Experiment, crate::train::Trainer)> {
    let exp = Experiment::prepare(loaded)?;
    exp.warnings.iter().for_each(|w| console::warn(w));
    let state = match (resumed, &args.resume) {
        (Some(ck), Some(p)) => resumed_state(&exp, ck, p)?,
        _ => exp.initial_state(),
    };
    let trainer = exp.trainer(state, Some(PROBE_EVERY))?;
    Ok((exp, trainer))
}

/// The run's header line, then what the build and the CPU ask of the user.
pub(super) fn announce(header: &str) {
    println!("{header}");
    if cfg!(debug_assertions) {
        console::warn("this is a debug build, many times slower: use cargo run --release");
    }
    if let Some(advice) = coretype::advice() {
        console::warn(&advice);
    }
}

pub fn run(args: &TrainArgs, interrupt: &AtomicBool) -> Result<i32> {
    let (loaded, resumed) = load_for_training(args)?;
    check_plan(args, &loaded, true)?;
    let threads = loaded.config.threads.unwrap_or_else(default_threads);
    let pool = thread_pool(threads)?;
    let (exp, mut trainer) = prepare(args, loaded, resumed)?;
    if !args.quiet {
        announce(&header(&exp, threads, trainer.batch_size()));
    }
    let mut observers = observers(&exp, args.quiet, trainer.rules.epochs)?;
    let reason = pool.install(|| trainer.fit(exp.sets(), &mut observers, interrupt));
    observers.run_end();
    match reason {
        Ok(reason) => finish(&exp, &trainer.state, &reason),
        Err(e) => Err(rescue(&exp, &trainer.state, e)),
    }
}

/// Saves the model to `path`, or elsewhere if that fails; the error says where it went.
fn save_or_rescue(exp: &Experiment, state: &TrainState, path: &Path) -> Result<()> {
    let (at, why) = plan::save_rescued(path, |p| save(exp, state, p));
    match (at, why) {
        (_, None) => Ok(()),
        (Some(at), Some(e)) => Err(e.context(format!(
            "the model after epoch {} was saved to {} instead; continue with: backprop \
             --resume {}",
            state.epochs_done(),
            at.display(),
            at.display()
        ))),
        (None, Some(e)) => Err(e.context("the model could not be saved anywhere")),
    }
}

/// A run stopped by a failing output (a folder made read-only mid-run, a full disk): the
/// model is still saved, where it was going or elsewhere, and the error says where.
pub(super) fn rescue(
    exp: &Experiment,
    state: &TrainState,
    failure: anyhow::Error,
) -> anyhow::Error {
    if state.epochs_done() == 0 {
        return failure;
    }
    let target = exp.loaded.config.output.save.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("backprop-{}.safetensors", std::process::id()))
    });
    let (at, _) = plan::save_rescued(&target, |p| save(exp, state, p));
    match at {
        Some(at) => failure.context(format!(
            "training stopped after epoch {}; the model is saved in {}",
            state.epochs_done(),
            at.display()
        )),
        None => failure.context("training stopped, and the model could not be saved anywhere"),
    }
}

/// Saves, plots and reports after the loop; returns the exit status.
pub(super) fn finish(exp: &Experiment, state: &TrainState, reason: &StopReason) -> Result<i32> {
    let out = &exp.loaded.config.output;
    let done = state.epochs_done();
    let diverged = matches!(reason, StopReason::Diverged { .. });
    if let (Some(p), true) = (&out.save, done > 0) {
        // After a divergence an existing checkpoint is the last good one: keep it as it is.
        if !diverged || !p.exists() {
            save_or_rescue(exp, state, p)?;
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
            let stopped = format!("interrupted in epoch {epoch} after {batches_done} batch(es)");
            match (&out.save, done) {
                (_, 0) => eprintln!("{stopped}, before any epoch completed: nothing was saved"),
                (None, _) => eprintln!(
                    "{stopped}; the model after epoch {done} was not saved (no --save given)"
                ),
                (Some(p), _) => eprintln!(
                    "{stopped}; the model as it was after epoch {done} is saved in {0}; continue \
                     with: backprop --resume {0} --epochs {1}",
                    p.display(),
                    exp.loaded.config.train.epochs
                ),
            }
            return Ok(exit::INTERRUPTED);
        }
        StopReason::Diverged {
            epoch,
            batch,
            detail,
        } => {
            let lr = exp.loaded.config.optimizer.lr;
            let verdict = diagnosis::on_divergence(*epoch, lr, &facts(exp), detail);
            eprintln!(
                "error: training diverged in epoch {epoch}, batch {batch} (lr {lr}): {}",
                verdict.line()
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
    let timed = match (last.time_to_98, last.test_acc) {
        (Some(t), _) => {
            let epoch = state.history.iter().position(|r| r.time_to_98.is_some());
            format!(
                "; 98% after {} (epoch {})",
                console::duration(t),
                epoch.map_or(0, |e| e + 1)
            )
        }
        (None, Some(_)) => "; 98% not reached".to_string(),
        (None, None) => String::new(),
    };
    println!(
        "result: test loss {:.5}{acc} after {} epochs ({why}); training {}/epoch{timed}",
        last.test_loss,
        last.epoch,
        console::duration(secs / state.history.len() as f64)
    );
}
