//! The TOML run description. Unknown keys are rejected; syntax and type errors carry the
//! line and column; value errors name the field (`train.batch_size`) and the allowed range.
//! Relative paths are relative to the config file's folder.

use crate::activation::Activation;
use crate::init::Init;
use crate::loss::Loss;
use crate::optim::{Hyper, OptimizerKind};
use crate::schedule::{Schedule, Shape};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    /// BLAS and rayon threads; default: the physical cores.
    pub threads: Option<usize>,
    pub data: DataConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub output: OutputConfig,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A folder holding the four standard IDX files (each may be gzipped).
    pub dir: Option<PathBuf>,
    pub train_images: Option<PathBuf>,
    pub train_labels: Option<PathBuf>,
    pub test_images: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
    pub sine: Option<SineConfig>,
    pub xor: Option<XorConfig>,
    pub csv: Option<CsvConfig>,
    /// Checked against the data when given.
    pub input_width: Option<usize>,
    /// Checked against the labels when given; otherwise one more than the largest label.
    pub classes: Option<usize>,
    #[serde(default)]
    pub scale: Scale,
    pub mean: Option<f32>,
    pub std: Option<f32>,
    #[serde(default)]
    pub validation_split: f64,
    /// Where decompressed `.gz` caches go when the data folder is read-only.
    pub cache_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Bytes divided by 255, into [0, 1].
    #[default]
    Unit,
    /// Raw values (0..255 for bytes): almost always a mistake with sigmoid or tanh units.
    None,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SineConfig {
    #[serde(default = "defaults::sine_train")]
    pub train_samples: usize,
    #[serde(default = "defaults::sine_test")]
    pub test_samples: usize,
    #[serde(default)]
    pub x_min: f32,
    #[serde(default = "defaults::four_pi")]
    pub x_max: f32,
    /// Half-width of the uniform noise added to training targets.
    #[serde(default = "defaults::sine_noise")]
    pub noise: f32,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct XorConfig {
    #[serde(default = "defaults::minus_one")]
    pub low: f32,
    #[serde(default = "defaults::one")]
    pub high: f32,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    pub train: PathBuf,
    /// Without a test file, `test_fraction` of the training rows are held out as the test set.
    pub test: Option<PathBuf>,
    #[serde(default = "defaults::test_fraction")]
    pub test_fraction: f64,
    /// Target column name(s); every other column is a feature.
    pub target: Vec<String>,
    /// Treat the single target column as class labels 0..k-1.
    #[serde(default)]
    pub classification: bool,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ActivationName {
    Relu,
    LeakyRelu,
    Sigmoid,
    Tanh,
    Identity,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InitName {
    Auto,
    HeNormal,
    HeUniform,
    XavierNormal,
    XavierUniform,
    Uniform,
    Normal,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Hidden layer widths, input side first.
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Activation of every hidden layer...
    #[serde(default = "defaults::activation")]
    pub activation: ActivationName,
    /// ...or one per hidden layer.
    pub activations: Option<Vec<ActivationName>>,
    #[serde(default = "defaults::leaky_slope")]
    pub leaky_slope: f32,
    /// Output activation for mean squared error (the other losses take logits).
    pub output_activation: Option<ActivationName>,
    #[serde(default = "defaults::loss")]
    pub loss: Loss,
    #[serde(default = "defaults::init")]
    pub init: InitName,
    /// For `init = "normal"`.
    pub init_std: Option<f32>,
    /// For `init = "uniform"`: weights in [-limit, limit].
    pub init_limit: Option<f32>,
    #[serde(default)]
    pub bias_init: f32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    Validation,
    Test,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    #[serde(default)]
    pub drop_last: bool,
    /// Stop once the monitored accuracy reaches this (a fraction, e.g. 0.976).
    pub target_accuracy: Option<f64>,
    /// Stop once the monitored loss falls to this.
    pub target_loss: Option<f64>,
    /// Stop after this many epochs without improvement of the monitored metric.
    pub patience: Option<usize>,
    #[serde(default)]
    pub min_delta: f64,
    /// Which held-out set stopping watches; default: validation if there is one, else test.
    pub monitor: Option<Monitor>,
    /// Rows per forward pass when evaluating.
    #[serde(default = "defaults::eval_chunk")]
    pub eval_chunk: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    #[serde(default = "defaults::optimizer")]
    pub kind: OptimizerKind,
    #[serde(default = "defaults::lr")]
    pub lr: f32,
    #[serde(default = "defaults::momentum")]
    pub momentum: f32,
    #[serde(default = "defaults::beta1")]
    pub beta1: f32,
    #[serde(default = "defaults::beta2")]
    pub beta2: f32,
    #[serde(default = "defaults::eps")]
    pub eps: f32,
    #[serde(default)]
    pub weight_decay: f32,
    #[serde(default)]
    pub decay_biases: bool,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    Constant,
    Step,
    Exponential,
    Cosine,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default = "defaults::schedule")]
    pub kind: ScheduleKind,
    /// step: epochs between decays.
    pub every: Option<usize>,
    /// step and exponential: multiplier per decay.
    pub factor: Option<f32>,
    /// cosine: epochs from the top to the floor (default: all epochs after warmup).
    pub epochs: Option<usize>,
    /// cosine: the lowest learning rate.
    #[serde(default)]
    pub min_lr: f32,
    #[serde(default)]
    pub warmup_epochs: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// One JSON object per epoch, per line.
    pub metrics: Option<PathBuf>,
    /// The same metrics as CSV.
    pub csv: Option<PathBuf>,
    /// Learning curves, `.png` or `.svg`.
    pub plot: Option<PathBuf>,
    /// Checkpoint written at the end (and every `checkpoint_every` epochs).
    pub save: Option<PathBuf>,
    pub checkpoint_every: Option<usize>,
    /// Regression: CSV of input, target and prediction over the test set.
    pub predictions: Option<PathBuf>,
    /// Print per-epoch diagnostics (dead units, saturation, update ratios).
    #[serde(default)]
    pub diagnostics: bool,
}

mod defaults {
    use super::*;
    pub fn seed() -> u64 {
        42
    }
    pub fn sine_train() -> usize {
        1000
    }
    pub fn sine_test() -> usize {
        200
    }
    pub fn four_pi() -> f32 {
        4.0 * std::f32::consts::PI
    }
    pub fn sine_noise() -> f32 {
        0.1
    }
    pub fn minus_one() -> f32 {
        -1.0
    }
    pub fn one() -> f32 {
        1.0
    }
    pub fn test_fraction() -> f64 {
        0.2
    }
    pub fn activation() -> ActivationName {
        ActivationName::Relu
    }
    pub fn leaky_slope() -> f32 {
        0.01
    }
    pub fn loss() -> Loss {
        Loss::SoftmaxCrossEntropy
    }
    pub fn init() -> InitName {
        InitName::Auto
    }
    pub fn epochs() -> usize {
        10
    }
    pub fn batch_size() -> usize {
        128
    }
    pub fn eval_chunk() -> usize {
        1000
    }
    pub fn optimizer() -> OptimizerKind {
        OptimizerKind::Sgd
    }
    pub fn lr() -> f32 {
        0.01
    }
    pub fn momentum() -> f32 {
        0.9
    }
    pub fn beta1() -> f32 {
        0.9
    }
    pub fn beta2() -> f32 {
        0.999
    }
    pub fn eps() -> f32 {
        1e-8
    }
    pub fn schedule() -> ScheduleKind {
        ScheduleKind::Constant
    }
}

/// A config and the folder its relative paths are relative to.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub path: PathBuf,
    pub base_dir: PathBuf,
}

