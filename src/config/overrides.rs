//! Command-line values that replace the config's: plain data, so that the config knows
//! nothing of the command line that fills it.

use super::Loaded;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub lr: Option<f32>,
    pub hidden: Option<Vec<usize>>,
    pub seed: Option<u64>,
    pub threads: Option<usize>,
    /// A folder with the four standard IDX files (replaces the config's data source).
    pub data_dir: Option<PathBuf>,
    pub metrics: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    pub save: Option<PathBuf>,
    pub tensorboard: Option<PathBuf>,
    pub diagnostics: bool,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Overrides {
    /// Applies the overrides to a loaded config (paths here are relative to the working
    /// directory, not to the config's folder).
    pub fn apply(&self, loaded: &mut Loaded) {
        let c = &mut loaded.config;
        if let Some(v) = self.epochs {
            c.train.epochs = v;
        }
        if let Some(v) = self.batch_size {
            c.train.batch_size = v;
        }
        if let Some(v) = self.lr {
            c.optimizer.lr = v;
        }
        if let Some(v) = &self.hidden {
            c.model.hidden = v.clone();
            // Per-layer activations no longer line up with the new layers.
            c.model.activations = None;
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = self.threads {
            c.threads = Some(v);
        }
        if let Some(dir) = &self.data_dir {
            let d = &mut c.data;
            d.dir = Some(absolute(dir));
            d.train_images = None;
            d.train_labels = None;
            d.test_images = None;
            d.test_labels = None;
            d.sine = None;
            d.tanh = None;
            d.xor = None;
            d.csv = None;
        }
        let o = &mut c.output;
        for (flag, field) in [
            (&self.metrics, &mut o.metrics),
            (&self.csv, &mut o.csv),
            (&self.plot, &mut o.plot),
            (&self.save, &mut o.save),
            (&self.tensorboard, &mut o.tensorboard),
        ] {
            if let Some(p) = flag {
                *field = Some(absolute(p));
            }
        }
        if self.diagnostics {
            o.diagnostics = true;
        }
    }
}
