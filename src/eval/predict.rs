//! Predictions from a trained network on transformed inputs.

use crate::model::loss::predicted_class;
use crate::model::{Activations, Input, Network};

/// Class and its probability for each row of transformed inputs (`n x inputs`).
pub fn classify(net: &Network, inputs: &[f32]) -> Vec<(usize, f32)> {
    let n = inputs.len() / net.arch.inputs;
    let mut acts = Activations::new(&net.arch, n);
    acts.input_mut(n).copy_from_slice(inputs);
    net.forward(&mut acts, n, Input::Dense);
    acts.output(n)
        .rows()
        .into_iter()
        .map(|row| {
            let mut row = row.to_vec();
            let class = predicted_class(net.arch.loss, &row);
            net.arch.loss.to_probabilities(&mut row);
            let p = if row.len() == 1 {
                if class == 1 {
                    row[0]
                } else {
                    1.0 - row[0]
                }
            } else {
                row[class]
            };
            (class, p)
        })
        .collect()
}
