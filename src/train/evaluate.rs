//! Evaluation passes: the forward pass alone, over a dataset in large chunks through
//! buffers of its own, scored with the loss.

use crate::data::batch::load;
use crate::data::{Dataset, InputTransform, TargetBuffer};
use crate::model::{Activations, Network, Score, Shaping};

/// Which samples of a dataset to evaluate.
#[derive(Clone, Copy, Debug)]
pub enum Subset<'a> {
    All,
    Only(&'a [usize]),
    /// Samples `start..end` (one rank's share of `All`).
    Span(usize, usize),
}

impl Subset<'_> {
    pub fn len(&self, data: &Dataset) -> usize {
        match self {
            Subset::All => data.len(),
            Subset::Only(ix) => ix.len(),
            Subset::Span(start, end) => end - start,
        }
    }

    pub fn is_empty(&self, data: &Dataset) -> bool {
        self.len(data) == 0
    }
}

pub struct Evaluator {
    acts: Activations,
    targets: TargetBuffer,
    chunk_indices: Vec<usize>,
}

impl Evaluator {
    pub fn new(net: &Network, data: &Dataset, chunk: usize) -> Self {
        let chunk = chunk.clamp(1, data.len().max(1));
        Evaluator {
            acts: Activations::new(&net.arch, chunk),
            targets: TargetBuffer::for_dataset(data, chunk),
            chunk_indices: Vec::with_capacity(chunk),
        }
    }

    /// Runs the network over `subset` chunk by chunk; `visit` sees each chunk's sample
    /// indices and outputs. Returns the total score.
    pub fn run(
        &mut self,
        net: &Network,
        data: &Dataset,
        transform: &InputTransform,
        subset: Subset,
        mut visit: impl FnMut(&[usize], ndarray::ArrayView2<f32>),
    ) -> Score {
        let chunk = self.acts.capacity();
        let total = subset.len(data);
        let mut score = Score::default();
        let last = net.layer_count() - 1;
        for start in (0..total).step_by(chunk) {
            let end = (start + chunk).min(total);
            self.chunk_indices.clear();
            match subset {
                Subset::All => self.chunk_indices.extend(start..end),
                Subset::Only(ix) => self.chunk_indices.extend_from_slice(&ix[start..end]),
                Subset::Span(first, _) => self.chunk_indices.extend(first + start..first + end),
            }
            let n = end - start;
            let x = self.acts.input_mut(n);
            let rows = &self.chunk_indices;
            let input = load(data, transform, rows, x, &mut self.targets);
            net.forward(&mut self.acts, n, input);
            let out = self.acts.output(n);
            score.add(net.arch.loss.score(
                out,
                net.arch.layers[last].activation,
                self.targets.view(n),
                None,
                Shaping::default(),
            ));
            visit(&self.chunk_indices, out);
        }
        score
    }

    pub fn score(
        &mut self,
        net: &Network,
        data: &Dataset,
        transform: &InputTransform,
        subset: Subset,
    ) -> Score {
        self.run(net, data, transform, subset, |_, _| {})
    }
}
