//! The commands behind the command line: train, eval, predict, gradcheck.

use crate::checkpoint::{self, Checkpoint};
use crate::cli::{exit, BenchArgs, EvalArgs, GradcheckArgs, PredictArgs, TrainArgs};
use crate::config::{self, Loaded};
use crate::data::{float_dataset, Dataset, TargetData};
use crate::diagnostics;
use crate::eval::Evaluator;
use crate::idx::IdxFile;
use crate::loss::Score;
use crate::net::Network;
use crate::report::{self, Progress};
use crate::setup::{self, Experiment};
use crate::train::{EpochRecord, Observer, StopReason, TrainState};
use crate::{blas, plot, predict};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Steps between diagnostic probes (the first step of each epoch is always probed).
const PROBE_EVERY: usize = 50;

fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Sets BLAS threads and builds the rayon pool: one count for both, never more.
fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    blas::set_threads(threads);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start worker threads")
}

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

/// Prints, writes metrics and checkpoints as epochs finish.
struct RunObserver<'a> {
    exp: &'a Experiment,
    progress: Progress,
    quiet: bool,
    total_epochs: usize,
    warned: HashSet<String>,
}

impl RunObserver<'_> {
    fn warn_once(&mut self, message: String) {
        // One warning of each kind per run: key on the text before its first figure.
        let key: String = message
            .chars()
            .take_while(|c| !c.is_ascii_digit())
            .collect();
        if self.warned.insert(key) {
            self.progress.finish();
            report::warn(&message);
        }
    }
}

impl Observer for RunObserver<'_> {
    fn epoch_start(&mut self, epoch: usize, samples: usize, _lr: f32) {
        self.progress.start(epoch, samples);
    }

    fn batch(&mut self, samples_done: usize, running: &Score) {
        self.progress.update(samples_done, running);
    }

    fn epoch_end(&mut self, state: &TrainState, record: &EpochRecord) -> Result<()> {
        self.progress.finish();
        let out = &self.exp.loaded.config.output;
        if !self.quiet {
            println!("{}", report::epoch_line(record, self.total_epochs));
            if let (true, Some(d)) = (out.diagnostics, &record.diagnostics) {
                diagnostics::lines(d).iter().for_each(|l| println!("{l}"));
            }
        }
        for w in diagnostics::warnings(&state.history, &state.net, state.optimizer.steps) {
            self.warn_once(w);
        }
        if let Some(p) = &out.metrics {
            report::write_json_lines(p, &state.history)?;
        }
        if let Some(p) = &out.csv {
            report::write_csv(p, &state.history)?;
        }
        if let (Some(p), Some(every)) = (&out.save, out.checkpoint_every) {
            if record.epoch.is_multiple_of(every) {
                save(self.exp, state, p)?;
            }
        }
        Ok(())
    }
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
        report::warn(&format!(
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

fn load_for_training(args: &TrainArgs) -> Result<(Loaded, Option<Checkpoint>)> {
    let resumed = match &args.resume {
        Some(p) => Some(checkpoint::load(p)?),
        None => None,
    };
    let mut loaded = match (&args.config, &resumed, &args.resume) {
        (Some(path), _, _) => config::load(path)?,
        (None, Some(ck), Some(p)) => ck.loaded_config(p)?,
        _ => bail!("--config FILE is required (see backprop --help)"),
    };
    args.apply(&mut loaded);
    loaded.resolve_outputs();
    loaded
        .config
        .validate()
        .with_context(|| format!("invalid config {}", loaded.path.display()))?;
    Ok((loaded, resumed))
}

pub fn train(args: &TrainArgs, interrupt: &AtomicBool) -> Result<i32> {
    let (loaded, resumed) = load_for_training(args)?;
    let threads = loaded.config.threads.unwrap_or_else(setup::default_threads);
    let pool = thread_pool(threads)?;
    let exp = Experiment::prepare(loaded)?;
    exp.warnings.iter().for_each(|w| report::warn(w));
    let state = match (resumed, &args.resume) {
        (Some(ck), Some(p)) => resumed_state(&exp, ck, p)?,
        _ => exp.initial_state(),
    };
    let mut trainer = exp.trainer(state, Some(PROBE_EVERY))?;
    if !args.quiet {
        println!("{}", header(&exp, threads, trainer.batch_size()));
        if cfg!(debug_assertions) {
            report::warn("this is a debug build, many times slower: use cargo run --release");
        }
        if let Some(advice) = blas::core_advice() {
            report::warn(&advice);
        }
    }
    let total_epochs = trainer.rules.epochs;
    let mut observer = RunObserver {
        exp: &exp,
        progress: Progress::new(args.quiet, total_epochs),
        quiet: args.quiet,
        total_epochs,
        warned: HashSet::new(),
    };
    let reason = pool.install(|| trainer.fit(exp.sets(), &mut observer, interrupt))?;
    observer.progress.finish();
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
            report::warn(&format!("{e:#}"));
        }
    }
    if let Some(p) = &out.predictions {
        if exp.test.classes().is_none() {
            predict::write_regression_csv(p, &state.net, &exp.test, &exp.transform)?;
        } else {
            report::warn("output.predictions is for regression runs; skipped");
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
        report::duration(secs / state.history.len() as f64)
    );
}

/// The test set a checkpoint should be evaluated on.
fn checkpoint_test_set(
    ck: &Checkpoint,
    model: &Path,
    data_dir: Option<&PathBuf>,
) -> Result<Dataset> {
    let mut loaded = ck.loaded_config(model)?;
    if let Some(dir) = data_dir {
        crate::cli::TrainArgs {
            data_dir: Some(dir.clone()),
            ..Default::default()
        }
        .apply(&mut loaded);
    }
    let (_, test) = setup::load_data(&loaded)?;
    if test.width() != ck.state.net.arch.inputs {
        bail!(
            "{} has {} features per sample, the model {} takes {}",
            test.name,
            test.width(),
            model.display(),
            ck.state.net.arch.inputs
        );
    }
    Ok(test)
}

pub fn eval(args: &EvalArgs) -> Result<i32> {
    let ck = checkpoint::load(&args.model)?;
    let test = checkpoint_test_set(&ck, &args.model, args.data_dir.as_ref())?;
    let net = &ck.state.net;
    let transform = ck.scaling.transform();
    let report = Evaluator::new(net, &test, 1000).report(net, &test, &transform);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("model {} ({})", args.model.display(), net.arch.describe());
        println!("data  {}", test.name);
        print!("{}", report.table());
    }
    Ok(0)
}

