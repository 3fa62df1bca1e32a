//! The forward and backward passes, each product one `sgemm` with the transposes passed as
//! flags: `Z = X W + b`, `δ_prev = (δ Wᵀ) ⊙ f'(·)`, and the gradient products `dW = Xᵀ δ`,
//! `db = Σ_rows δ`, which [`Gradients`] leaves to its holder (an optimizer) to accumulate
//! wherever its update rule wants them.
//!
//! A byte input kept as compressed rows ([`Input::Sparse`]) skips its zeros in the first
//! layer's two products (there is no input delta). Its standardisation `x = b·mul + add` is
//! folded in exactly, so that the zeros stay zeros: `X W = (B·mul) W + add·colsum(W)` (into
//! the bias) and `Xᵀ δ = (B·mul)ᵀ δ + add·colsum(δ)` (a term every weight row gets).

use super::architecture::{TensorInfo, TensorKind};
use super::buffers::{rows, rows_mut, Activations, Deltas, SparseScratch};
use super::dropout::Mask;
use super::loss::{Score, Shaping, Targets};
use super::network::Network;
use crate::compute::blas::{gemm, Op};
use crate::compute::elementwise;
use crate::compute::sparse::{self, CsrBytes};
use ndarray::ArrayViewMut2;

/// Where the first layer's input rows come from.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// `acts.bufs[0]`, filled by the caller.
    Dense,
    /// Rows of a byte dataset kept as compressed rows, transformed on the fly.
    Sparse(SparseRows<'a>),
}

/// Rows `rows` of `csr`, as inputs `x = table[byte] + add` (`table[b] = b·mul`).
#[derive(Clone, Copy, Debug)]
pub struct SparseRows<'a> {
    pub csr: &'a CsrBytes,
    pub rows: &'a [usize],
    pub table: &'a [f32; 256],
    pub add: f32,
}

impl Network {
    /// Forward pass over `n` rows of `input` (for a dense input, the first `n` rows of
    /// `acts.bufs[0]`).
    pub fn forward(&self, acts: &mut Activations, n: usize, input: Input) {
        self.forward_masked(acts, n, input, None);
    }

    /// [`Network::forward`] as in training: with `mask`, the hidden layers that have dropout
    /// buffers in `acts` are masked (see [`super::dropout`]).
    pub fn forward_masked(
        &self,
        acts: &mut Activations,
        n: usize,
        input: Input,
        mask: Option<Mask>,
    ) {
        acts.mask = mask;
        for (l, layer) in self.arch.layers.iter().enumerate() {
            let (done, rest) = acts.bufs.split_at_mut(l + 1);
            let mut out = rows_mut(&mut rest[0], n);
            let mut bias = &self.params[self.bias_info(l).range()];
            match input {
                Input::Sparse(x) if l == 0 => {
                    let w = &self.params[self.weight_info(0).range()];
                    let out = out.as_slice_mut().expect("row-major buffer");
                    let aligned = &mut acts.first_weights;
                    sparse::forward(x.csr, x.rows, x.table, w, layer.outputs, out, aligned);
                    if x.add != 0.0 {
                        let folded = &mut acts.first_bias;
                        elementwise::column_sums(w, layer.outputs, folded, x.add, 0.0);
                        folded.iter_mut().zip(bias).for_each(|(f, b)| *f += b);
                        bias = folded;
                    }
                }
                _ => {
                    let x = rows(&done[l], n);
                    let w = self.weight(l);
                    gemm(1.0, x, Op::N, w, Op::N, 0.0, out.view_mut());
                }
            }
            let out = out.into_slice().expect("row-major buffer");
            match acts.pre[l].as_mut() {
                Some(pre) => {
                    let pre = &mut pre.as_slice_mut().expect("row-major buffer")[..out.len()];
                    layer
                        .activation
                        .add_bias_keep_input_and_apply(out, pre, bias);
                }
                None => layer.activation.add_bias_and_apply(out, bias),
            }
            if let (Some(mask), Some(dropout)) = (mask, acts.dropout[l].as_mut()) {
                dropout.apply(out, mask, l);
            }
        }
    }

    /// Backward pass after [`Network::forward`] on the same `n` rows: scores the batch and
    /// fills every layer's delta (`∂loss/∂z` of the batch-mean loss), using the current
    /// weights. The gradient products follow from [`Network::gradients`]. `shaping` is the
    /// training loss' label smoothing and class weights (the default for none).
    pub fn backward(
        &self,
        acts: &Activations,
        deltas: &mut Deltas,
        targets: Targets,
        n: usize,
        shaping: Shaping,
    ) -> Score {
        let last = self.layer_count() - 1;
        let score = self.arch.loss.score(
            acts.output(n),
            self.arch.layers[last].activation,
            targets,
            Some(rows_mut(&mut deltas.bufs[last], n)),
            shaping,
        );
        for l in (1..=last).rev() {
            let (below, from_here) = deltas.bufs.split_at_mut(l);
            let delta = rows(&from_here[0], n);
            let mut prev = rows_mut(&mut below[l - 1], n);
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
            let a = rows(&acts.bufs[l], n);
            let mut a = a.as_slice().expect("row-major buffer");
            // Through a dropout mask: scaled as the forward pass scaled, and the derivative
            // taken from the output before the mask.
            if let Some((unmasked, scale)) = acts.last_mask(l - 1, n) {
                elementwise::rows2(prev, scale, 1, elementwise::Cost::Cheap, |p, s| {
                    p.iter_mut().zip(s).for_each(|(p, s)| *p *= s)
                });
                a = unmasked;
            }
            self.arch.layers[l - 1].activation.scale_by_derivative(
                prev,
                a,
                acts.layer_input(l - 1, n),
            );
        }
        score
    }

