//! From a validated config to everything a run needs: the datasets, the input transform,
//! the architecture (input width and class count come from the data), and a trainer. The
//! command line and the library's [`super::MlpBuilder`] both start runs here.

use crate::compute::memory;
use crate::config::{ClassWeights, Config, Loaded, Scale, WeightRule};
use crate::data::{
    split_indices, CachePolicy, Dataset, InputScaling, InputTransform, OpenOptions, Source,
};
use crate::model::{dropout, Architecture, LayerSpec, Loss, Network};
use crate::optim::Optimizer;
use crate::train::{Monitor, Sets, StopRules, TrainState, Trainer, TrainerOptions};
use anyhow::{anyhow, bail, Context, Result};

pub struct Experiment {
    pub loaded: Loaded,
    pub train: Dataset,
    pub test: Dataset,
    pub train_indices: Vec<usize>,
    pub validation: Vec<usize>,
    pub scaling: InputScaling,
    pub transform: InputTransform,
    pub arch: Architecture,
    /// Things the user should hear about that are not errors.
    pub warnings: Vec<String>,
    /// Which first-layer path runs and why, for the header.
    pub input_path: String,
    /// The training loss' weight per class (empty for none).
    pub class_weights: Vec<f32>,
}

/// The physical core count (hyper-threads share the FPU that sgemm saturates).
pub fn default_threads() -> usize {
    num_cpus::get_physical().max(1)
}

/// The rayon pool every pass and product of a run shares (products are cut over it too).
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start worker threads")
}

/// The data source the config names, its paths resolved against the config's folder.
pub fn source(loaded: &Loaded) -> Result<Source> {
    let d = &loaded.config.data;
    let explicit = (
        &d.train_images,
        &d.train_labels,
        &d.test_images,
        &d.test_labels,
    );
    Ok(if let Some(dir) = &d.dir {
        Source::IdxDir(loaded.resolve(dir))
    } else if let (Some(a), Some(b), Some(c), Some(e)) = explicit {
        Source::IdxFiles([a, b, c, e].map(|p| loaded.resolve(p)))
    } else if let Some(sine) = &d.sine {
        Source::Sine(sine.clone())
    } else if let Some(t) = &d.tanh {
        Source::Tanh(t.clone())
    } else if let Some(xor) = &d.xor {
        Source::Xor(xor.clone())
    } else if let Some(csv) = &d.csv {
        let mut csv = csv.clone();
        csv.train = loaded.resolve(&csv.train);
        csv.test = csv.test.map(|t| loaded.resolve(&t));
        Source::Csv(csv)
    } else {
        bail!("data: no source given (validate the config first)");
    })
}

/// Reads the training and test sets the config describes.
pub fn load_data(loaded: &Loaded) -> Result<(Dataset, Dataset)> {
    let d = &loaded.config.data;
    let options = OpenOptions {
        classes: d.classes,
        seed: loaded.config.seed,
        cache: CachePolicy {
            fallback_dir: d.cache_dir.as_ref().map(|dir| loaded.resolve(dir)),
        },
    };
    let (train, test) = source(loaded)?.open(&options)?;
    if let Some(width) = d.input_width {
        if width != train.width() {
            bail!(
                "data.input_width = {width}, but {} has {} features per sample (shape {:?}); \
                 remove input_width or fix it",
                train.name,
                train.width(),
                train.sample_shape
            );
        }
    }
    Ok((train, test))
}

/// Builds the network shape for `train` from the model section.
pub fn architecture(loaded: &Loaded, train: &Dataset) -> Result<Architecture> {
    let cfg = &loaded.config;
    let loss = cfg.model.loss;
    let outputs = match (train.classes(), loss) {
        (None, Loss::SoftmaxCrossEntropy) => bail!(
            "model.loss = \"softmax_cross_entropy\" needs class labels, but {} has real-valued \
             targets; use loss = \"mean_squared_error\" for regression",
            train.name
        ),
        (Some(k), Loss::SigmoidBinaryCrossEntropy) if k != 2 => bail!(
            "model.loss = \"sigmoid_binary_cross_entropy\" takes two classes, but {} has {k}; \
             use softmax_cross_entropy",
            train.name
        ),
        (Some(k), _) => loss.outputs_for_classes(k),
        (None, _) => train.target_width(),
    };
    let mut layers: Vec<LayerSpec> = cfg
        .model
        .hidden
        .iter()
        .zip(cfg.hidden_activations())
        .map(|(&outputs, activation)| LayerSpec {
            outputs,
            activation,
        })
        .collect();
    layers.push(LayerSpec {
        outputs,
        activation: cfg.output_activation(),
    });
    Ok(Architecture {
        inputs: train.width(),
        input_shape: train.sample_shape.clone(),
        layers,
        loss,
    })
}

/// The config's class weights for training on `indices` of `train` (empty for none).
fn class_weights(cfg: &Config, train: &Dataset, indices: &[usize]) -> Result<Vec<f32>> {
    let Some(rule) = &cfg.train.class_weights else {
        return Ok(Vec::new());
    };
    let Some(classes) = train.classes() else {
        bail!(
            "train.class_weights: {} has real-valued targets; class weights need class labels",
            train.name
        );
    };
    match rule {
        ClassWeights::Rule(WeightRule::Balanced) => Ok(train
            .balanced_class_weights(indices)
            .expect("labelled data")),
        ClassWeights::List(w) if w.len() == classes => Ok(w.clone()),
        ClassWeights::List(w) => bail!(
            "train.class_weights: has {} weights, but {} has {classes} classes (one weight per \
             class, in label order)",
            w.len(),
            train.name
        ),
    }
}

