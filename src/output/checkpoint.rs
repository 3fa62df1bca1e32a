//! Checkpoints in the safetensors format: one f32 tensor per weight and bias
//! (`layer{l}.weight` of shape `[inputs, outputs]`, `layer{l}.bias` of shape `[outputs]`, so
//! `y = x @ weight + bias`), the optimizer's state vectors as `optimizer.{name}.{tensor}`,
//! and metadata: the architecture, the input scaling, the config that trained it, the epoch
//! and the history. Random streams derive from the seed and the epoch, so seed + epoch is the
//! whole RNG state, and a resumed run continues bit for bit.

use crate::atomic;
use crate::compute::memory;
use crate::config::Loaded;
use crate::data::InputScaling;
use crate::model::architecture::tensor_layout;
use crate::model::{Architecture, Network};
use crate::optim::{Hyper, Optimizer};
use crate::train::{EpochRecord, Observer, TrainState};
use anyhow::{anyhow, bail, Context, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "backprop-checkpoint/1";

#[derive(Serialize, Deserialize)]
struct OptimizerMeta {
    hyper: Hyper,
    steps: u64,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    pub state: TrainState,
    pub scaling: InputScaling,
    pub seed: u64,
    /// The effective config of the run that wrote it, and the folder its paths are relative to.
    pub config: Option<(String, PathBuf)>,
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn shape(rows: usize, cols: usize) -> Vec<usize> {
    if rows == 1 {
        vec![cols]
    } else {
        vec![rows, cols]
    }
}

/// Writes `state` to `path` atomically (temporary file, then rename).
pub fn save(
    path: &Path,
    state: &TrainState,
    scaling: &InputScaling,
    seed: u64,
    loaded: Option<&Loaded>,
) -> Result<()> {
    let net = &state.net;
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for t in &net.tensors {
        let dims = shape(t.rows, t.cols);
        buffers.push((
            t.name.clone(),
            dims.clone(),
            le_bytes(&net.params[t.range()]),
        ));
        for (name, values) in state
            .optimizer
            .hyper
            .kind
            .state_names()
            .iter()
            .zip(&state.optimizer.state)
        {
            buffers.push((
                format!("optimizer.{name}.{}", t.name),
                dims.clone(),
                le_bytes(&values[t.range()]),
            ));
        }
    }
    let views = buffers
        .iter()
        .map(|(name, dims, bytes)| {
            Ok((
                name.as_str(),
                TensorView::new(Dtype::F32, dims.clone(), bytes)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert(
        "architecture".to_string(),
        serde_json::to_string(&net.arch)?,
    );
    meta.insert("input_scaling".to_string(), serde_json::to_string(scaling)?);
    meta.insert("epoch".to_string(), state.epochs_done().to_string());
    meta.insert("seed".to_string(), seed.to_string());
    meta.insert(
        "optimizer".to_string(),
        serde_json::to_string(&OptimizerMeta {
            hyper: state.optimizer.hyper,
            steps: state.optimizer.steps,
        })?,
    );
    meta.insert(
        "history".to_string(),
        serde_json::to_string(&state.history)?,
    );
    meta.insert(
        "layout".to_string(),
        "y = x @ weight + bias; weight is [inputs, outputs], row-major".to_string(),
    );
    if let Some(loaded) = loaded {
        meta.insert("config".to_string(), toml::to_string(&loaded.config)?);
        let dir = std::path::absolute(&loaded.base_dir).unwrap_or(loaded.base_dir.clone());
        meta.insert("config_dir".to_string(), dir.display().to_string());
    }
    let bytes = safetensors::serialize(views, Some(meta))?;
    atomic::write(path, &bytes)
        .with_context(|| format!("cannot write checkpoint {}", path.display()))
}

/// Saves a checkpoint every `every` epochs.
pub struct Periodic {
    pub path: PathBuf,
    pub every: usize,
    pub scaling: InputScaling,
    pub seed: u64,
    pub loaded: Loaded,
}

impl Observer for Periodic {
    fn epoch_end(&mut self, state: &TrainState, record: &EpochRecord) -> Result<()> {
        if record.epoch.is_multiple_of(self.every) {
            save(
                &self.path,
                state,
                &self.scaling,
                self.seed,
                Some(&self.loaded),
            )?;
        }
        Ok(())
    }
}

fn field<'a>(meta: &'a HashMap<String, String>, key: &str, path: &Path) -> Result<&'a str> {
    meta.get(key)
        .map(String::as_str)
        .ok_or_else(|| anyhow!("{}: checkpoint metadata has no `{key}`", path.display()))
}

/// Tensor `name` of the file, checked to be F32 of shape `dims` (before anything is
/// allocated from the metadata's architecture).
fn tensor<'a>(
    st: &'a SafeTensors,
    name: &str,
    dims: &[usize],
    path: &Path,
) -> Result<TensorView<'a>> {
    let t = st
        .tensor(name)
        .map_err(|e| anyhow!("{}: tensor `{name}`: {e}", path.display()))?;
    if t.dtype() != Dtype::F32 || t.shape() != dims {
        bail!(
            "{}: tensor `{name}` is {:?} of shape {:?}, expected F32 of shape {dims:?} (the \
             architecture in its metadata)",
            path.display(),
            t.dtype(),
            t.shape()
        );
    }
    Ok(t)
}

/// Copies a checked tensor into `out`, refusing NaN and infinities.
fn read_f32(t: &TensorView, name: &str, out: &mut [f32], path: &Path) -> Result<()> {
    for (i, (o, b)) in out.iter_mut().zip(t.data().chunks_exact(4)).enumerate() {
        *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if !o.is_finite() {
            bail!(
                "{}: tensor `{name}` holds {} at index {i}: the checkpoint is not a usable \
                 model (was it saved after training diverged?)",
                path.display(),
                *o
            );
        }
    }
    Ok(())
}

/// Reads a checkpoint written by [`save`].
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{}: not a safetensors file: {e}", path.display()))?;
    let meta = header.metadata().clone().ok_or_else(|| {
        anyhow!(
            "{}: safetensors file without backprop metadata",
            path.display()
        )
    })?;
    let format = field(&meta, "format", path)?;
    if format != FORMAT {
        bail!(
            "{}: checkpoint format `{format}`, expected `{FORMAT}`",
            path.display()
        );
    }
    let parse_err = |key: &str| {
        format!(
            "{}: checkpoint metadata `{key}` is malformed",
            path.display()
        )
    };
    let arch: Architecture = serde_json::from_str(field(&meta, "architecture", path)?)
        .with_context(|| parse_err("architecture"))?;
    arch.check()
        .map_err(|e| anyhow!("{}: checkpoint metadata `architecture` {e}", path.display()))?;
    let scaling: InputScaling = serde_json::from_str(field(&meta, "input_scaling", path)?)
        .with_context(|| parse_err("input_scaling"))?;
    let opt: OptimizerMeta = serde_json::from_str(field(&meta, "optimizer", path)?)
        .with_context(|| parse_err("optimizer"))?;
    let history: Vec<EpochRecord> = serde_json::from_str(field(&meta, "history", path)?)
        .with_context(|| parse_err("history"))?;
    let seed: u64 = field(&meta, "seed", path)?
        .parse()
        .with_context(|| parse_err("seed"))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{}: corrupt safetensors data: {e}", path.display()))?;

    // Every tensor's shape is checked against the metadata before anything is allocated:
    // the tensors exist in the file, so the allocation is bounded by its size.
    let states = opt.hyper.kind.state_names();
    let mut views = Vec::new();
    for t in tensor_layout(&arch) {
        let dims = shape(t.rows, t.cols);
        let mut group = vec![(t.name.clone(), tensor(&st, &t.name, &dims, path)?)];
        for name in states {
            let key = format!("optimizer.{name}.{}", t.name);
            group.push((key.clone(), tensor(&st, &key, &dims, path)?));
        }
        views.push((t, group));
    }
    memory::check(
        &format!("{}: loading the checkpoint", path.display()),
        arch.training_bytes(states.len(), 0),
    )
    .map_err(|e| anyhow!(e))?;
    let mut net = Network::zeros(arch);
    let mut optimizer = Optimizer::new(opt.hyper, &net.tensors);
    optimizer.steps = opt.steps;
    for (t, group) in &views {
        let mut targets = std::iter::once(&mut net.params).chain(optimizer.state.iter_mut());
        for ((name, view), values) in group.iter().zip(&mut targets) {
            read_f32(view, name, &mut values[t.range()], path)?;
        }
    }
    let config = match (meta.get("config"), meta.get("config_dir")) {
        (Some(c), Some(d)) => Some((c.clone(), PathBuf::from(d))),
        _ => None,
    };
    Ok(Checkpoint {
        state: TrainState {
            net,
            optimizer,
            history,
        },
        scaling,
        seed,
        config,
    })
}

impl Checkpoint {
    /// The config stored in the checkpoint, as if loaded from its original folder.
    pub fn loaded_config(&self, path: &Path) -> Result<Loaded> {
        let (text, dir) = self.config.as_ref().ok_or_else(|| {
            anyhow!(
                "{}: checkpoint holds no config; pass --config",
                path.display()
            )
        })?;
        let config = crate::config::parse(text)
            .map_err(|e| anyhow!("{}: stored config: {e}", path.display()))?;
        Ok(Loaded {
            config,
            path: path.to_path_buf(),
            base_dir: dir.clone(),
        })
    }
}
