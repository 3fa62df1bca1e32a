//! One training step, the hot path, in one place: gather a minibatch, forward, backward,
//! update. Every buffer it touches is allocated once, in [`StepBuffers::new`]; the step
//! itself allocates nothing.

use crate::data::batch::load_as;
use crate::data::{Dataset, InputTransform, TargetBuffer, SPARSE_MAX_STEP_ROWS};
use crate::model::dropout::Mask;
use crate::model::{Activations, Deltas, Gradients, Input, Network, Score, Shaping, SparseScratch};
use crate::optim::Optimizer;

/// The samples of one minibatch and where they come from.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    pub data: &'a Dataset,
    pub transform: &'a InputTransform,
    pub indices: &'a [usize],
}

impl Batch<'_> {
    /// Whether the first layer reads this batch as sparse rows: the data is kept that way and
    /// the batch is small enough for the sparse kernels to win.
    pub fn reads_sparse(&self) -> bool {
        self.data.sparse.is_some() && self.indices.len() <= SPARSE_MAX_STEP_ROWS
    }
}

/// Buffers for one minibatch: inputs and activations, deltas, targets, the gradient buffer
/// (allocated only when some step needs one, see [`StepBuffers::new`]), and what a sparse
/// first layer needs.
pub struct StepBuffers {
    pub acts: Activations,
    pub deltas: Deltas,
    pub targets: TargetBuffer,
    /// The plain gradient of the last step that wrote it (empty when no step will).
    pub grads: Vec<f32>,
    sparse: Option<SparseScratch>,
    /// The training loss' label smoothing (softmax cross-entropy; 0 for none).
    label_smoothing: f32,
    /// The training loss' weight per class (empty for none).
    class_weights: Vec<f32>,
    /// The run seed the dropout masks derive from (`None`: no dropout).
    dropout_seed: Option<u64>,
    /// The optimizer step whose masks the passes apply (set by [`StepBuffers::step`]).
    pub mask_step: u64,
    /// Where this batch's rows start in the step's global batch (a data-parallel share).
    pub mask_first_row: usize,
}

impl StepBuffers {
    /// Buffers for batches of up to `capacity` samples of `data`. `gradient_buffer` is needed
    /// by a rule that cannot fuse its update, and by steps whose gradient is read afterwards.
    pub fn new(net: &Network, data: &Dataset, capacity: usize, gradient_buffer: bool) -> Self {
        StepBuffers {
            acts: Activations::new(&net.arch, capacity),
            deltas: Deltas::new(&net.arch, capacity),
            targets: TargetBuffer::for_dataset(data, capacity),
            grads: if gradient_buffer {
                vec![0.0; net.params.len()]
            } else {
                Vec::new()
            },
            sparse: data
                .sparse
                .as_ref()
                .map(|csr| SparseScratch::new(csr, &net.arch, capacity)),
            label_smoothing: 0.0,
            class_weights: Vec::new(),
            dropout_seed: None,
            mask_step: 0,
            mask_first_row: 0,
        }
    }

    /// Steps on the loss with each sample weighted by its class' weight.
    pub fn with_class_weights(mut self, weights: Vec<f32>) -> Self {
        self.class_weights = weights;
        self
    }

    /// Steps with dropout `rates[l]` on hidden layer `l`, masks derived from `seed` and the
    /// optimizer's step count (so a resumed run draws the masks it would have drawn).
    pub fn with_dropout(mut self, net: &Network, rates: &[f32], seed: u64) -> Self {
        if rates.iter().any(|&r| r > 0.0) {
            self.acts = Activations::with_dropout(&net.arch, self.acts.capacity(), rates);
            self.dropout_seed = Some(seed);
        }
        self
    }

    /// Steps on the label-smoothed loss (`(1 - ε) y + ε / K` targets).
    pub fn with_label_smoothing(mut self, smoothing: f32) -> Self {
        self.label_smoothing = smoothing;
        self
    }

    /// One training step with learning rate `lr`: gather, forward, backward, update. With
    /// `keep_gradient`, the plain gradient is left in `self.grads` (for a probe). A
    /// non-finite loss leaves the weights untouched, for the caller to report.
    pub fn step(
        &mut self,
        net: &mut Network,
        optimizer: &mut Optimizer,
        batch: Batch,
        lr: f32,
        keep_gradient: bool,
    ) -> Score {
        let n = batch.indices.len();
        self.mask_step = optimizer.steps;
        let (score, input) = self.forward_backward(net, batch);
        if score.loss_sum.is_finite() {
            let StepBuffers {
                acts,
                deltas,
                grads,
                sparse,
                ..
            } = self;
            let Network {
                tensors, params, ..
            } = net;
            let mut products = Gradients::new(tensors, acts, deltas, n, input, sparse.as_mut());
            let buffered = keep_gradient || !optimizer.hyper.kind.fuses();
            optimizer.update(
                params,
                &mut products,
                lr,
                buffered.then_some(&mut grads[..]),
            );
        }
        score
    }

    /// The gradient of the batch-mean loss over `batch` into `out`, without an update (with
    /// the dropout masks of step [`StepBuffers::mask_step`]).
    pub fn gradient(&mut self, net: &Network, batch: Batch, out: &mut [f32]) -> Score {
        let n = batch.indices.len();
        let (score, input) = self.forward_backward(net, batch);
        let (acts, deltas, sparse) = (&self.acts, &self.deltas, self.sparse.as_mut());
        net.gradients(acts, deltas, n, input, sparse).write_to(out);
        score
    }

    /// The gradient of the batch-mean loss over `batch`, times `weight`, into `self.grads`,
    /// without an update: a rank's part of a global batch's mean gradient when `weight` is
    /// its share of the global batch's samples (see [`super::distributed`]).
    pub fn weighted_gradient(&mut self, net: &Network, batch: Batch, weight: f32) -> Score {
        let n = batch.indices.len();
        let (score, input) = self.forward_backward(net, batch);
        let (acts, deltas, sparse) = (&self.acts, &self.deltas, self.sparse.as_mut());
        let mut products = net.gradients(acts, deltas, n, input, sparse);
        products.accumulate_into(&mut self.grads, |_| (weight, 0.0));
        score
    }

    /// Gathers `batch` (its targets, and its rows unless the first layer reads sparse rows
    /// itself), runs the forward pass and fills every layer's delta.
    fn forward_backward<'a>(&mut self, net: &Network, batch: Batch<'a>) -> (Score, Input<'a>) {
        let n = batch.indices.len();
        let x = self.acts.input_mut(n);
        let (data, transform, rows) = (batch.data, batch.transform, batch.indices);
        let input = load_as(
            data,
            transform,
            rows,
            x,
            &mut self.targets,
            batch.reads_sparse(),
        );
        let (step, first_row) = (self.mask_step, self.mask_first_row);
        let mask = self
            .dropout_seed
            .map(|seed| Mask::of_step(seed, step, first_row));
        net.forward_masked(&mut self.acts, n, input, mask);
        let targets = self.targets.view(n);
        let shaping = Shaping {
            label_smoothing: self.label_smoothing,
            class_weights: (!self.class_weights.is_empty()).then_some(&self.class_weights[..]),
        };
        let score = net.backward(&self.acts, &mut self.deltas, targets, n, shaping);
        (score, input)
    }
}