impl Experiment {
    /// The dropout rate of each hidden layer.
    pub fn dropout_rates(&self) -> Vec<f32> {
        let hidden = self.arch.layers.len() - 1;
        dropout::rates_per_layer(self.loaded.config.model.dropout.as_slice(), hidden)
    }

    /// Loads the data and settles the shape; `loaded` must already be validated.
    pub fn prepare(loaded: Loaded) -> Result<Self> {
        let (train, test) = load_data(&loaded).context("loading the data")?;
        Self::with_data(loaded, train, test)
    }

    /// As [`Experiment::prepare`], with the data already read (classes settled, widths
    /// checked against each other).
    pub fn with_data(loaded: Loaded, mut train: Dataset, mut test: Dataset) -> Result<Self> {
        let (sparse, input_path) = loaded.config.train.sparse_input.decide(&train)?;
        if sparse {
            train.compress()?;
            test.compress()?;
        }
        let arch = architecture(&loaded, &train)?;
        let cfg = &loaded.config;
        // Optimizer state, gradients, the epoch snapshot of both; a batch and an eval chunk.
        let copies = 2 + 2 * cfg.optimizer.kind.state_names().len();
        let rows = cfg.train.batch_size.min(train.len()) + cfg.train.eval_chunk;
        memory::check(
            &format!("training the network {}", arch.describe()),
            arch.training_bytes(copies, rows),
        )
        .map_err(|e| anyhow!("{e}; make model.hidden (or --hidden) smaller"))?;
        let (train_indices, validation) =
            split_indices(train.len(), cfg.data.validation_split, cfg.seed);
        if train_indices.is_empty() {
            bail!("data.validation_split leaves no training samples");
        }
        if cfg.data.validation_split > 0.0 && validation.is_empty() {
            bail!(
                "data.validation_split = {} of {} samples rounds to 0 validation samples; use at \
                 least {:.2e}, or 0 for no validation set",
                cfg.data.validation_split,
                train.len(),
                1.0 / train.len() as f64
            );
        }
        let mut warnings = Vec::new();
        if cfg.train.batch_size > train_indices.len() {
            warnings.push(format!(
                "train.batch_size = {} is larger than the {} training samples; using {} \
                 (full-batch training)",
                cfg.train.batch_size,
                train_indices.len(),
                train_indices.len()
            ));
        }
        let raw_bytes = train.is_bytes() && cfg.data.scale == Scale::None;
        if raw_bytes && cfg.data.std.is_none() {
            warnings.push(
                "inputs are raw bytes 0..255 (data.scale = \"none\"): sigmoid and tanh units \
                 will saturate and learning stalls; use data.scale = \"unit\""
                    .to_string(),
            );
        }
        let class_weights = class_weights(cfg, &train, &train_indices)?;
        let scaling = InputScaling {
            byte_scale: if cfg.data.scale == Scale::Unit {
                1.0 / 255.0
            } else {
                1.0
            },
            mean: cfg.data.mean.unwrap_or(0.0),
            std: cfg.data.std.unwrap_or(1.0),
        };
        Ok(Experiment {
            transform: scaling.transform(),
            scaling,
            train,
            test,
            train_indices,
            validation,
            arch,
            warnings,
            input_path,
            class_weights,
            loaded,
        })
    }

    pub fn sets(&self) -> Sets<'_> {
        Sets {
            train: &self.train,
            train_indices: &self.train_indices,
            validation: &self.validation,
            test: &self.test,
            transform: &self.transform,
        }
    }

    /// A freshly initialised model and optimizer.
    pub fn initial_state(&self) -> TrainState {
        let cfg = &self.loaded.config;
        let net =
            Network::initialised(self.arch.clone(), cfg.init(), cfg.model.bias_init, cfg.seed);
        let optimizer = Optimizer::new(cfg.hyper(), &net.tensors);
        TrainState {
            net,
            optimizer,
            history: Vec::new(),
        }
    }

    pub fn rules(&self) -> StopRules {
        let t = &self.loaded.config.train;
        let monitor = match t.monitor {
            Some(m) => m,
            // Without stop rules nothing reads it (the config refuses rules on the test set).
            None if self.validation.is_empty() => Monitor::Test,
            None => Monitor::Validation,
        };
        StopRules {
            epochs: t.epochs,
            target_accuracy: t.target_accuracy,
            target_loss: t.target_loss,
            patience: t.patience,
            min_delta: t.min_delta,
            monitor,
        }
    }

    /// The config's training options.
    pub fn trainer_options(&self, diagnostics_every: Option<usize>) -> TrainerOptions {
        let t = &self.loaded.config.train;
        TrainerOptions {
            batch_size: t.batch_size,
            drop_last: t.drop_last,
            eval_chunk: t.eval_chunk,
            diagnostics_every,
            label_smoothing: self.loaded.config.model.label_smoothing,
            dropout: self.dropout_rates(),
            class_weights: self.class_weights.clone(),
        }
    }

    pub fn trainer(&self, state: TrainState, diagnostics_every: Option<usize>) -> Result<Trainer> {
        let rules = self.rules();
        if rules.monitor == Monitor::Validation && self.validation.is_empty() {
            bail!("train.monitor = \"validation\" needs data.validation_split > 0");
        }
        let options = self.trainer_options(diagnostics_every);
        Ok(Trainer::new(
            state,
            self.loaded.config.schedule(),
            rules,
            self.loaded.config.seed,
            self.sets(),
            &options,
        ))
    }
}
