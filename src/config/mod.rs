//! The TOML run description: its sections ([`sections`]), the value checks
//! ([`validate`]), the command line's overrides ([`overrides`]) and the domain types it
//! builds ([`build`]). Unknown keys are rejected; syntax and type errors carry the line and
//! column; value errors name the field (`train.batch_size`) and the allowed range. Relative
//! paths are relative to the config file's folder.

pub mod build;
pub mod overrides;
pub mod sections;
pub mod validate;

pub use crate::data::csv::CsvConfig;
pub use crate::data::synth::{SineConfig, TanhConfig, XorConfig};
pub use overrides::Overrides;
pub use sections::{
    ActivationName, ClassWeights, Config, DataConfig, InitName, ModelConfig, OptimizerConfig,
    OutputConfig, Rates, Scale, ScheduleConfig, ScheduleKind, TrainConfig, WeightRule,
};

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The most threads a run may ask for: 4 per hardware thread. More only slow a run down,
/// and thousands exhaust the machine.
pub fn max_threads() -> usize {
    4 * crate::compute::hardware_threads()
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
            &mut o.tensorboard,
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
    use crate::data::files::{read_regular, NotRegular};
    let bytes = read_regular(path).map_err(|e| match e {
        NotRegular::Directory => anyhow::anyhow!(
            "config path {} is a folder, expected a TOML file",
            path.display()
        ),
        e => anyhow::anyhow!("cannot read config file {}: {e}", path.display()),
    })?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("config file {} is not UTF-8 text", path.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Loss;
    use crate::optim::schedule::Schedule;
    use crate::optim::OptimizerKind;

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
        assert!(bad("[model]\nlabel_smoothing = 1.0\n").starts_with("model.label_smoothing"));
        let mse = "[model]\nloss = \"mean_squared_error\"\nlabel_smoothing = 0.1\n";
        assert!(bad(mse).contains("softmax_cross_entropy only"));
        // The test set never steers training.
        let e = bad("[train]\ntarget_accuracy = 0.9\n");
        assert!(e.starts_with("train.monitor: the stop rules"), "{e}");
        assert!(e.contains("data.validation_split = 0.1"), "{e}");
        assert!(bad("[train]\npatience = 3\nmonitor = \"test\"\n").starts_with("train.monitor"));
        let ok = |extra: &str| parse(&format!("{MINIMAL}{extra}")).unwrap().validate();
        ok("validation_split = 0.1\n[train]\ntarget_accuracy = 0.9\n").unwrap();
        ok("[train]\ntarget_loss = 0.1\nmonitor = \"train\"\n").unwrap();
        // Dropout: one rate, or one per hidden layer; class weights: a rule or a list.
        ok("[model]\nhidden = [4, 4]\ndropout = 0.2\n").unwrap();
        ok("[model]\nhidden = [4, 4]\ndropout = [0.1, 0.5]\n").unwrap();
        let e = bad("[model]\nhidden = [4, 4]\ndropout = [0.1, 0.2, 0.3]\n");
        assert!(
            e.contains("model.dropout: has 3 rates for 2 hidden layers"),
            "{e}"
        );
        assert!(bad("[model]\ndropout = 1.0\n").starts_with("model.dropout"));
        ok("[train]\nclass_weights = \"balanced\"\n").unwrap();
        ok("[train]\nclass_weights = [1.0, 2.5]\n").unwrap();
        assert!(bad("[train]\nclass_weights = [1.0, -1.0]\n").starts_with("train.class_weights"));
        let mse = "[model]\nloss = \"mse\"\n[train]\nclass_weights = \"balanced\"\n";
        assert!(bad(mse).starts_with("train.class_weights"));
        assert!(parse(&format!("{MINIMAL}[train]\nclass_weights = \"even\"\n")).is_err());
    }
}
