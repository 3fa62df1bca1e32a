//! The per-batch buffers of the passes, allocated once for a largest batch.

use super::architecture::Architecture;
use super::dropout::{DropoutLayer, Mask};
use crate::compute::sparse::{AlignedRows, CsrBytes, Transpose};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

/// Per-layer outputs for up to `capacity` rows; `bufs[0]` is the input batch,
/// `bufs[l + 1]` the (activated) output of layer `l`. `pre[l]` keeps layer `l`'s
/// pre-activation `z` only when its activation's derivative needs it (SiLU); the others take
/// their derivative from the output.
#[derive(Clone, Debug)]
pub struct Activations {
    pub bufs: Vec<Array2<f32>>,
    pub pre: Vec<Option<Array2<f32>>>,
    /// The first layer's bias with a sparse input's mean subtraction folded in.
    pub first_bias: Vec<f32>,
    /// The first layer's weights as the sparse forward kernel reads them (sized by the first
    /// sparse forward pass).
    pub first_weights: AlignedRows,
    /// Per layer, its dropout buffers (hidden layers with a rate above 0, training only).
    pub dropout: Vec<Option<DropoutLayer>>,
    /// The masks the last forward pass applied (`None`: it applied none).
    pub mask: Option<Mask>,
}

impl Activations {
    pub fn new(arch: &Architecture, capacity: usize) -> Self {
        Activations {
            bufs: arch
                .widths()
                .into_iter()
                .map(|w| Array2::zeros((capacity, w)))
                .collect(),
            pre: arch
                .layers
                .iter()
                .map(|l| {
                    l.activation
                        .derivative_needs_input()
                        .then(|| Array2::zeros((capacity, l.outputs)))
                })
                .collect(),
            first_bias: vec![0.0; arch.layers.first().map_or(0, |l| l.outputs)],
            first_weights: AlignedRows::default(),
            dropout: vec![None; arch.layers.len()],
            mask: None,
        }
    }

    /// Buffers that can apply dropout with `rates[l]` to hidden layer `l`.
    pub fn with_dropout(arch: &Architecture, capacity: usize, rates: &[f32]) -> Self {
        let mut acts = Self::new(arch, capacity);
        for (l, &rate) in rates.iter().enumerate().filter(|(_, &r)| r > 0.0) {
            let width = arch.layers[l].outputs;
            assert!(l + 1 < arch.layers.len(), "dropout on the output layer");
            acts.dropout[l] = Some(DropoutLayer::new(rate, capacity, width));
        }
        acts
    }

    /// Layer `layer`'s output before and after its last mask's scale (`None`: no mask was
    /// applied to it in the last forward pass).
    pub fn last_mask(&self, layer: usize, n: usize) -> Option<(&[f32], &[f32])> {
        self.mask?;
        let d = self.dropout[layer].as_ref()?;
        Some(d.last_mask(n * d.unmasked.ncols()))
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
        rows(&self.bufs[layer + 1], n)
    }

    /// Layer `layer`'s pre-activation rows, where they are kept.
    pub fn layer_input(&self, layer: usize, n: usize) -> Option<&[f32]> {
        let pre = self.pre[layer].as_ref()?;
        let all = pre.as_slice().expect("buffers are allocated row-major");
        Some(&all[..n * pre.ncols()])
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

/// What the sparse first layer's weight gradient needs besides the deltas: the batch's
/// per-pixel transpose and the mean subtraction's rank-one term. Allocated once.
#[derive(Clone, Debug)]
pub struct SparseScratch {
    pub transpose: Transpose,
    /// `add * Σ_rows δ` of the first layer.
    pub offset: Vec<f32>,
}

impl SparseScratch {
    pub fn new(csr: &CsrBytes, arch: &Architecture, capacity: usize) -> Self {
        SparseScratch {
            transpose: Transpose::for_csr(csr, capacity),
            offset: vec![0.0; arch.layers.first().map_or(0, |l| l.outputs)],
        }
    }
}

/// The first `n` rows of a buffer: `slice(s![..n, ..])` in one split, without the general
/// slicing machinery (which cost ~20% of an online 1-6-1 step).
pub fn rows(buf: &Array2<f32>, n: usize) -> ArrayView2<'_, f32> {
    buf.view().split_at(Axis(0), n).0
}

/// [`rows`], writable.
pub fn rows_mut(buf: &mut Array2<f32>, n: usize) -> ArrayViewMut2<'_, f32> {
    buf.view_mut().split_at(Axis(0), n).0
}
