//! [`Model`]: a trained network with the input transform it was trained with and its
//! history; predicts, evaluates, saves, loads and exports.

use super::arrays::{array_dataset, ArrayTargets};
use crate::config::Loaded;
use crate::data::{load_idx_sets, standard_paths, CachePolicy, Dataset, InputScaling, TargetData};
use crate::error::ShapeError;
use crate::model::loss::predicted_class;
use crate::model::{Activations, Input, Loss, Network};
use crate::output::checkpoint;
use crate::output::onnx::{self, InputKind};
use crate::train::{EpochRecord, Evaluator, Subset, TrainState};
use anyhow::{bail, Result};
use ndarray::{Array2, ArrayView2};
use std::path::Path;

/// Rows per forward pass when predicting: bounds the buffers, not the input.
const CHUNK: usize = 1024;

/// A trained network, as [`crate::MlpBuilder`] returns it or [`Model::load`] reads it.
///
/// ```
/// use backprop::{MlpBuilder, Model};
/// use ndarray::array;
///
/// let x = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
/// let y = vec![0u32, 1, 1, 1]; // OR
/// let model = MlpBuilder::new().hidden([4]).lr(0.5).epochs(200).batch_size(4).threads(1)
///     .fit_arrays(x.view(), &y)?;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("or.safetensors");
/// model.save(&path)?;
/// let back = Model::load(&path)?;
/// assert_eq!(back.predict(x.view())?, model.predict(x.view())?);
/// assert_eq!(back.evaluate_arrays(x.view(), &y)?.accuracy, Some(1.0));
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Model {
    state: TrainState,
    scaling: InputScaling,
    seed: u64,
    /// The run's config when its data is a path (saved along, as the command line does).
    config: Option<Loaded>,
}

/// The loss and accuracy of a model over a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub samples: usize,
    pub loss: f64,
    /// The fraction classified right (`None` for regression).
    pub accuracy: Option<f64>,
}

impl Model {
    pub(super) fn new(
        state: TrainState,
        scaling: InputScaling,
        seed: u64,
        config: Option<Loaded>,
    ) -> Self {
        Model {
            state,
            scaling,
            seed,
            config,
        }
    }

    pub fn network(&self) -> &Network {
        &self.state.net
    }

    /// One record per epoch trained: losses, accuracies, learning rate, timings.
    pub fn history(&self) -> &[EpochRecord] {
        &self.state.history
    }

    /// How raw inputs were scaled in training (and are scaled here before predicting).
    pub fn scaling(&self) -> InputScaling {
        self.scaling
    }

    /// Outputs for each row of float features: class probabilities for the cross-entropy
    /// losses (one column, the probability of class 1, for binary cross-entropy), the
    /// predicted values for mean squared error.
    pub fn predict(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.check_width("x", x.ncols())?;
        let t = self.scaling.transform();
        Ok(self.outputs(x.nrows(), |r, out| {
            let row = x.row(r);
            match row.as_slice() {
                Some(s) => t.floats(out, s),
                None => t.floats(out, &row.to_vec()),
            }
        }))
    }

    /// As [`Model::predict`], for byte features (a model trained on IDX images): each row is
    /// one image's bytes, flattened.
    pub fn predict_bytes(&self, x: ArrayView2<u8>) -> Result<Array2<f32>> {
        self.check_width("x", x.ncols())?;
        let t = self.scaling.transform();
        Ok(self.outputs(x.nrows(), |r, out| {
            let row: Vec<u8> = x.row(r).iter().copied().collect();
            t.bytes(out, &row);
        }))
    }

    /// The predicted class of each row of float features.
    pub fn predict_classes(&self, x: ArrayView2<f32>) -> Result<Vec<usize>> {
        let loss = self.state.net.arch.loss;
        let p = self.predict(x)?;
        // Probabilities order classes as logits do; binary cross-entropy's one column is
        // already P(class 1), so its threshold is that of a probability.
        Ok(p.rows()
            .into_iter()
            .map(|row| match loss {
                Loss::SigmoidBinaryCrossEntropy => usize::from(row[0] > 0.5),
                _ => predicted_class(loss, &row.to_vec()),
            })
            .collect())
    }

