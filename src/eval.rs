//! Evaluation: the forward pass alone, over a dataset in large chunks through buffers of its
//! own, with loss, accuracy and (for classification) a confusion matrix.

use crate::data::{gather, Dataset, InputTransform, TargetBuffer};
use crate::loss::{Loss, Score};
use crate::net::{Activations, Network};
use serde::Serialize;

/// Which samples of a dataset to evaluate.
#[derive(Clone, Copy, Debug)]
pub enum Subset<'a> {
    All,
    Only(&'a [usize]),
}

impl Subset<'_> {
    pub fn len(&self, data: &Dataset) -> usize {
        match self {
            Subset::All => data.len(),
            Subset::Only(ix) => ix.len(),
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
            }
            let n = end - start;
            gather(
                data,
                transform,
                &self.chunk_indices,
                self.acts.input_mut(n),
                &mut self.targets,
            );
            net.forward(&mut self.acts, n);
            let out = self.acts.output(n);
            score.add(net.arch.loss.score(
                out,
                net.arch.layers[last].activation,
                self.targets.view(n),
                None,
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

    /// Score plus confusion matrix (`[true][predicted]`) for classification data.
    pub fn report(&mut self, net: &Network, data: &Dataset, transform: &InputTransform) -> Report {
        let classes = data.classes().unwrap_or(0);
        let mut confusion = vec![vec![0usize; classes]; classes];
        let loss = net.arch.loss;
        let score = self.run(net, data, transform, Subset::All, |indices, out| {
            if classes == 0 {
                return;
            }
            for (&i, row) in indices.iter().zip(out.rows()) {
                let predicted = predicted_class(loss, row.as_slice().expect("row-major"));
                confusion[data.label(i) as usize][predicted] += 1;
            }
        });
        Report::new(score, confusion)
    }
}

/// The class a row of outputs votes for.
pub fn predicted_class(loss: Loss, row: &[f32]) -> usize {
    if row.len() == 1 {
        // A single sigmoid output (or a regression used as a 0/1 classifier).
        let threshold = if loss == Loss::SigmoidBinaryCrossEntropy {
            0.0
        } else {
            0.5
        };
        return usize::from(row[0] > threshold);
    }
    crate::loss::argmax(row)
}

#[derive(Clone, Debug, Serialize)]
pub struct ClassStats {
    pub class: usize,
    pub support: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub samples: usize,
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub classes: Vec<ClassStats>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

impl Report {
    fn new(score: Score, confusion: Vec<Vec<usize>>) -> Self {
        let k = confusion.len();
        let classes = (0..k)
            .map(|c| {
                let support: usize = confusion[c].iter().sum();
                let predicted: usize = (0..k).map(|t| confusion[t][c]).sum();
                let hit = confusion[c][c] as f64;
                ClassStats {
                    class: c,
                    support,
                    precision: (predicted > 0).then(|| hit / predicted as f64),
                    recall: (support > 0).then(|| hit / support as f64),
                }
            })
            .collect();
        Report {
            samples: score.samples,
            loss: score.mean_loss(),
            accuracy: score.accuracy(),
            classes,
            confusion,
        }
    }

    /// A plain-text table: summary, per-class precision/recall, confusion matrix.
    pub fn table(&self) -> String {
        let mut out = format!("samples   {}\nloss      {:.5}\n", self.samples, self.loss);
        if let Some(acc) = self.accuracy {
            out += &format!("accuracy  {:.2}%\n", 100.0 * acc);
        }
        if self.classes.is_empty() {
            return out;
        }
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", 100.0 * v));
        out += "\nclass  support  precision  recall\n";
        for c in &self.classes {
            out += &format!(
                "{:>5}  {:>7}  {:>9}  {:>6}\n",
                c.class,
                c.support,
                pct(c.precision),
                pct(c.recall)
            );
        }
        let width = self
            .confusion
            .iter()
            .flatten()
            .map(|v| v.to_string().len())
            .max()
            .unwrap_or(1)
            .max(3);
        out += "\nconfusion matrix (rows: true class, columns: predicted)\n";
        out += &format!("{:>5} ", "");
        for c in 0..self.classes.len() {
            out += &format!(" {c:>width$}");
        }
        out += "\n";
        for (t, row) in self.confusion.iter().enumerate() {
            out += &format!("{t:>5} ");
            for v in row {
                out += &format!(" {v:>width$}");
            }
            out += "\n";
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_and_recall_from_the_confusion_matrix() {
        let score = Score {
            loss_sum: 1.0,
            correct: 5,
            counted: 8,
            samples: 8,
        };
        let r = Report::new(score, vec![vec![3, 1], vec![2, 2]]);
        assert_eq!(r.classes[0].recall, Some(0.75));
        assert_eq!(r.classes[0].precision, Some(0.6));
        assert_eq!(r.classes[1].recall, Some(0.5));
        assert_eq!(r.accuracy, Some(5.0 / 8.0));
        let t = r.table();
        assert!(t.contains("accuracy  62.50%"), "{t}");
        assert!(t.contains("    0        4     60.00%  75.00%"), "{t}");
    }
}