pub fn predict(args: &PredictArgs) -> Result<i32> {
    let ck = checkpoint::load(&args.model)?;
    let net = &ck.state.net;
    let transform = ck.scaling.transform();
    if let Some(csv) = &args.csv_out {
        let test = checkpoint_test_set(&ck, &args.model, None)?;
        if test.classes().is_some() {
            bail!("--csv-out writes regression fits; this model classifies");
        }
        predict::write_regression_csv(csv, net, &test, &transform)?;
    }
    let is_image = |p: &PathBuf| {
        p.extension().is_some_and(|e| {
            let e = e.to_string_lossy().to_ascii_lowercase();
            matches!(e.as_str(), "png" | "jpg" | "jpeg")
        })
    };
    let width = net.arch.inputs;
    for input in &args.inputs {
        let (labels, bytes): (Vec<String>, Vec<u8>) = if is_image(input) {
            let b = predict::image_bytes(input, &net.arch.input_shape, args.invert)?;
            (vec![input.display().to_string()], b)
        } else {
            let file = IdxFile::open(input, &Default::default())?;
            if file.item_len() != width {
                bail!(
                    "{}: items have {} values ({:?}), the model takes {width}",
                    input.display(),
                    file.item_len(),
                    file.dims()
                );
            }
            let labels = (0..file.count())
                .map(|i| format!("{}[{i}]", input.display()))
                .collect();
            (labels, file.data().to_vec())
        };
        let mut x = vec![0.0f32; bytes.len()];
        for (row, src) in x.chunks_mut(width).zip(bytes.chunks(width)) {
            transform.bytes(row, src);
        }
        for (label, (class, p)) in labels.iter().zip(predict::classify(net, &x)) {
            println!("{label}\t{class}\t{p:.4}");
        }
    }
    Ok(0)
}

/// The first `samples` samples of `data`, transformed, cut to their first `inputs` features.
fn shrunk(
    data: &Dataset,
    transform: &crate::data::InputTransform,
    samples: usize,
    inputs: usize,
) -> Dataset {
    let width = data.width();
    let mut features = Vec::with_capacity(samples * inputs);
    let mut raw = vec![0.0f32; width];
    let mut row = vec![0.0f32; width];
    for i in 0..samples {
        data.raw_features(i, &mut raw);
        if data.is_bytes() {
            let bytes: Vec<u8> = raw.iter().map(|&v| v as u8).collect();
            transform.bytes(&mut row, &bytes);
        } else {
            transform.floats(&mut row, &raw);
        }
        features.extend_from_slice(&row[..inputs]);
    }
    let targets = match data.classes() {
        Some(classes) => TargetData::Classes {
            labels: crate::data::Labels::Owned((0..samples).map(|i| data.label(i)).collect()),
            classes,
        },
        None => TargetData::Values {
            values: (0..samples).flat_map(|i| data.values(i).to_vec()).collect(),
            width: data.target_width(),
        },
    };
    float_dataset(
        format!("{} (first {samples})", data.name),
        features,
        inputs,
        targets,
    )
}

