//! The multilayer perceptron: dense layers over one flat parameter vector, and the forward
//! and backward passes over buffers allocated once per batch size.
//!
//! Row-major throughout: a batch is `n x features`, a layer's weight is `inputs x outputs`,
//! so `Z = X W + b`, `dW = Xᵀ δ`, `db = Σ_rows δ`, `δ_prev = (δ Wᵀ) ⊙ f'(·)`, each product
//! one `sgemm` with the transposes passed as flags.

use crate::activation::Activation;
use crate::blas::{gemm, Op};
use crate::init::Init;
use crate::loss::{Loss, Score, Targets};
use crate::parallel;
use crate::rng;
use ndarray::{s, Array2, ArrayView1, ArrayView2, ArrayViewMut2};
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

fn tensor_layout(arch: &Architecture) -> Vec<TensorInfo> {
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

#[derive(Clone, Debug)]
pub struct Network {
    pub arch: Architecture,
    pub tensors: Vec<TensorInfo>,
    pub params: Vec<f32>,
}

impl Network {
    /// A network with all parameters zero.
    pub fn zeros(arch: Architecture) -> Self {
        let tensors = tensor_layout(&arch);
        let len = tensors.last().map_or(0, |t| t.offset + t.len());
        Network {
            arch,
            tensors,
            params: vec![0.0; len],
        }
    }

    /// Weights drawn by `init` (each layer from its own seeded stream), biases `bias`.
    pub fn initialised(arch: Architecture, init: Init, bias: f32, seed: u64) -> Self {
        let mut net = Self::zeros(arch);
        for t in net.tensors.clone() {
            let params = &mut net.params[t.range()];
            match t.kind {
                TensorKind::Weight => {
                    let act = net.arch.layers[t.layer].activation;
                    let mut rng = rng::stream(seed, rng::Stream::Init, t.layer as u64);
                    init.fill(act, params, t.rows, t.cols, &mut rng);
                }
                TensorKind::Bias => params.fill(bias),
            }
        }
        net
    }

    pub fn layer_count(&self) -> usize {
        self.arch.layers.len()
    }

    pub fn weight_info(&self, layer: usize) -> &TensorInfo {
        &self.tensors[2 * layer]
    }

    pub fn bias_info(&self, layer: usize) -> &TensorInfo {
        &self.tensors[2 * layer + 1]
    }

    pub fn weight(&self, layer: usize) -> ArrayView2<'_, f32> {
        let t = self.weight_info(layer);
        ArrayView2::from_shape((t.rows, t.cols), &self.params[t.range()]).expect("layout")
    }

    pub fn bias(&self, layer: usize) -> ArrayView1<'_, f32> {
        ArrayView1::from(&self.params[self.bias_info(layer).range()])
    }

    /// Forward pass over the first `n` rows of `acts.input`.
    pub fn forward(&self, acts: &mut Activations, n: usize) {
        for (l, layer) in self.arch.layers.iter().enumerate() {
            let (done, rest) = acts.bufs.split_at_mut(l + 1);
            let input = done[l].slice(s![..n, ..]);
            let mut out = rest[0].slice_mut(s![..n, ..]);
            gemm(
                1.0,
                input,
                Op::N,
                self.weight(l),
                Op::N,
                0.0,
                out.view_mut(),
            );
            let bias = &self.params[self.bias_info(l).range()];
            let out = out.into_slice().expect("row-major buffer");
            layer.activation.add_bias_and_apply(out, bias);
        }
    }

    /// Backward pass after [`Network::forward`] on the same `n` rows: scores the batch and
    /// writes the gradient of the batch-mean loss into `grads` (laid out like `params`).
    pub fn backward(
        &self,
        acts: &Activations,
        deltas: &mut Deltas,
        targets: Targets,
        grads: &mut [f32],
        n: usize,
    ) -> Score {
        let score = self.backward_deltas(acts, deltas, targets, n);
        accumulate_gradients(&self.tensors, acts, deltas, n, grads, |_| (1.0, 0.0));
        score
    }

    /// First half of the backward pass: scores the batch and fills every layer's delta
    /// (`∂loss/∂z`), using the current weights.
    pub fn backward_deltas(
        &self,
        acts: &Activations,
        deltas: &mut Deltas,
        targets: Targets,
        n: usize,
    ) -> Score {
        let last = self.layer_count() - 1;
        let score = self.arch.loss.score(
            acts.output(n),
            self.arch.layers[last].activation,
            targets,
            Some(deltas.bufs[last].slice_mut(s![..n, ..])),
        );
        for l in (1..=last).rev() {
            let (below, from_here) = deltas.bufs.split_at_mut(l);
            let delta = from_here[0].slice(s![..n, ..]);
            let mut prev = below[l - 1].slice_mut(s![..n, ..]);
            gemm(
                1.0,
                delta,
                Op::N,
                self.weight(l),
                Op::T,
                0.0,
                prev.view_mut(),
            );
            let prev = prev.into_slice().expect("row-major buffer");
            let a = acts.bufs[l].slice(s![..n, ..]);
            let a = a.as_slice().expect("row-major buffer");
            self.arch.layers[l - 1]
                .activation
                .scale_by_derivative(prev, a);
        }
        score
    }
}

