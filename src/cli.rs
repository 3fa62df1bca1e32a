//! The command line's definitions (clap): `backprop --config FILE` trains; `eval`,
//! `predict`, `gradcheck`, `bench` and `export` are subcommands. Paths given here are
//! relative to the working directory. What each command does is in `commands`.

use crate::config::Overrides;
pub use crate::data::image::Invert;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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
    /// Measure a config: seconds per training epoch and the sgemm floor of the same epoch.
    Bench(BenchArgs),
    /// Write a checkpoint's network as an ONNX model (opset 17) that takes the raw input the
    /// training data held (bytes for IDX images) and returns class probabilities (or the
    /// regression output).
    Export(ExportArgs),
}

#[derive(Args, Debug, Default, Clone)]
pub struct TrainArgs {
    /// The TOML run description (optional with --resume: the checkpoint holds its config).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Total epochs of the run, counting those a resumed run already has [default: the
    /// config's]
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Samples per minibatch [default: the config's]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Base learning rate [default: the config's]
    #[arg(long, value_name = "X")]
    pub lr: Option<f32>,
    /// Hidden layer widths, e.g. 300,300; empty for none [default: the config's]
    #[arg(long, value_name = "W,W,..", value_delimiter = ',', num_args = 0..)]
    pub hidden: Option<Vec<usize>>,
    /// Seed of every random stream (init, split, shuffles) [default: the config's]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// BLAS and rayon threads [default: physical cores].
    #[arg(long, value_name = "N")]
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
    /// An IDX image file, or PNG/JPEG images.
    #[arg(required = true, value_name = "INPUT")]
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
    #[arg(long, default_value_t = 3, value_name = "N")]
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
    #[arg(long, value_name = "N")]
    pub inputs: Option<usize>,
    /// Samples in the checked batch.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub samples: usize,
    /// Entries checked per tensor (all of a smaller tensor).
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub per_tensor: usize,
    /// Largest acceptable relative error.
    #[arg(long, default_value_t = 1e-3, value_name = "X")]
    pub threshold: f64,
}

impl TrainArgs {
    /// The values given on the command line, as config overrides.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            hidden: self.hidden.clone(),
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
