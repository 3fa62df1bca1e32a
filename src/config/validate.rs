//! Value checks the types cannot make: ranges, combinations, required companions. Each
//! failure is a [`ConfigError`] naming the field.

use super::sections::{ActivationName, ClassWeights, Config, InitName};
use crate::error::ConfigError;
use crate::model::Loss;
use crate::train::Monitor;

fn check(ok: bool, field: &str, what: impl std::fmt::Display) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(field, what))
    }
}

impl Config {
    /// Checks values the types cannot: ranges, combinations, required companions.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
            + usize::from(d.tanh.is_some())
            + usize::from(d.xor.is_some())
            + usize::from(d.csv.is_some());
        check(
            sources == 1,
            "data",
            "give exactly one source: `dir`, the four paths `train_images`, `train_labels`, \
             `test_images`, `test_labels`, or one of the tables [data.sine], [data.tanh], [data.xor], \
             [data.csv]",
        )?;
        check(
            explicit == 0 || explicit == 4,
            "data",
            "explicit IDX paths need all four of train_images, train_labels, test_images, test_labels",
        )?;
        self.validate_settings()
    }

    /// Every check but that of the source's presence: for data given in memory (the library
    /// API's arrays).
    pub fn validate_settings(&self) -> Result<(), ConfigError> {
        let d = &self.data;
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
        if let Some(t) = &d.tanh {
            check(
                t.train_samples > 0 && t.test_samples > 1,
                "data.tanh",
                "needs train_samples >= 1 and test_samples >= 2",
            )?;
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

    fn validate_model(&self) -> Result<(), ConfigError> {
        let m = &self.model;
        if let Some(i) = m.hidden.iter().position(|&w| w == 0) {
            return Err(ConfigError::new(
                "model.hidden",
                format!("layer {i} has width 0; every hidden layer needs at least 1 unit"),
            ));
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
            (0.0..1.0).contains(&m.label_smoothing),
            "model.label_smoothing",
            format!("must be in [0, 1), got {}", m.label_smoothing),
        )?;
        check(
            m.label_smoothing == 0.0 || m.loss == Loss::SoftmaxCrossEntropy,
            "model.label_smoothing",
            "smooths the targets of softmax_cross_entropy only",
        )?;
        let rates = m.dropout.as_slice();
        check(
            rates.iter().all(|r| (0.0..1.0).contains(r)),
            "model.dropout",
            format!("every rate must be in [0, 1), got {rates:?}"),
        )?;
        check(
            rates.len() <= 1 || rates.len() == m.hidden.len(),
            "model.dropout",
            format!(
                "has {} rates for {} hidden layers (give one rate, or one per hidden layer)",
                rates.len(),
                m.hidden.len()
            ),
        )?;
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
            m.output_activation != Some(ActivationName::Silu),
            "model.output_activation",
            "silu is for hidden layers; use identity, sigmoid or tanh for the output",
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

    fn validate_training(&self) -> Result<(), ConfigError> {
        let t = &self.train;
        check(t.epochs > 0, "train.epochs", "must be at least 1")?;
        if let Some(ClassWeights::List(w)) = &t.class_weights {
            check(
                w.iter().all(|v| v.is_finite() && *v >= 0.0) && w.iter().any(|&v| v > 0.0),
                "train.class_weights",
                format!("weights must be finite, >= 0 and not all 0, got {w:?}"),
            )?;
        }
        check(
            t.class_weights.is_none() || self.model.loss != Loss::MeanSquaredError,
            "train.class_weights",
            "weights the classes of a classification loss (softmax_cross_entropy or \
             sigmoid_binary_cross_entropy), not mean_squared_error",
        )?;
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
        let stops_early =
            t.target_accuracy.is_some() || t.target_loss.is_some() || t.patience.is_some();
        let watches_test = match t.monitor {
            Some(m) => m == Monitor::Test,
            None => self.data.validation_split == 0.0,
        };
        check(
            !(stops_early && watches_test),
            "train.monitor",
            "the stop rules (target_accuracy, target_loss, patience) would watch the test set, \
             and the test set must never steer training: add data.validation_split = 0.1 (they \
             then watch that held-out part of the training data), or set train.monitor = \
             \"train\"",
        )?;
        check(self.threads != Some(0), "threads", "must be at least 1")?;
        let max = super::max_threads();
        check(
            self.threads.is_none_or(|t| t <= max),
            "threads",
            format!("is more than 4 per core of this machine ({max} at most)"),
        )?;
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
            s.epochs != Some(0),
            "schedule.epochs",
            "must be at least 1: a cosine over 0 epochs sits at min_lr for the whole run",
        )?;
        check(
            s.warmup_epochs < t.epochs,
            "schedule.warmup_epochs",
            format!(
                "is {}, but the run has {} epoch(s): the learning rate would still be ramping \
                 up when training ends; use fewer warmup epochs or more epochs",
                s.warmup_epochs, t.epochs
            ),
        )?;
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
            s.max_lr.is_none_or(|m| m.is_finite() && m > 0.0),
            "schedule.max_lr",
            "must be positive and finite",
        )?;
        check(
            s.pct_start > 0.0 && s.pct_start < 1.0,
            "schedule.pct_start",
            format!("must be in (0, 1), got {}", s.pct_start),
        )?;
        check(
            s.div.is_finite() && s.div >= 1.0 && s.final_div.is_finite() && s.final_div >= 1.0,
            "schedule.div/final_div",
            "must be finite and at least 1 (they divide max_lr)",
        )?;
        check(
            (0.0..1.0).contains(&s.base_momentum)
                && (0.0..1.0).contains(&s.max_momentum)
                && s.base_momentum <= s.max_momentum,
            "schedule.base_momentum/max_momentum",
            "must be in [0, 1) with base_momentum <= max_momentum",
        )?;
        check(
            self.output.checkpoint_every != Some(0),
            "output.checkpoint_every",
            "must be at least 1",
        )
    }
}
