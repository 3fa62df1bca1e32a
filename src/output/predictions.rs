//! A regression fit as CSV: inputs, targets and predictions over a dataset.

use crate::data::{Dataset, InputTransform};
use crate::model::Network;
use crate::train::{Evaluator, Subset};
use anyhow::{Context, Result};
use std::path::Path;

/// For regression: a CSV of the inputs, the targets and the predictions over `data`.
pub fn write_regression_csv(
    path: &Path,
    net: &Network,
    data: &Dataset,
    transform: &InputTransform,
) -> Result<()> {
    let width = data.width();
    let outputs = net.arch.outputs();
    let names = |stem: &str, k: usize| -> Vec<String> {
        if k == 1 {
            vec![stem.to_string()]
        } else {
            (0..k).map(|i| format!("{stem}{i}")).collect()
        }
    };
    let header = [
        names("x", width),
        names("target", outputs),
        names("prediction", outputs),
    ]
    .concat()
    .join(",");
    let mut rows: Vec<String> = Vec::with_capacity(data.len());
    let mut x = vec![0.0f32; width];
    let mut evaluator = Evaluator::new(net, data, 1000);
    evaluator.run(net, data, transform, Subset::All, |indices, out| {
        for (&i, pred) in indices.iter().zip(out.rows()) {
            data.raw_features(i, &mut x);
            let fields: Vec<String> = x
                .iter()
                .chain(data.values(i))
                .chain(pred.iter())
                .map(|v| v.to_string())
                .collect();
            rows.push(fields.join(","));
        }
    });
    crate::atomic::write_with(path, |out| {
        writeln!(out, "{header}")?;
        for r in &rows {
            writeln!(out, "{r}")?;
        }
        Ok(())
    })
    .with_context(|| format!("cannot write predictions {}", path.display()))
}
