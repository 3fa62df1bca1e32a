//! The evaluation report of a trained model: loss, accuracy, per-class precision and recall,
//! and the confusion matrix.

use crate::data::{Dataset, InputTransform};
use crate::model::loss::predicted_class;
use crate::model::{Network, Score};
use crate::train::{Evaluator, Subset};
use serde::Serialize;

/// Score plus confusion matrix (`[true][predicted]`) for classification data.
pub fn report(
    evaluator: &mut Evaluator,
    net: &Network,
    data: &Dataset,
    transform: &InputTransform,
) -> Report {
    let classes = data.classes().unwrap_or(0);
    let mut confusion = vec![vec![0usize; classes]; classes];
    let loss = net.arch.loss;
    let score = evaluator.run(net, data, transform, Subset::All, |indices, out| {
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
