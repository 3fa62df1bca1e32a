//! The command line's definitions (clap): `backprop --config FILE` trains; `eval`,
//! `predict`, `gradcheck`, `bench` and `export` are subcommands. Paths given here are
//! relative to the working directory. What each command does is in `commands`.

use crate::config::Overrides;
pub use crate::data::image::Invert;
use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Values checked by the parser, so that a bad one is blamed on its flag (exit status 2).
fn at_least_one() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..)
}

fn positive_f32(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a positive finite number, got {s}"))
    }
}

fn positive_f64(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a positive finite number, got {s}"))
    }
}

/// Hidden widths: `300,300`; empty for none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Widths(pub Vec<usize>);

fn widths(s: &str) -> Result<Widths, String> {
    if s.trim().is_empty() {
        return Ok(Widths(Vec::new()));
    }
    s.split(',')
        .map(|w| match w.trim().parse::<usize>() {
            Ok(0) => Err("every hidden layer needs at least 1 unit, got 0".to_string()),
            Ok(v) => Ok(v),
            Err(_) => Err(format!("`{w}` is not a layer width (e.g. 300,300)")),
        })
        .collect::<Result<_, _>>()
        .map(Widths)
}

/// More threads than this many per core only slow a run down (and thousands exhaust the
/// machine); [`crate::config::max_threads`] is the same bound for the config's `threads`.
fn threads(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("`{s}` is not a count"))?;
    let max = crate::config::max_threads();
    match n {
        0 => Err("must be at least 1".into()),
        n if n > max => Err(format!(
            "{n} is more than 4 per core of this machine ({max} at most)"
        )),
        n => Ok(n),
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "backprop",
    version,
    about = "Fast, correct, reproducible training of multilayer perceptrons",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Exit status: 0 success, 1 error, 2 usage, 3 training diverged (NaN/inf), \
                  4 gradient check failed, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a network (the default when no subcommand is given).
    Train(TrainArgs),
    /// Evaluate a checkpoint on the test set: loss, accuracy, per-class precision and
    /// recall, confusion matrix.
    Eval(EvalArgs),
    /// Predict with a checkpoint: an IDX image file, or PNG/JPEG images.
    Predict(PredictArgs),
    /// Compare every analytic gradient with central finite differences.
    Gradcheck(GradcheckArgs),
    /// Measure a config: seconds per training epoch and the products floor of the same epoch.
    Bench(BenchArgs),
    /// Write a checkpoint's network as an ONNX model (opset 17) that takes the raw input the
    /// training data held (bytes for IDX images) and returns class probabilities (or the
    /// regression output).
    Export(ExportArgs),
    /// Learning-rate range test: train from the initial weights with an lr growing
    /// exponentially each step until the loss explodes; suggest an lr, write the curve (CSV)
    /// and its plot. Never touches a checkpoint.
    LrFind(LrFindArgs),
    /// Write every tensor of one training step to safetensors, or compare a hand-written
    /// step's tensors with ours and name the first that differs.
    Trace(TraceArgs),
}

