//! [`MlpBuilder`]: the settings of a run, gathered into the same [`Config`] a TOML file
//! describes (so the same checks apply, naming the same fields), then trained on arrays or a
//! path.

use super::arrays::{array_dataset, ArrayTargets};
use super::experiment::{default_threads, load_data, thread_pool, Experiment};
use super::model::Model;
use crate::config::{
    ActivationName, Config, CsvConfig, DataConfig, Loaded, ModelConfig, OptimizerConfig,
    OutputConfig, ScheduleConfig, ScheduleKind, TrainConfig,
};
use crate::data::settle_classes;
use crate::error::ShapeError;
use crate::model::{Activation, Loss};
use crate::optim::schedule::Shape;
use crate::optim::OptimizerKind;
use crate::train::{EpochRecord, Observer, StopReason, TrainState};
use anyhow::{bail, Context, Result};
use ndarray::ArrayView2;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

type EpochCallback = Box<dyn FnMut(&EpochRecord) + Send>;

/// A multilayer perceptron to train: the layers, activation, loss, optimizer, learning rate
/// and its schedule, epochs, batch size and seed, each with the command line's default.
///
/// ```
/// use backprop::{Loss, MlpBuilder, OptimizerKind};
/// use ndarray::Array2;
///
/// // y = 2x - 1 on [0, 1], a regression.
/// let x = Array2::from_shape_fn((64, 1), |(i, _)| i as f32 / 63.0);
/// let y = x.mapv(|v| 2.0 * v - 1.0);
/// let model = MlpBuilder::new()
///     .loss(Loss::MeanSquaredError)
///     .optimizer(OptimizerKind::Adam)
///     .lr(0.05)
///     .epochs(100)
///     .batch_size(16)
///     .threads(1)
///     .fit_arrays(x.view(), y.view())?;
/// let fit = model.predict(x.view())?;
/// assert!((fit[[0, 0]] + 1.0).abs() < 0.05 && (fit[[63, 0]] - 1.0).abs() < 0.05);
/// assert_eq!(model.history().len(), 100);
/// # Ok::<(), anyhow::Error>(())
/// ```
pub struct MlpBuilder {
    config: Config,
    threads: Option<usize>,
    on_epoch: Option<EpochCallback>,
}

impl Default for MlpBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// A config's name for an activation, and the slope it carries (leaky ReLU).
fn activation_name(a: Activation) -> (ActivationName, Option<f32>) {
    match a {
        Activation::Relu => (ActivationName::Relu, None),
        Activation::LeakyRelu { slope } => (ActivationName::LeakyRelu, Some(slope)),
        Activation::Sigmoid => (ActivationName::Sigmoid, None),
        Activation::Tanh => (ActivationName::Tanh, None),
        Activation::Identity => (ActivationName::Identity, None),
        Activation::Silu => (ActivationName::Silu, None),
    }
}

impl MlpBuilder {
    /// No hidden layers, ReLU, softmax cross-entropy, SGD at lr 0.01, 10 epochs of batches
    /// of 128, seed 42, as a config file with only a data source would say.
    pub fn new() -> Self {
        MlpBuilder {
            config: Config {
                seed: 42,
                threads: None,
                data: DataConfig::default(),
                model: ModelConfig::default(),
                train: TrainConfig::default(),
                optimizer: OptimizerConfig::default(),
                schedule: ScheduleConfig::default(),
                output: OutputConfig::default(),
            },
            threads: None,
            on_epoch: None,
        }
    }

    /// Hidden layer widths, input side first.
    pub fn hidden(mut self, widths: impl IntoIterator<Item = usize>) -> Self {
        self.config.model.hidden = widths.into_iter().collect();
        self
    }

    /// The activation of every hidden layer.
    pub fn activation(mut self, a: Activation) -> Self {
        let (name, slope) = activation_name(a);
        self.config.model.activation = name;
        if let Some(s) = slope {
            self.config.model.leaky_slope = s;
        }
        self
    }

