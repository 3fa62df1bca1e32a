//! A network's shape: the input, the layers and the loss, and where each parameter tensor
//! lives in the one flat parameter vector (so an optimizer or an allreduce sees one buffer).

use super::activation::Activation;
use super::loss::Loss;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSpec {
    pub outputs: usize,
    pub activation: Activation,
}

/// Everything needed to rebuild a network's shape: the input, the layers (the last one is the
/// output layer) and the loss that reads the output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    pub inputs: usize,
    /// The shape of one input sample before flattening (e.g. `[28, 28]`).
    pub input_shape: Vec<usize>,
    pub layers: Vec<LayerSpec>,
    pub loss: Loss,
}

impl Architecture {
    pub fn layer_inputs(&self, layer: usize) -> usize {
        if layer == 0 {
            self.inputs
        } else {
            self.layers[layer - 1].outputs
        }
    }

    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(self.inputs, |l| l.outputs)
    }

    pub fn widths(&self) -> Vec<usize> {
        std::iter::once(self.inputs)
            .chain(self.layers.iter().map(|l| l.outputs))
            .collect()
    }

    /// Multiply-adds of the largest product of a training step on `n` rows (every product of
    /// layer `l` has `n * inputs * outputs` of them; the first layer's, reading sparse rows of
    /// this density, that fraction).
    pub fn largest_product(&self, n: usize, first_layer_density: f64) -> usize {
        (0..self.layers.len())
            .map(|l| {
                let macs = n * self.layer_inputs(l) * self.layers[l].outputs;
                if l == 0 {
                    (macs as f64 * first_layer_density) as usize
                } else {
                    macs
                }
            })
            .max()
            .unwrap_or(0)
    }

    /// `784-300-300-10` style.
    pub fn describe(&self) -> String {
        let widths: Vec<String> = self.widths().iter().map(usize::to_string).collect();
        let acts: Vec<&str> = self.layers.iter().map(|l| l.activation.name()).collect();
        format!(
            "{} ({}; {})",
            widths.join("-"),
            acts.join(", "),
            self.loss.name()
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TensorKind {
    Weight,
    Bias,
}

/// Where one parameter tensor lives in the flat parameter vector.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub layer: usize,
    pub kind: TensorKind,
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
}

impl TensorInfo {
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

pub(crate) fn tensor_layout(arch: &Architecture) -> Vec<TensorInfo> {
    let mut offset = 0;
    let mut tensors = Vec::with_capacity(2 * arch.layers.len());
    for (l, layer) in arch.layers.iter().enumerate() {
        for (kind, rows) in [
            (TensorKind::Weight, arch.layer_inputs(l)),
            (TensorKind::Bias, 1),
        ] {
            let suffix = if kind == TensorKind::Weight {
                "weight"
            } else {
                "bias"
            };
            tensors.push(TensorInfo {
                name: format!("layer{l}.{suffix}"),
                layer: l,
                kind,
                offset,
                rows,
                cols: layer.outputs,
            });
            offset += rows * layer.outputs;
        }
    }
    tensors
}
