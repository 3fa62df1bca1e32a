//! `backprop lr-find --config FILE`: the learning-rate range test ([`crate::train::lr_find`])
//! on the config's network, optimizer and data; prints a suggested lr and why, writes the
//! curve as CSV and as a plot.

use super::experiment::{default_threads, Experiment};
use super::thread_pool;
use crate::cli::LrFindArgs;
use crate::config;
use crate::output::{plan, plot};
use crate::train::lr_find::{range_test, Finding, RangeTest};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;

pub fn run(args: &LrFindArgs) -> Result<i32> {
    if args.start_lr >= args.end_lr {
        bail!(
            "--start-lr {} must be below --end-lr {}",
            args.start_lr,
            args.end_lr
        );
    }
    let loaded = config::load(&args.config)?;
    loaded
        .config
        .validate()
        .with_context(|| format!("invalid config {}", loaded.path.display()))?;
    check_outputs(args)?;
    let pool = thread_pool(loaded.config.threads.unwrap_or_else(default_threads))?;
    let exp = Experiment::prepare(loaded)?;
    let test = RangeTest {
        start: args.start_lr,
        end: args.end_lr,
        steps: args.steps,
        ..RangeTest::default()
    };
    let options = exp.trainer_options(None);
    let seed = exp.loaded.config.seed;
    let finding =
        pool.install(|| range_test(exp.initial_state(), exp.sets(), &options, seed, test));
    crate::atomic::write(&args.csv_out, curve_csv(&finding).as_bytes())
        .with_context(|| format!("cannot write {}", args.csv_out.display()))?;
    let title = format!(
        "lr range test: {}, {} batch {}",
        exp.arch.describe(),
        exp.loaded.config.optimizer.kind.name(),
        options.batch_size
    );
    plot::lr_range(&args.plot, &finding, &title)?;
    if args.json {
        println!("{}", summary_json(&finding));
    } else {
        print!("{}", summary(&finding, args));
    }
    Ok(if finding.suggestion.is_some() {
        0
    } else {
        super::exit::ERROR
    })
}

fn check_outputs(args: &LrFindArgs) -> Result<()> {
    let output = |flag: &str, path: &std::path::Path, is_plot| plan::Output {
        named_by: flag.into(),
        path: path.to_path_buf(),
        may_replace: None,
        is_plot,
    };
    let outputs = [
        output("--csv-out", &args.csv_out, false),
        output("--plot", &args.plot, true),
    ];
    let config = plan::Input {
        what: "the config".into(),
        path: args.config.clone(),
    };
    plan::check(&outputs, &[config])
}

fn curve_csv(finding: &Finding) -> String {
    let mut out = String::from("step,lr,loss,smoothed_loss\n");
    for (i, p) in finding.points.iter().enumerate() {
        let _ = writeln!(out, "{},{:e},{},{}", i + 1, p.lr, p.loss, p.smoothed);
    }
    out
}

fn summary(finding: &Finding, args: &LrFindArgs) -> String {
    let mut out = format!(
        "{} steps from lr {:.1e}; stopped: {}\n",
        finding.points.len(),
        args.start_lr,
        finding.stopped
    );
    match &finding.suggestion {
        Some(s) => {
            let _ = writeln!(out, "suggested lr: {:.2e} ({}: {})", s.lr, s.rule, s.reason);
        }
        None => {
            out += "no suggestion: the loss never fell steadily; widen --start-lr/--end-lr or \
                        add --steps\n"
        }
    }
    for s in &finding.alternatives {
        let _ = writeln!(
            out,
            "more cautious, {}: {:.2e} ({})",
            s.rule, s.lr, s.reason
        );
    }
    let _ = writeln!(
        out,
        "curve: {} and {}",
        args.csv_out.display(),
        args.plot.display()
    );
    out
}

fn summary_json(finding: &Finding) -> serde_json::Value {
    let pick = |s: &Option<crate::train::lr_find::Suggestion>| {
        s.as_ref()
            .map(|s| serde_json::json!({"lr": s.lr, "rule": s.rule, "reason": s.reason}))
    };
    serde_json::json!({
        "steps": finding.points.len(),
        "stopped": finding.stopped,
        "suggestion": pick(&finding.suggestion),
        "alternatives": finding.alternatives.iter().map(|s| pick(&Some(s.clone()))).collect::<Vec<_>>(),
    })
}