#[derive(Args, Debug, Default, Clone)]
pub struct TrainArgs {
    /// The TOML run description (optional with --resume: the checkpoint holds its config).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Total epochs of the run, counting those a resumed run already has [default: the
    /// config's]
    #[arg(long, value_name = "N", value_parser = at_least_one())]
    pub epochs: Option<usize>,
    /// Samples per minibatch [default: the config's]
    #[arg(long, value_name = "N", value_parser = at_least_one())]
    pub batch_size: Option<usize>,
    /// Base learning rate [default: the config's]
    #[arg(long, value_name = "X", allow_negative_numbers = true, value_parser = positive_f32)]
    pub lr: Option<f32>,
    /// Hidden layer widths, e.g. 300,300; empty for none [default: the config's]
    #[arg(long, value_name = "W,W,..", value_parser = widths, num_args = 0..=1, default_missing_value = "")]
    pub hidden: Option<Widths>,
    /// Seed of every random stream (init, split, shuffles) [default: the config's]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Threads for products and passes (one rayon pool), at most 4 per core [default: physical cores].
    #[arg(long, value_name = "N", value_parser = threads)]
    pub threads: Option<usize>,
    /// A folder with the four standard IDX files (replaces the config's data source).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Per-epoch metrics as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub metrics_out: Option<PathBuf>,
    /// Per-epoch metrics as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv_out: Option<PathBuf>,
    /// Learning curves (.png or .svg).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// TensorBoard event files (loss, accuracy, lr per epoch; the config as text) in a run
    /// folder under DIR.
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
    /// Write a checkpoint (safetensors) at the end, and every checkpoint_every epochs.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Continue the run saved in this checkpoint.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// Print per-epoch diagnostics (dead units, saturation, update ratios, gradient norms).
    #[arg(long)]
    pub diagnostics: bool,
    /// No progress bar and no per-epoch lines; only the result and problems.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint written by --save.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Evaluate on the test files of this folder instead of the training config's.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A checkpoint written by --save.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// An IDX image file, or PNG/JPEG images (none needed with --csv-out).
    #[arg(required_unless_present = "csv_out", value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Invert grey levels of images (MNIST digits are light on dark); auto inverts an image
    /// whose border is bright.
    #[arg(long, value_enum, default_value_t = Invert::Auto)]
    pub invert: Invert,
    /// Regression models: write x, target and prediction over the test set as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv_out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint written by --save.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The ONNX file to write.
    #[arg(long, value_name = "FILE")]
    pub onnx: PathBuf,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// Times the floor (the epoch's products alone) is measured after each epoch; the best
    /// of them is paired with that epoch.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = at_least_one())]
    pub floor_repeats: usize,
    /// Machine-readable output (one JSON object).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GradcheckArgs {
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// Shrink the input to its first N features (keeps the check fast on wide data).
    #[arg(long, value_name = "N", value_parser = at_least_one())]
    pub inputs: Option<usize>,
    /// Samples in the checked batch.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = at_least_one())]
    pub samples: usize,
    /// Entries checked per tensor (all of a smaller tensor).
    #[arg(long, default_value_t = 40, value_name = "N", value_parser = at_least_one())]
    pub per_tensor: usize,
    /// Largest acceptable relative error.
    #[arg(long, default_value_t = 1e-3, value_name = "X", value_parser = positive_f64)]
    pub threshold: f64,
}

#[derive(Args, Debug)]
pub struct LrFindArgs {
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// The first learning rate.
    #[arg(long, default_value_t = 1e-7, value_name = "LR", value_parser = positive_f32)]
    pub start_lr: f32,
    /// The last learning rate (the sweep usually stops before, when the loss explodes).
    #[arg(long, default_value_t = 10.0, value_name = "LR", value_parser = positive_f32)]
    pub end_lr: f32,
    /// Steps from the first to the last learning rate.
    #[arg(long, default_value_t = 300, value_name = "N", value_parser = at_least_one())]
    pub steps: usize,
    /// The curve as CSV: step, lr, loss, smoothed loss.
    #[arg(long, default_value = "lr-find.csv", value_name = "FILE")]
    pub csv_out: PathBuf,
    /// The curve as a plot (.png or .svg), the suggestion marked.
    #[arg(long, default_value = "lr-find.png", value_name = "FILE")]
    pub plot: PathBuf,
    /// Machine-readable output (one JSON object).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["config", "compare"])))]
pub struct TraceArgs {
    /// Record a step of this config's run.
    #[arg(long, short, value_name = "FILE", requires = "out")]
    pub config: Option<PathBuf>,
    /// The step recorded, counted from 0 across epochs.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub step: usize,
    /// Where the recorded step goes (safetensors).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// A folder with the four standard IDX files (replaces the config's data source).
    #[arg(long, value_name = "DIR", requires = "config")]
    pub data_dir: Option<PathBuf>,
    /// Write the step recomputed in float64 from what it read, instead of float32 as trained.
    #[arg(long = "f64")]
    pub f64: bool,
    /// A trace computed by your code, under our names.
    #[arg(
        long,
        value_name = "THEIRS",
        requires = "against",
        conflicts_with = "config"
    )]
    pub compare: Option<PathBuf>,
    /// Our trace of the same step.
    #[arg(long, value_name = "OURS")]
    pub against: Option<PathBuf>,
    /// Largest error accepted, relative to each tensor's largest magnitude.
    #[arg(long, default_value_t = 1e-4, value_name = "X", value_parser = positive_f64)]
    pub tolerance: f64,
}

impl TrainArgs {
    /// The values given on the command line, as config overrides.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            hidden: self.hidden.as_ref().map(|w| w.0.clone()),
            seed: self.seed,
            threads: self.threads,
            data_dir: self.data_dir.clone(),
            metrics: self.metrics_out.clone(),
            csv: self.csv_out.clone(),
            plot: self.plot.clone(),
            save: self.save.clone(),
            tensorboard: self.tensorboard.clone(),
            diagnostics: self.diagnostics,
        }
    }
}