    /// The output layer's activation, for mean squared error (the cross-entropy losses
    /// take logits).
    pub fn output_activation(mut self, a: Activation) -> Self {
        self.config.model.output_activation = Some(activation_name(a).0);
        self
    }

    pub fn loss(mut self, loss: Loss) -> Self {
        self.config.model.loss = loss;
        self
    }

    pub fn optimizer(mut self, kind: OptimizerKind) -> Self {
        self.config.optimizer.kind = kind;
        self
    }

    /// The base learning rate.
    pub fn lr(mut self, lr: f32) -> Self {
        self.config.optimizer.lr = lr;
        self
    }

    /// Momentum of the momentum and Nesterov optimizers.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.config.optimizer.momentum = momentum;
        self
    }

    pub fn weight_decay(mut self, decay: f32) -> Self {
        self.config.optimizer.weight_decay = decay;
        self
    }

    /// How the learning rate changes per epoch (after any warmup).
    pub fn schedule(mut self, shape: Shape) -> Self {
        let s = &mut self.config.schedule;
        let warmup = s.warmup_epochs;
        *s = ScheduleConfig {
            warmup_epochs: warmup,
            ..ScheduleConfig::default()
        };
        match shape {
            Shape::Constant => s.kind = ScheduleKind::Constant,
            Shape::Step { every, factor } => {
                s.kind = ScheduleKind::Step;
                s.every = Some(every);
                s.factor = Some(factor);
            }
            Shape::Exponential { factor } => {
                s.kind = ScheduleKind::Exponential;
                s.factor = Some(factor);
            }
            Shape::Cosine { epochs, floor } => {
                s.kind = ScheduleKind::Cosine;
                s.epochs = Some(epochs);
                s.min_lr = floor;
            }
            Shape::OneCycle(c) => {
                s.kind = ScheduleKind::OneCycle;
                s.max_lr = Some(c.max_lr);
                s.pct_start = c.pct_start;
                s.div = c.div;
                s.final_div = c.final_div;
                s.cycle_momentum = c.momentum.is_some();
                if let Some((base, max)) = c.momentum {
                    (s.base_momentum, s.max_momentum) = (base, max);
                }
            }
        }
        self
    }

    /// Epochs of linear warmup before the schedule.
    pub fn warmup(mut self, epochs: usize) -> Self {
        self.config.schedule.warmup_epochs = epochs;
        self
    }

    pub fn epochs(mut self, epochs: usize) -> Self {
        self.config.train.epochs = epochs;
        self
    }

    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.config.train.batch_size = batch_size;
        self
    }

    /// Seeds initialisation, shuffles and the validation split: same seed, same model.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Threads for the run's products and passes [default: the physical cores].
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Holds this fraction of the training rows out for validation each epoch.
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.config.data.validation_split = fraction;
        self
    }

    /// Standardises every input as `(x - mean) / std` (after bytes are scaled to [0, 1]).
    pub fn standardize(mut self, mean: f32, std: f32) -> Self {
        self.config.data.mean = Some(mean);
        self.config.data.std = Some(std);
        self
    }

    /// The target column(s) of a CSV file given to [`MlpBuilder::fit_path`]; with
    /// `classification`, the single target column holds class labels `0..k`.
    pub fn csv_target(mut self, columns: &[&str], classification: bool) -> Self {
        let csv = self.config.data.csv.get_or_insert_with(|| CsvConfig {
            train: PathBuf::new(),
            test: None,
            test_fraction: 0.2,
            target: Vec::new(),
            classification: false,
        });
        csv.target = columns.iter().map(|c| c.to_string()).collect();
        csv.classification = classification;
        self
    }

    /// Called after every epoch with its figures (losses, accuracies, lr, timings).
    pub fn on_epoch(mut self, f: impl FnMut(&EpochRecord) + Send + 'static) -> Self {
        self.on_epoch = Some(Box::new(f));
        self
    }

    /// Trains on the rows of `x` and their targets; each epoch's test figures in the
    /// history are measured on the same rows (see [`MlpBuilder::fit_arrays_with_test`]).
    pub fn fit_arrays<'a>(
        self,
        x: ArrayView2<f32>,
        y: impl Into<ArrayTargets<'a>>,
    ) -> Result<Model> {
        let y = y.into();
        self.fit_arrays_with_test(x, y, x, y)
    }

    /// Trains on `x`, `y`, measuring the held-out `x_test`, `y_test` after each epoch.
    pub fn fit_arrays_with_test<'a, 'b>(
        mut self,
        x: ArrayView2<f32>,
        y: impl Into<ArrayTargets<'a>>,
        x_test: ArrayView2<f32>,
        y_test: impl Into<ArrayTargets<'b>>,
    ) -> Result<Model> {
        self.config.data.csv = None;
        self.config
            .validate_settings()
            .context("invalid MlpBuilder settings")?;
        let mut train = array_dataset("training arrays", x, y.into())?;
        let mut test = array_dataset("test arrays", x_test, y_test.into())?;
        if train.width() != test.width() {
            let what = "x_test: columns (features per sample of x)";
            return Err(ShapeError::new(what, train.width(), test.width()).into());
        }
        settle_classes(&mut train, &mut test, self.config.data.classes)?;
        let loaded = Loaded {
            config: self.config.clone(),
            path: PathBuf::from("arrays"),
            base_dir: PathBuf::from("."),
        };
        let exp = Experiment::with_data(loaded, train, test)?;
        // Nothing on disk describes this data: a saved model holds no config.
        self.run(exp, false)
    }

    /// Trains on the data at `path`: a folder with the four standard IDX files (MNIST's
    /// names, each possibly gzipped), or a CSV file with a header row (name its target with
    /// [`MlpBuilder::csv_target`]; a fifth of its rows are held out as the test set).
    pub fn fit_path(mut self, path: impl AsRef<Path>) -> Result<Model> {
        let path = std::path::absolute(path.as_ref())?;
        let d = &mut self.config.data;
        if path.is_dir() {
            d.csv = None;
            d.dir = Some(path.clone());
        } else if let Some(csv) = &mut d.csv {
            csv.train = path.clone();
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            bail!(
                "{}: a CSV file needs its target column(s) named: call .csv_target(&[\"y\"], \
                 classification) before fit_path",
                path.display()
            );
        } else {
            bail!(
                "{}: expected a folder of IDX files or a .csv file",
                path.display()
            );
        }
        self.config
            .validate()
            .context("invalid MlpBuilder settings")?;
        let loaded = Loaded {
            config: self.config.clone(),
            path: path.clone(),
            base_dir: PathBuf::from("."),
        };
        let (train, test) = load_data(&loaded).context("loading the data")?;
        let exp = Experiment::with_data(loaded, train, test)?;
        self.run(exp, true)
    }

    fn run(self, exp: Experiment, keep_config: bool) -> Result<Model> {
        let threads = self.threads.unwrap_or_else(default_threads);
        let pool = thread_pool(threads)?;
        let mut trainer = exp.trainer(exp.initial_state(), None)?;
        let mut observer = Callback(self.on_epoch);
        // Nothing raises it: a library run ends by its own rules.
        let never = AtomicBool::new(false);
        let reason = pool.install(|| trainer.fit(exp.sets(), &mut observer, &never))?;
        if let StopReason::Diverged {
            epoch,
            batch,
            detail,
        } = reason
        {
            bail!(
                "training diverged in epoch {epoch}, batch {batch}: {detail}; the learning rate \
                 ({}) is most likely too high",
                exp.loaded.config.optimizer.lr
            );
        }
        let state: TrainState = trainer.state;
        let config = keep_config.then(|| exp.loaded.clone());
        Ok(Model::new(
            state,
            exp.scaling,
            exp.loaded.config.seed,
            config,
        ))
    }
}

struct Callback(Option<EpochCallback>);

impl Observer for Callback {
    fn epoch_end(&mut self, _: &TrainState, record: &EpochRecord) -> Result<()> {
        if let Some(f) = &mut self.0 {
            f(record);
        }
        Ok(())
    }
}
