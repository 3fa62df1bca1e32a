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
    /// A flat input of `inputs` features, then `(outputs, activation)` per layer (the last
    /// being the output layer), read by `loss`.
    pub fn flat(inputs: usize, layers: &[(usize, Activation)], loss: Loss) -> Self {
        Architecture {
            inputs,
            input_shape: vec![inputs],
            layers: layers
                .iter()
                .map(|&(outputs, activation)| LayerSpec {
                    outputs,
                    activation,
                })
                .collect(),
            loss,
        }
    }

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

    /// Parameters, with overflow checked (`None`: past what a machine can address).
    pub fn param_count(&self) -> Option<usize> {
        self.layers
            .iter()
            .enumerate()
            .try_fold(0usize, |acc, (l, layer)| {
                let weights = self.layer_inputs(l).checked_mul(layer.outputs)?;
                acc.checked_add(weights)?.checked_add(layer.outputs)
            })
    }

    /// Multiply-adds of the largest product a step on `rows` rows runs (a layer's forward
    /// product; its two backward products are the same size).
    pub fn largest_product(&self, rows: usize) -> usize {
        (0..self.layers.len())
            .map(|l| rows * self.layer_inputs(l) * self.layers[l].outputs)
            .max()
            .unwrap_or(0)
    }

    /// Bytes a training run holds: the parameters with `param_copies` copies of their size
    /// (optimizer state, gradients, the epoch snapshot), and activations and deltas for
    /// `rows` rows of every layer. An estimate for the budget check, not an exact count.
    pub fn training_bytes(&self, param_copies: usize, rows: usize) -> Option<u128> {
        let params = self.param_count()? as u128;
        let widths: u128 = self.widths().iter().map(|&w| w as u128).sum();
        let per_row = widths.checked_mul(3)?;
        let values = params
            .checked_mul(1 + param_copies as u128)?
            .checked_add(per_row.checked_mul(rows as u128)?)?;
        values.checked_mul(4)
    }

    /// What a checkpoint's or a config's architecture must satisfy before anything is
    /// allocated from it.
    pub fn check(&self) -> Result<(), String> {
        if self.layers.is_empty() {
            return Err("has no layers".into());
        }
        if let Some(l) = self.layers.iter().position(|l| l.outputs == 0) {
            return Err(format!("layer {l} has 0 outputs"));
        }
        if self.inputs == 0 {
            return Err("has 0 inputs".into());
        }
        let shape = self
            .input_shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d));
        if shape != Some(self.inputs) {
            return Err(format!(
                "input_shape {:?} does not hold {} inputs",
                self.input_shape, self.inputs
            ));
        }
        if self.param_count().is_none() {
            return Err("layer sizes multiply past what this machine can address".into());
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_product_is_the_widest_layers_forward() {
        let relu = Activation::Relu;
        let mnist = Architecture::flat(
            784,
            &[(300, relu), (300, relu), (10, Activation::Identity)],
            Loss::SoftmaxCrossEntropy,
        );
        assert_eq!(mnist.largest_product(32), 32 * 784 * 300);
        let sine = Architecture::flat(
            1,
            &[(6, Activation::Tanh), (1, Activation::Identity)],
            Loss::MeanSquaredError,
        );
        assert_eq!(sine.largest_product(1), 6);
    }
}