pub fn gradcheck(args: &GradcheckArgs) -> Result<i32> {
    let loaded = config::load(&args.config)?;
    loaded
        .config
        .validate()
        .with_context(|| format!("invalid config {}", loaded.path.display()))?;
    thread_pool(loaded.config.threads.unwrap_or_else(setup::default_threads))?;
    let exp = Experiment::prepare(loaded)?;
    let samples = args.samples.clamp(1, exp.train.len());
    let inputs = args
        .inputs
        .unwrap_or(exp.train.width())
        .clamp(1, exp.train.width());
    let data = shrunk(&exp.train, &exp.transform, samples, inputs);
    let mut arch = exp.arch.clone();
    arch.inputs = inputs;
    arch.input_shape = vec![inputs];
    let cfg = &exp.loaded.config;
    let net = Network::initialised(arch, cfg.init(), cfg.model.bias_init, cfg.seed);
    let identity = crate::data::InputTransform::identity();
    let indices: Vec<usize> = (0..samples).collect();
    let checks =
        crate::gradcheck::check(&net, &data, &identity, &indices, args.per_tensor, cfg.seed);
    println!(
        "gradient check of {} on {samples} sample(s), central differences in f64",
        net.arch.describe()
    );
    println!(
        "{:<16} {:>8} {:>14} {:>14}",
        "tensor", "checked", "max abs err", "max rel err"
    );
    for c in &checks {
        println!(
            "{:<16} {:>8} {:>14.3e} {:>14.3e}",
            c.name, c.checked, c.max_abs_error, c.max_rel_error
        );
    }
    let worst = checks.iter().map(|c| c.max_rel_error).fold(0.0, f64::max);
    if worst <= args.threshold {
        println!(
            "OK: worst relative error {worst:.3e} <= {:.1e}",
            args.threshold
        );
        Ok(0)
    } else {
        println!(
            "FAILED: worst relative error {worst:.3e} > {:.1e}",
            args.threshold
        );
        Ok(exit::GRADCHECK_FAILED)
    }
}

#[derive(serde::Serialize)]
struct BenchReport {
    architecture: String,
    batch_size: usize,
    steps_per_epoch: usize,
    epochs: Vec<EpochRecord>,
    median_seconds_per_epoch: f64,
    floor_seconds_per_epoch: f64,
    ratio_to_floor: f64,
    median_seconds_per_step: f64,
    final_test_acc: Option<f64>,
    final_test_loss: f64,
    blas_core: String,
    blas_config: String,
    blas_threads: usize,
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

pub fn bench(args: &BenchArgs, interrupt: &AtomicBool) -> Result<i32> {
    let (loaded, _) = load_for_training(&args.train)?;
    let threads = loaded.config.threads.unwrap_or_else(setup::default_threads);
    let pool = thread_pool(threads)?;
    let exp = Experiment::prepare(loaded)?;
    let mut trainer = exp.trainer(exp.initial_state(), None)?;
    let batch = trainer.batch_size();
    let epochs = trainer.rules.epochs;
    let batches = crate::bench::epoch_batches(
        exp.train_indices.len(),
        batch,
        exp.loaded.config.train.drop_last,
    );
    // Each epoch is followed by a floor measurement, so both see the same machine state and
    // the ratio is taken pair by pair.
    let mut floors = Vec::with_capacity(epochs);
    for epoch in 1..=epochs {
        trainer.rules.epochs = epoch;
        let reason =
            pool.install(|| trainer.fit(exp.sets(), &mut crate::train::Silent, interrupt))?;
        match reason {
            StopReason::Diverged { detail, .. } => bail!("the benchmark run diverged: {detail}"),
            StopReason::Interrupted { .. } => bail!("interrupted"),
            _ if trainer.state.epochs_done() < epoch => break,
            _ => {}
        }
        floors.push(pool.install(|| {
            crate::bench::sgemm_floor(&trainer.state.net, &batches, args.floor_repeats)
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
        ratio_to_floor: ratio,
        median_seconds_per_step: med / batches.len() as f64,
        final_test_acc: last.test_acc,
        final_test_loss: last.test_loss,
        epochs: history,
        blas_core: blas::core_name(),
        blas_config: blas::config(),
        blas_threads: blas::threads(),
        rayon_threads: threads,
        profile: build_profile(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} | batch {batch} | {}",
            report.architecture,
            blas::describe()
        );
        println!(
            "epoch {:.4} s, sgemm floor {:.4} s (medians of {}), ratio {:.3} (median of the \
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
