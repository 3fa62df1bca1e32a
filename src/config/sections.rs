//! The sections of the TOML run description, with their defaults. Where a section's values
//! are a domain type's own (a loss, an optimizer kind, a data source's table), the domain
//! type is deserialised directly; the names below are the few that map to a domain type with
//! extra keys beside them (an activation and its slope, an init and its scale).

use crate::data::csv::CsvConfig;
use crate::data::synth::{SineConfig, TanhConfig, XorConfig};
use crate::data::SparseInput;
use crate::model::Loss;
use crate::optim::{Hyper, OptimizerKind};
use crate::train::Monitor;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Threads for products and passes (one rayon pool); default: the physical cores.
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

fn default_seed() -> u64 {
    42
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
    pub tanh: Option<TanhConfig>,
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

impl DataConfig {
    /// Whether the source is IDX files (byte features), as opposed to floats.
    pub fn is_idx(&self) -> bool {
        self.dir.is_some() || self.train_images.is_some()
    }
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

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ActivationName {
    Relu,
    LeakyRelu,
    Sigmoid,
    Tanh,
    Identity,
    Silu,
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
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Hidden layer widths, input side first.
    pub hidden: Vec<usize>,
    /// Activation of every hidden layer...
    pub activation: ActivationName,
    /// ...or one per hidden layer.
    pub activations: Option<Vec<ActivationName>>,
    pub leaky_slope: f32,
    /// Output activation for mean squared error (the other losses take logits).
    pub output_activation: Option<ActivationName>,
    pub loss: Loss,
    pub init: InitName,
    /// For `init = "normal"`.
    pub init_std: Option<f32>,
    /// For `init = "uniform"`: weights in [-limit, limit].
    pub init_limit: Option<f32>,
    pub bias_init: f32,
    /// Softmax cross-entropy against `(1 - ε) y + ε / K` targets while training.
    pub label_smoothing: f32,
    /// Inverted dropout while training: one rate for every hidden layer, or one each.
    pub dropout: Rates,
}

/// A rate for every layer, or one per layer.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged, try_from = "toml::Value")]
pub enum Rates {
    All(f32),
    PerLayer(Vec<f32>),
}

impl Rates {
    pub fn as_slice(&self) -> &[f32] {
        match self {
            Rates::All(r) => std::slice::from_ref(r),
            Rates::PerLayer(v) => v,
        }
    }
}

impl TryFrom<toml::Value> for Rates {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match numbers(&v) {
            Some(list) if v.is_array() => Ok(Rates::PerLayer(list)),
            Some(one) => Ok(Rates::All(one[0])),
            None => Err(format!(
                "expected a rate (0.2) or one rate per hidden layer ([0.2, 0.5]), got {v}"
            )),
        }
    }
}

/// A number or a list of numbers, as `f32`s.
fn numbers(v: &toml::Value) -> Option<Vec<f32>> {
    let one = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    match v {
        toml::Value::Array(items) => items.iter().map(|i| one(i).map(|x| x as f32)).collect(),
        other => one(other).map(|x| vec![x as f32]),
    }
}

/// Per-class weights of the training loss.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged, try_from = "toml::Value")]
pub enum ClassWeights {
    /// `"balanced"`: `n / (K · count_c)` over the training samples.
    Rule(WeightRule),
    /// One weight per class.
    List(Vec<f32>),
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WeightRule {
    Balanced,
}

impl TryFrom<toml::Value> for ClassWeights {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match (v.as_str(), numbers(&v)) {
            (Some("balanced"), _) => Ok(ClassWeights::Rule(WeightRule::Balanced)),
            (None, Some(list)) if v.is_array() => Ok(ClassWeights::List(list)),
            _ => Err(format!(
                "expected \"balanced\" or one weight per class ([1.0, 4.0, ...]), got {v}"
            )),
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            hidden: Vec::new(),
            activation: ActivationName::Relu,
            activations: None,
            leaky_slope: 0.01,
            output_activation: None,
            loss: Loss::SoftmaxCrossEntropy,
            init: InitName::Auto,
            init_std: None,
            init_limit: None,
            bias_init: 0.0,
            label_smoothing: 0.0,
            dropout: Rates::All(0.0),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub drop_last: bool,
    /// Stop once the monitored accuracy reaches this (a fraction, e.g. 0.976).
    pub target_accuracy: Option<f64>,
    /// Stop once the monitored loss falls to this.
    pub target_loss: Option<f64>,
    /// Stop after this many epochs without improvement of the monitored metric.
    pub patience: Option<usize>,
    pub min_delta: f64,
    /// Which held-out set stopping watches; default: validation if there is one, else test.
    pub monitor: Option<Monitor>,
    /// Rows per forward pass when evaluating.
    pub eval_chunk: usize,
    /// Byte inputs as compressed rows for the first layer: "auto" (by density), "on", "off".
    pub sparse_input: SparseInput,
    /// Weights of each class in the training loss and its gradient.
    pub class_weights: Option<ClassWeights>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 128,
            drop_last: false,
            target_accuracy: None,
            target_loss: None,
            patience: None,
            min_delta: 0.0,
            monitor: None,
            eval_chunk: 1000,
            sparse_input: SparseInput::Auto,
            class_weights: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f32,
    pub momentum: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub decay_biases: bool,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        let h = Hyper::default();
        OptimizerConfig {
            kind: h.kind,
            lr: 0.01,
            momentum: h.momentum,
            beta1: h.beta1,
            beta2: h.beta2,
            eps: h.eps,
            weight_decay: h.weight_decay,
            decay_biases: h.decay_biases,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    #[default]
    Constant,
    Step,
    Exponential,
    Cosine,
    OneCycle,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub kind: ScheduleKind,
    /// step: epochs between decays.
    pub every: Option<usize>,
    /// step and exponential: multiplier per decay.
    pub factor: Option<f32>,
    /// cosine: epochs from the top to the floor (default: all epochs after warmup).
    pub epochs: Option<usize>,
    /// cosine: the lowest learning rate.
    pub min_lr: f32,
    pub warmup_epochs: usize,
    /// Evaluate the schedule at every step instead of once per epoch.
    pub per_step: bool,
    /// one_cycle: the peak lr (default: optimizer.lr).
    pub max_lr: Option<f32>,
    /// one_cycle: the fraction of the steps spent rising to max_lr.
    pub pct_start: f32,
    /// one_cycle: the first lr is max_lr / div.
    pub div: f32,
    /// one_cycle: the last lr is max_lr / final_div.
    pub final_div: f32,
    /// one_cycle: cycle the momentum inversely (momentum and nesterov optimizers).
    pub cycle_momentum: bool,
    pub base_momentum: f32,
    pub max_momentum: f32,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            kind: ScheduleKind::Constant,
            every: None,
            factor: None,
            epochs: None,
            min_lr: 0.0,
            warmup_epochs: 0,
            per_step: false,
            max_lr: None,
            pct_start: 0.3,
            div: 25.0,
            final_div: 1e4,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
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
    /// TensorBoard log folder: each run writes its event file into a run folder inside it.
    pub tensorboard: Option<PathBuf>,
    /// Print per-epoch diagnostics (dead units, saturation, update ratios).
    #[serde(default)]
    pub diagnostics: bool,
}
