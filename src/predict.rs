//! Predictions from a trained network: for IDX items, for a user's own PNG/JPEG images
//! (grey, resized to the training shape), and regression fits as CSV.

use crate::cli::Invert;
use crate::data::{Dataset, InputTransform};
use crate::eval::{predicted_class, Evaluator, Subset};
use crate::net::{Activations, Network};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Class and its probability for each row of transformed inputs (`n x inputs`).
pub fn classify(net: &Network, inputs: &[f32]) -> Vec<(usize, f32)> {
    let n = inputs.len() / net.arch.inputs;
    let mut acts = Activations::new(&net.arch, n);
    acts.input_mut(n).copy_from_slice(inputs);
    net.forward(&mut acts, n);
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

/// An image as the bytes the network was trained on: grey, resized to `shape` (`[h, w]`),
/// inverted when it is dark-on-light (MNIST digits are light on dark).
pub fn image_bytes(path: &Path, shape: &[usize], invert: Invert) -> Result<Vec<u8>> {
    let (h, w) = match shape {
        [h, w] | [h, w, 1] => (*h, *w),
        _ => bail!(
            "the model was trained on samples of shape {shape:?}, not on 2-D images; \
             pass an IDX file instead"
        ),
    };
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot read image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?
        .decode()
        .with_context(|| format!("{}: not a readable PNG or JPEG image", path.display()))?
        .to_luma8();
    let (w32, h32) = (u32::try_from(w)?, u32::try_from(h)?);
    let small = image::imageops::resize(&img, w32, h32, image::imageops::FilterType::Triangle);
    let mut bytes = small.into_raw();
    let invert = match invert {
        Invert::Yes => true,
        Invert::No => false,
        Invert::Auto => border_mean(&bytes, h, w) > 127.0,
    };
    if invert {
        bytes.iter_mut().for_each(|b| *b = 255 - *b);
    }
    Ok(bytes)
}

fn border_mean(bytes: &[u8], h: usize, w: usize) -> f64 {
    let mut sum = 0.0;
    let mut count = 0usize;
    for r in 0..h {
        for c in 0..w {
            if r == 0 || c == 0 || r + 1 == h || c + 1 == w {
                sum += f64::from(bytes[r * w + c]);
                count += 1;
            }
        }
    }
    sum / count.max(1) as f64
}

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