impl Loaded {
    /// Makes the output paths of the config relative to its folder (as the data paths are).
    pub fn resolve_outputs(&mut self) {
        let base = self.base_dir.clone();
        let o = &mut self.config.output;
        for p in [
            &mut o.metrics,
            &mut o.csv,
            &mut o.plot,
            &mut o.save,
            &mut o.predictions,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Resolves `p` against the config's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// Reads and parses a config file (value checks are [`Config::validate`], after overrides).
pub fn load(path: &Path) -> Result<Loaded> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    if meta.is_dir() {
        bail!(
            "config path {} is a folder, expected a TOML file",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let config = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Loaded {
        config,
        path: path.to_path_buf(),
        base_dir,
    })
}

/// Parses TOML text; errors carry line and column.
pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
    toml::from_str(text)
}

fn activation(name: ActivationName, slope: f32) -> Activation {
    match name {
        ActivationName::Relu => Activation::Relu,
        ActivationName::LeakyRelu => Activation::LeakyRelu { slope },
        ActivationName::Sigmoid => Activation::Sigmoid,
        ActivationName::Tanh => Activation::Tanh,
        ActivationName::Identity => Activation::Identity,
    }
}

fn check(ok: bool, field: &str, what: impl std::fmt::Display) -> Result<()> {
    if ok {
        Ok(())
    } else {
        bail!("{field}: {what}")
    }
}

impl Config {
    /// Checks values the types cannot: ranges, combinations, required companions.
    pub fn validate(&self) -> Result<()> {
        let d = &self.data;
        let idx_paths = [
            &d.train_images,
            &d.train_labels,
            &d.test_images,
            &d.test_labels,
        ];
        let explicit = idx_paths.iter().filter(|p| p.is_some()).count();
        let sources = usize::from(d.dir.is_some())
            + usize::from(explicit > 0)
            + usize::from(d.sine.is_some())
            + usize::from(d.xor.is_some())
            + usize::from(d.csv.is_some());
        check(
            sources == 1,
            "data",
            "give exactly one source: `dir`, the four paths `train_images`, `train_labels`, \
             `test_images`, `test_labels`, or one of the tables [data.sine], [data.xor], [data.csv]",
        )?;
        check(
            explicit == 0 || explicit == 4,
            "data",
            "explicit IDX paths need all four of train_images, train_labels, test_images, test_labels",
        )?;
        check(
            (0.0..1.0).contains(&d.validation_split),
            "data.validation_split",
            format!("must be in [0, 1), got {}", d.validation_split),
        )?;
        if let Some(std) = d.std {
            check(
                std.is_finite() && std > 0.0,
                "data.std",
                format!("must be positive and finite, got {std}"),
            )?;
        }
        if let Some(mean) = d.mean {
            check(
                mean.is_finite(),
                "data.mean",
                format!("must be finite, got {mean}"),
            )?;
        }
        check(
            d.input_width != Some(0),
            "data.input_width",
            "must be at least 1",
        )?;
        check(
            d.classes.is_none_or(|c| c >= 2),
            "data.classes",
            "must be at least 2",
        )?;
        if let Some(s) = &d.sine {
            check(
                s.train_samples > 0 && s.test_samples > 1,
                "data.sine",
                "needs train_samples >= 1 and test_samples >= 2",
            )?;
            check(s.x_max > s.x_min, "data.sine.x_max", "must be above x_min")?;
            check(s.noise >= 0.0, "data.sine.noise", "must be >= 0")?;
        }
        if let Some(c) = &d.csv {
            check(
                !c.target.is_empty(),
                "data.csv.target",
                "name at least one target column",
            )?;
            check(
                !c.classification || c.target.len() == 1,
                "data.csv.target",
                "classification takes exactly one target column",
            )?;
            check(
                c.test.is_some() || (c.test_fraction > 0.0 && c.test_fraction < 1.0),
                "data.csv.test_fraction",
                "must be in (0, 1) when no test file is given",
            )?;
        }
        self.validate_model()?;
        self.validate_training()
    }

    fn validate_model(&self) -> Result<()> {
        let m = &self.model;
        if let Some(i) = m.hidden.iter().position(|&w| w == 0) {
            bail!("model.hidden: layer {i} has width 0; every hidden layer needs at least 1 unit");
        }
        if let Some(acts) = &m.activations {
            check(
                acts.len() == m.hidden.len(),
                "model.activations",
                format!(
                    "has {} entries for {} hidden layers",
                    acts.len(),
                    m.hidden.len()
                ),
            )?;
        }
        check(
            m.bias_init.is_finite(),
            "model.bias_init",
            format!("must be finite, got {}", m.bias_init),
        )?;
        check(
            (0.0..1.0).contains(&m.leaky_slope),
            "model.leaky_slope",
            format!("must be in [0, 1), got {}", m.leaky_slope),
        )?;
        check(
            m.output_activation.is_none() || m.loss == Loss::MeanSquaredError,
            "model.output_activation",
            "only mean_squared_error takes an output activation; the cross-entropy losses \
             apply softmax or sigmoid themselves (applying it twice is a classic bug)",
        )?;
        match m.init {
            InitName::Normal => check(
                m.init_std.is_some_and(|s| s > 0.0 && s.is_finite()),
                "model.init_std",
                "init = \"normal\" needs a positive init_std",
            )?,
            InitName::Uniform => check(
                m.init_limit.is_some_and(|s| s > 0.0 && s.is_finite()),
                "model.init_limit",
                "init = \"uniform\" needs a positive init_limit",
            )?,
            _ => {}
        }
        Ok(())
    }

    fn validate_training(&self) -> Result<()> {
        let t = &self.train;
        check(t.epochs > 0, "train.epochs", "must be at least 1")?;
        check(t.batch_size > 0, "train.batch_size", "must be at least 1")?;
        check(t.eval_chunk > 0, "train.eval_chunk", "must be at least 1")?;
        check(
            t.target_accuracy.is_none_or(|a| a > 0.0 && a <= 1.0),
            "train.target_accuracy",
            "is a fraction in (0, 1], e.g. 0.98",
        )?;
        check(
            t.target_loss.is_none_or(f64::is_finite)
                && t.min_delta.is_finite()
                && t.min_delta >= 0.0,
            "train.target_loss/min_delta",
            "must be finite (and min_delta >= 0)",
        )?;
        check(
            t.patience != Some(0),
            "train.patience",
            "must be at least 1",
        )?;
        check(self.threads != Some(0), "threads", "must be at least 1")?;
        let o = &self.optimizer;
        check(
            o.lr.is_finite() && o.lr > 0.0,
            "optimizer.lr",
            format!("must be positive, got {}", o.lr),
        )?;
        check(
            (0.0..1.0).contains(&o.momentum),
            "optimizer.momentum",
            "must be in [0, 1)",
        )?;
        check(
            (0.0..1.0).contains(&o.beta1) && (0.0..1.0).contains(&o.beta2),
            "optimizer.beta1/beta2",
            "must be in [0, 1)",
        )?;
        check(
            o.eps.is_finite() && o.eps > 0.0,
            "optimizer.eps",
            "must be positive and finite",
        )?;
        check(
            o.weight_decay.is_finite() && o.weight_decay >= 0.0,
            "optimizer.weight_decay",
            "must be finite and >= 0",
        )?;
        let s = &self.schedule;
        check(s.every != Some(0), "schedule.every", "must be at least 1")?;
        check(
            s.factor.is_none_or(|f| f > 0.0 && f <= 1.0),
            "schedule.factor",
            "must be in (0, 1]: a decay multiplies the learning rate down",
        )?;
        check(
            s.min_lr >= 0.0 && s.min_lr <= o.lr,
            "schedule.min_lr",
            "must be in [0, optimizer.lr]",
        )?;
        check(
            self.output.checkpoint_every != Some(0),
            "output.checkpoint_every",
            "must be at least 1",
        )
    }

    pub fn hidden_activations(&self) -> Vec<Activation> {
        let m = &self.model;
        (0..m.hidden.len())
            .map(|i| {
                let name = m.activations.as_ref().map_or(m.activation, |a| a[i]);
                activation(name, m.leaky_slope)
            })
            .collect()
    }

    pub fn output_activation(&self) -> Activation {
        match self.model.output_activation {
            Some(name) if self.model.loss == Loss::MeanSquaredError => {
                activation(name, self.model.leaky_slope)
            }
            _ => Activation::Identity,
        }
    }

    pub fn init(&self) -> Init {
        let m = &self.model;
        match m.init {
            InitName::Auto => Init::Auto,
            InitName::HeNormal => Init::HeNormal,
            InitName::HeUniform => Init::HeUniform,
            InitName::XavierNormal => Init::XavierNormal,
            InitName::XavierUniform => Init::XavierUniform,
            InitName::Uniform => Init::Uniform {
                limit: m.init_limit.unwrap_or(0.0),
            },
            InitName::Normal => Init::Normal {
                std: m.init_std.unwrap_or(0.0),
            },
        }
    }

    pub fn hyper(&self) -> Hyper {
        let o = &self.optimizer;
        Hyper {
            kind: o.kind,
            momentum: o.momentum,
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
            decay_biases: o.decay_biases,
        }
    }

    pub fn schedule(&self) -> Schedule {
        let s = &self.schedule;
        let shape = match s.kind {
            ScheduleKind::Constant => Shape::Constant,
            ScheduleKind::Step => Shape::Step {
                every: s.every.unwrap_or(10),
                factor: s.factor.unwrap_or(0.1),
            },
            ScheduleKind::Exponential => Shape::Exponential {
                factor: s.factor.unwrap_or(0.95),
            },
            ScheduleKind::Cosine => Shape::Cosine {
                epochs: s
                    .epochs
                    .unwrap_or(self.train.epochs.saturating_sub(s.warmup_epochs))
                    .max(1),
                floor: s.min_lr,
            },
        };
        Schedule {
            base_lr: self.optimizer.lr,
            warmup: s.warmup_epochs,
            shape,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[data]\ndir = \"mnist\"\n";

    #[test]
    fn non_finite_data_scaling_is_refused() {
        let c = parse("[data]\ndir = \"mnist\"\nmean = nan\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("data.mean: must be finite"), "{e}");
    }

    #[test]
    fn defaults_fill_everything_but_the_data() {
        let c = parse(MINIMAL).unwrap();
        c.validate().unwrap();
        assert_eq!(c.train.batch_size, 128);
        assert_eq!(c.model.loss, Loss::SoftmaxCrossEntropy);
        assert_eq!(c.optimizer.kind, OptimizerKind::Sgd);
        assert_eq!(c.schedule(), Schedule::constant(0.01));
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_line_and_column() {
        let e = parse("[data]\ndir = \"x\"\n[train]\nbatchsize = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4, column 1"), "{e}");
        assert!(e.contains("unknown field `batchsize`"), "{e}");
        assert!(e.contains("batch_size"), "{e}");
        let e = parse("[data]\ndir = \"x\"\n[train]\nepochs = \"ten\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4, column 10"), "{e}");
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = parse("[data]\ndir = \"x\"\n[model]\nactivation = \"relux\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`relu`, `leaky_relu`, `sigmoid`, `tanh`, `identity`"),
            "{e}"
        );
        let e = parse("[data]\ndir = \"x\"\n[optimizer]\nkind = \"adagrad\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`adam`"), "{e}");
    }

    #[test]
    fn value_errors_name_the_field() {
        let bad = |extra: &str| {
            parse(&format!("{MINIMAL}{extra}"))
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
        };
        assert!(bad("[optimizer]\nlr = 0.0\n").starts_with("optimizer.lr"));
        assert!(bad("[train]\nbatch_size = 0\n").starts_with("train.batch_size"));
        assert!(bad("[model]\nhidden = [3, 0]\n").contains("layer 1 has width 0"));
        assert!(bad("[model]\ninit = \"normal\"\n").starts_with("model.init_std"));
        assert!(bad("[data.xor]\n").starts_with("data: give exactly one source"));
        assert!(bad("[optimizer]\nweight_decay = inf\n").starts_with("optimizer.weight_decay"));
        assert!(bad("[schedule]\nkind = \"step\"\nfactor = 2.0\n").starts_with("schedule.factor"));
        assert!(bad("[train]\nmin_delta = nan\n").starts_with("train.target_loss/min_delta"));
    }
}
