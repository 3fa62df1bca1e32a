//! `backprop trace`: record one training step's tensors (`--config ... --out`), or compare a
//! hand-written step's tensors with ours (`--compare THEIRS --against OURS`).

use super::experiment::{default_threads, Experiment};
use super::{exit, thread_pool};
use crate::cli::TraceArgs;
use crate::config::{self, Overrides};
use crate::data::SparseInput;
use crate::eval::trace::record::{record, StepPlan, FORMAT};
use crate::eval::trace::reference::{recompute, StepSettings};
use crate::eval::trace::{compare, file, Trace};
use crate::optim::Hyper;
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

pub fn run(args: &TraceArgs) -> Result<i32> {
    match (&args.config, &args.compare, &args.against, &args.out) {
        (Some(c), _, _, Some(out)) => write(c, args, out).map(|()| 0),
        (None, Some(theirs), Some(ours), _) => check(theirs, ours, args.tolerance),
        _ => bail!("use --config FILE --out STEP.safetensors, or --compare THEIRS --against OURS"),
    }
}

#[derive(Deserialize)]
struct OptimizerMeta {
    hyper: Hyper,
    steps: u64,
}

fn meta<'a>(trace: &'a Trace, key: &str) -> Result<&'a str> {
    trace
        .metadata
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| anyhow!("the trace has no `{key}` metadata"))
}

/// `trace` recomputed in f64 from what its step read.
fn in_f64(trace: &Trace) -> Result<Trace> {
    let arch = serde_json::from_str(meta(trace, "architecture")?)?;
    let opt: OptimizerMeta = serde_json::from_str(meta(trace, "optimizer")?)?;
    let settings = StepSettings {
        arch: &arch,
        hyper: opt.hyper,
        steps_before: opt.steps,
        lr: meta(trace, "lr")?.parse()?,
        label_smoothing: meta(trace, "label_smoothing")?.parse()?,
    };
    recompute(trace, &settings)
}

fn write(config_path: &Path, args: &TraceArgs, out: &Path) -> Result<()> {
    let (step, f64) = (args.step, args.f64);
    let mut loaded = config::load(config_path)?;
    let overrides = Overrides {
        data_dir: args.data_dir.clone(),
        ..Overrides::default()
    };
    overrides.apply(&mut loaded);
    loaded
        .config
        .validate()
        .with_context(|| format!("invalid config {}", loaded.path.display()))?;
    // The trace reads its batch dense: the tensors are the same whichever path trained.
    loaded.config.train.sparse_input = SparseInput::Off;
    refuse_untraced(&loaded.config)?;
    let pool = thread_pool(loaded.config.threads.unwrap_or_else(default_threads))?;
    let exp = Experiment::prepare(loaded)?;
    let cfg = &exp.loaded.config;
    let schedule = cfg.schedule();
    let plan = StepPlan {
        sets: exp.sets(),
        schedule: &schedule,
        seed: cfg.seed,
        batch_size: cfg.train.batch_size,
        drop_last: cfg.train.drop_last,
        label_smoothing: cfg.model.label_smoothing,
    };
    let mut state = exp.initial_state();
    let trace = pool.install(|| record(&mut state, &plan, step))?;
    let trace = if f64 { in_f64(&trace)? } else { trace };
    file::save(&trace, out, f64)?;
    println!(
        "step {step} (epoch {}, batch {}, lr {}, {} samples, loss {:.6}): {} tensors in {} ({})",
        meta(&trace, "epoch")?,
        meta(&trace, "batch")?,
        meta(&trace, "lr")?,
        trace.get("input").map_or(0, |t| t.dims().0),
        trace.get("loss").map_or(f64::NAN, |t| t.data[0]),
        trace.tensors.len(),
        out.display(),
        if f64 { "float64" } else { "float32" }
    );
    Ok(())
}

fn check(theirs: &Path, ours: &Path, tolerance: f64) -> Result<i32> {
    let ours_trace = file::load(ours)?;
    if ours_trace.metadata.get("format").map(String::as_str) != Some(FORMAT) {
        bail!(
            "{}: not a trace written by `backprop trace --out` (no `format = {FORMAT}` metadata)",
            ours.display()
        );
    }
    let theirs_trace = file::load(theirs)?;
    let c = compare::compare(&theirs_trace, &ours_trace, tolerance);
    compare::report(&c).iter().for_each(|l| println!("{l}"));
    Ok(if c.agrees() { 0 } else { exit::TRACE_DIFFERS })
}

/// What a trace does not record yet: a step it wrote would not be the step the run takes.
fn refuse_untraced(cfg: &crate::config::Config) -> Result<()> {
    if cfg.model.dropout.as_slice().iter().any(|&r| r > 0.0) {
        bail!(
            "model.dropout: a trace does not record dropout masks yet; trace the step with \
             dropout = 0 (a hand-written step is best compared without dropout anyway)"
        );
    }
    if cfg.train.class_weights.is_some() {
        bail!(
            "train.class_weights: a trace does not record class weights yet; trace the step \
             without them"
        );
    }
    Ok(())
}