    /// The gradient products of the batch last passed backward (with the same `input`).
    pub fn gradients<'a>(
        &'a self,
        acts: &'a Activations,
        deltas: &'a Deltas,
        n: usize,
        input: Input<'a>,
        scratch: Option<&'a mut SparseScratch>,
    ) -> Gradients<'a> {
        Gradients::new(&self.tensors, acts, deltas, n, input, scratch)
    }
}

/// The gradient of the batch-mean loss, as products not yet evaluated: the holder decides
/// where each tensor's product accumulates (a gradient buffer, or straight into the weights
/// or a velocity: the optimizer decides).
pub struct Gradients<'a> {
    tensors: &'a [TensorInfo],
    acts: &'a Activations,
    deltas: &'a Deltas,
    n: usize,
    input: Input<'a>,
    scratch: Option<&'a mut SparseScratch>,
}

impl<'a> Gradients<'a> {
    /// Over the first `n` rows of buffers that went through forward and backward on
    /// `input`; a sparse input needs `scratch`.
    pub fn new(
        tensors: &'a [TensorInfo],
        acts: &'a Activations,
        deltas: &'a Deltas,
        n: usize,
        input: Input<'a>,
        scratch: Option<&'a mut SparseScratch>,
    ) -> Self {
        assert!(
            matches!(input, Input::Dense) || scratch.is_some(),
            "a sparse input's gradient needs its scratch"
        );
        Gradients {
            tensors,
            acts,
            deltas,
            n,
            input,
            scratch,
        }
    }

    /// The tensors, in parameter order.
    pub fn tensors(&self) -> &'a [TensorInfo] {
        self.tensors
    }

    /// For every tensor `t`, `target[t] = beta * target[t] + alpha * g_t` with
    /// `(alpha, beta) = coefficients(t)`; `target` is laid out like the parameters.
    pub fn accumulate_into(
        &mut self,
        target: &mut [f32],
        coefficients: impl Fn(&TensorInfo) -> (f32, f32),
    ) {
        for t in self.tensors {
            let (alpha, beta) = coefficients(t);
            self.accumulate_tensor(t, &mut target[t.range()], alpha, beta);
        }
    }

    /// `out = beta * out + alpha * g_t` for the one tensor `t` (`out` is its own slice).
    pub fn accumulate_tensor(&mut self, t: &TensorInfo, out: &mut [f32], alpha: f32, beta: f32) {
        let n = self.n;
        let delta = rows(&self.deltas.bufs[t.layer], n);
        match (t.kind, self.input) {
            (TensorKind::Weight, Input::Sparse(x)) if t.layer == 0 => {
                let scratch = self.scratch.as_deref_mut().expect("checked in new");
                let delta = delta.as_slice().expect("row-major buffer");
                let offset = (x.add != 0.0).then(|| {
                    let o = &mut scratch.offset;
                    elementwise::column_sums(delta, t.cols, o, x.add, 0.0);
                    &o[..]
                });
                let (csr, rows, table, trans) = (x.csr, x.rows, x.table, &mut scratch.transpose);
                sparse::weight_gradient(
                    csr, rows, table, delta, t.cols, offset, alpha, beta, out, trans,
                );
            }
            (TensorKind::Weight, _) => {
                let out = ArrayViewMut2::from_shape((t.rows, t.cols), out).expect("layout");
                let input = rows(&self.acts.bufs[t.layer], n);
                gemm(alpha, input, Op::T, delta, Op::N, beta, out);
            }
            (TensorKind::Bias, _) => {
                let rows = delta.as_slice().expect("row-major buffer");
                elementwise::column_sums(rows, t.cols, out, alpha, beta);
            }
        }
    }

    /// The plain gradient into `grads`.
    pub fn write_to(&mut self, grads: &mut [f32]) {
        self.accumulate_into(grads, |_| (1.0, 0.0));
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Activation, Activations, Architecture, Input, Loss, Network};

    fn arch() -> Architecture {
        let layers = [(4, Activation::Relu), (2, Activation::Identity)];
        Architecture::flat(3, &layers, Loss::SoftmaxCrossEntropy)
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
        net.forward(&mut acts, 1, Input::Dense);
        // hidden = relu([3, 2, 0.5, 0.5] - 1) = [2, 1, 0, 0]; out = [2+1+0.5, 0+0]
        assert_eq!(
            acts.layer_output(0, 1).row(0).to_vec(),
            vec![2.0, 1.0, 0.0, 0.0]
        );
        assert_eq!(acts.output(1).row(0).to_vec(), vec![3.5, 0.0]);
    }
}
