//! The multilayer perceptron: dense layers over one flat parameter vector.
//!
//! Row-major throughout: a batch is `n x features`, a layer's weight is `inputs x outputs`,
//! so `Z = X W + b`. The passes over it are in [`super::passes`].

use super::architecture::{tensor_layout, Architecture, TensorInfo, TensorKind};
use super::init::Init;
use crate::compute::rng;
use ndarray::{ArrayView1, ArrayView2};

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
}
