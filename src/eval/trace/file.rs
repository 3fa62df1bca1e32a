//! Traces in safetensors files: written in f32 (as trained) or f64, read in either (and in
//! integer types, for a user who saves labels).

use super::{Tensor, Trace};
use crate::atomic;
use anyhow::{anyhow, bail, Context, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::path::Path;

/// Writes `trace` to `path` atomically, every tensor as f64 if `f64`, else as f32.
pub fn save(trace: &Trace, path: &Path, f64: bool) -> Result<()> {
    let bytes: Vec<Vec<u8>> = trace
        .tensors
        .iter()
        .map(|t| {
            if f64 {
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect()
            } else {
                t.data
                    .iter()
                    .flat_map(|&v| (v as f32).to_le_bytes())
                    .collect()
            }
        })
        .collect();
    let dtype = if f64 { Dtype::F64 } else { Dtype::F32 };
    let views = trace
        .tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| Ok((t.name.as_str(), TensorView::new(dtype, t.shape.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let data = safetensors::serialize(views, Some(trace.metadata.clone()))?;
    atomic::write(path, &data).with_context(|| format!("cannot write trace {}", path.display()))
}

fn values(t: &TensorView, name: &str, path: &Path) -> Result<Vec<f64>> {
    let b = t.data();
    let chunks = |n: usize| b.chunks_exact(n);
    Ok(match t.dtype() {
        Dtype::F64 => chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        Dtype::F32 => chunks(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        Dtype::I64 => chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64)
            .collect(),
        Dtype::I32 => chunks(4)
            .map(|c| f64::from(i32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        other => bail!(
            "{}: tensor `{name}` is {other:?}; expected float32 or float64",
            path.display()
        ),
    })
}

/// Reads a trace (ours, or one a user's code saved under the same names).
pub fn load(path: &Path) -> Result<Trace> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{}: not a safetensors file: {e}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{}: corrupt safetensors data: {e}", path.display()))?;
    let mut trace = Trace {
        metadata: meta.metadata().clone().unwrap_or_default(),
        ..Trace::default()
    };
    for (name, view) in st.tensors() {
        let data = values(&view, &name, path)?;
        trace.push(Tensor::new(name, view.shape().to_vec(), data));
    }
    Ok(trace)
}