    /// Loss and accuracy on rows of float features and their targets.
    pub fn evaluate_arrays<'a>(
        &self,
        x: ArrayView2<f32>,
        y: impl Into<ArrayTargets<'a>>,
    ) -> Result<Evaluation> {
        let mut data = array_dataset("evaluation arrays", x, y.into())?;
        if let TargetData::Classes { labels, classes } = &mut data.targets {
            // The model's classes, not those the labels happen to show.
            *classes = self.state.net.arch.outputs().max(2);
            if let Some(i) = (0..x.nrows()).find(|&i| labels.get(i) as usize >= *classes) {
                bail!(
                    "evaluation arrays: label {} of row {i} is not below the model's {} classes",
                    labels.get(i),
                    classes
                );
            }
        }
        self.evaluate(&data)
    }

    /// Loss and accuracy on the test files (`t10k-*`) of an IDX folder.
    pub fn evaluate_path(&self, dir: impl AsRef<Path>) -> Result<Evaluation> {
        let dir = std::path::absolute(dir.as_ref())?;
        if !dir.is_dir() {
            bail!(
                "{}: evaluate_path takes a folder of IDX files; evaluate other data with \
                 evaluate_arrays",
                dir.display()
            );
        }
        let (_, test) = load_idx_sets(&standard_paths(&dir)?, None, &CachePolicy::default())?;
        self.evaluate(&test)
    }

    fn evaluate(&self, data: &Dataset) -> Result<Evaluation> {
        let net = &self.state.net;
        self.check_width(&data.name, data.width())?;
        if let Some(k) = data.classes() {
            let outputs = net.arch.loss.outputs_for_classes(k);
            if outputs != net.arch.outputs() {
                let what = format!("{}: classes (the model's outputs)", data.name);
                return Err(ShapeError::new(what, net.arch.outputs(), outputs).into());
            }
        } else if data.target_width() != net.arch.outputs() {
            let what = format!("{}: target columns (the model's outputs)", data.name);
            return Err(ShapeError::new(what, net.arch.outputs(), data.target_width()).into());
        }
        let transform = self.scaling.transform();
        let score = Evaluator::new(net, data, CHUNK).score(net, data, &transform, Subset::All);
        Ok(Evaluation {
            samples: score.samples,
            loss: score.mean_loss(),
            accuracy: score.accuracy(),
        })
    }

    /// Writes the model as a checkpoint (safetensors), the format `backprop eval`,
    /// `predict`, `export` and `--resume` read.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let config = self.config.as_ref();
        checkpoint::save(path.as_ref(), &self.state, &self.scaling, self.seed, config)
    }

    /// Reads a checkpoint written by [`Model::save`] or by `backprop --save`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let ck = checkpoint::load(path)?;
        let config = match ck.config {
            Some(_) => Some(ck.loaded_config(path)?),
            None => None,
        };
        Ok(Model::new(ck.state, ck.scaling, ck.seed, config))
    }

    /// The model as an ONNX graph taking raw `input` (see [`crate::output::onnx`]).
    pub fn to_onnx(&self, input: InputKind) -> Result<Vec<u8>> {
        onnx::export(&self.state.net, &self.scaling, input)
    }

    fn check_width(&self, what: &str, found: usize) -> Result<()> {
        let inputs = self.state.net.arch.inputs;
        if found != inputs {
            let what = format!("{what}: features per sample (the model's inputs)");
            return Err(ShapeError::new(what, inputs, found).into());
        }
        Ok(())
    }

    /// Forward passes over `n` rows in chunks; `fill(row, out)` writes one transformed row.
    fn outputs(&self, n: usize, fill: impl Fn(usize, &mut [f32])) -> Array2<f32> {
        let net = &self.state.net;
        let (width, outputs) = (net.arch.inputs, net.arch.outputs());
        let mut result = Array2::zeros((n, outputs));
        let mut acts = Activations::new(&net.arch, CHUNK.min(n).max(1));
        for start in (0..n).step_by(CHUNK) {
            let m = CHUNK.min(n - start);
            for (i, row) in acts.input_mut(m).chunks_mut(width).enumerate() {
                fill(start + i, row);
            }
            net.forward(&mut acts, m, Input::Dense);
            for (i, out) in acts.output(m).rows().into_iter().enumerate() {
                let mut row = out.to_vec();
                net.arch.loss.to_probabilities(&mut row);
                result
                    .row_mut(start + i)
                    .assign(&ndarray::ArrayView1::from(&row));
            }
        }
        result
    }
}