/// Second half of the backward pass: for every tensor, `t = beta t + alpha g`, where `g` is
/// its gradient (`Xᵀ δ` for a weight, `Σ_rows δ` for a bias) and `t` its place in `target`
/// (laid out like the parameters). `alpha, beta = 1, 0` gives the plain gradient; an
/// optimizer may instead fold its update in (see [`crate::optim::Fusion`]).
pub fn accumulate_gradients(
    tensors: &[TensorInfo],
    acts: &Activations,
    deltas: &Deltas,
    n: usize,
    target: &mut [f32],
    coefficients: impl Fn(&TensorInfo) -> (f32, f32),
) {
    for t in tensors {
        let (alpha, beta) = coefficients(t);
        let delta = deltas.bufs[t.layer].slice(s![..n, ..]);
        match t.kind {
            TensorKind::Weight => {
                let out = ArrayViewMut2::from_shape((t.rows, t.cols), &mut target[t.range()])
                    .expect("layout");
                let input = acts.bufs[t.layer].slice(s![..n, ..]);
                gemm(alpha, input, Op::T, delta, Op::N, beta, out);
            }
            TensorKind::Bias => {
                let rows = delta.as_slice().expect("row-major buffer");
                parallel::column_sums(rows, t.cols, &mut target[t.range()], alpha, beta);
            }
        }
    }
}

/// Per-layer outputs for up to `capacity` rows; `bufs[0]` is the input batch,
/// `bufs[l + 1]` the (activated) output of layer `l`.
#[derive(Clone, Debug)]
pub struct Activations {
    pub bufs: Vec<Array2<f32>>,
}

impl Activations {
    pub fn new(arch: &Architecture, capacity: usize) -> Self {
        Activations {
            bufs: arch
                .widths()
                .into_iter()
                .map(|w| Array2::zeros((capacity, w)))
                .collect(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.bufs[0].nrows()
    }

    /// The input rows to fill before a forward pass.
    pub fn input_mut(&mut self, n: usize) -> &mut [f32] {
        let w = self.bufs[0].ncols();
        let all = self.bufs[0]
            .as_slice_mut()
            .expect("buffers are allocated row-major");
        &mut all[..n * w]
    }

    pub fn output(&self, n: usize) -> ArrayView2<'_, f32> {
        self.layer_output(self.bufs.len() - 2, n)
    }

    pub fn layer_output(&self, layer: usize, n: usize) -> ArrayView2<'_, f32> {
        self.bufs[layer + 1].slice(s![..n, ..])
    }
}

/// Per-layer gradients of the loss with respect to each layer's pre-activation.
#[derive(Clone, Debug)]
pub struct Deltas {
    pub bufs: Vec<Array2<f32>>,
}

impl Deltas {
    pub fn new(arch: &Architecture, capacity: usize) -> Self {
        Deltas {
            bufs: arch
                .layers
                .iter()
                .map(|l| Array2::zeros((capacity, l.outputs)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch() -> Architecture {
        Architecture {
            inputs: 3,
            input_shape: vec![3],
            layers: vec![
                LayerSpec {
                    outputs: 4,
                    activation: Activation::Relu,
                },
                LayerSpec {
                    outputs: 2,
                    activation: Activation::Identity,
                },
            ],
            loss: Loss::SoftmaxCrossEntropy,
        }
    }

    #[test]
    fn layout_names_and_sizes() {
        let net = Network::zeros(arch());
        let names: Vec<_> = net.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "layer0.weight",
                "layer0.bias",
                "layer1.weight",
                "layer1.bias"
            ]
        );
        assert_eq!(net.params.len(), 3 * 4 + 4 + 4 * 2 + 2);
        assert_eq!(net.weight(1).dim(), (4, 2));
        assert_eq!(
            arch().describe(),
            "3-4-2 (relu, identity; softmax_cross_entropy)"
        );
    }

    #[test]
    fn forward_matches_a_hand_computation() {
        let mut net = Network::zeros(arch());
        // layer0: identity-like weights, bias -1; layer1: sums of pairs.
        for (i, v) in [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
            .iter()
            .enumerate()
        {
            net.params[i] = *v;
        }
        net.params[12..16].fill(-1.0);
        net.params[16..24].copy_from_slice(&[1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
        net.params[24..26].copy_from_slice(&[0.5, 0.0]);
        let mut acts = Activations::new(&net.arch, 4);
        acts.input_mut(1).copy_from_slice(&[3.0, 2.0, 0.5]);
        net.forward(&mut acts, 1);
        // hidden = relu([3, 2, 0.5, 0.5] - 1) = [2, 1, 0, 0]; out = [2+1+0.5, 0+0]
        assert_eq!(
            acts.layer_output(0, 1).row(0).to_vec(),
            vec![2.0, 1.0, 0.0, 0.0]
        );
        assert_eq!(acts.output(1).row(0).to_vec(), vec![3.5, 0.0]);
    }
}
