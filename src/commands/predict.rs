//! `backprop predict --model FILE INPUT...`: classes for IDX items or PNG/JPEG images;
//! regression fits as CSV.

use super::eval::checkpoint_test_set;
use crate::cli::PredictArgs;
use crate::data::idx::IdxFile;
use crate::data::image::image_bytes;
use crate::error::ShapeError;
use crate::eval::predict::classify;
use crate::output::checkpoint;
use crate::output::predictions::write_regression_csv;
use anyhow::{bail, Result};
use std::path::PathBuf;

pub fn run(args: &PredictArgs) -> Result<i32> {
    let ck = checkpoint::load(&args.model)?;
    let net = &ck.state.net;
    let transform = ck.scaling.transform();
    if let Some(csv) = &args.csv_out {
        let test = checkpoint_test_set(&ck, &args.model, None)?;
        if test.classes().is_some() {
            bail!("--csv-out writes regression fits; this model classifies");
        }
        write_regression_csv(csv, net, &test, &transform)?;
    }
    let is_image = |p: &PathBuf| {
        p.extension().is_some_and(|e| {
            let e = e.to_string_lossy().to_ascii_lowercase();
            matches!(e.as_str(), "png" | "jpg" | "jpeg")
        })
    };
    let width = net.arch.inputs;
    for input in &args.inputs {
        let (labels, bytes): (Vec<String>, Vec<u8>) = if is_image(input) {
            let b = image_bytes(input, &net.arch.input_shape, args.invert)?;
            (vec![input.display().to_string()], b)
        } else {
            let file = IdxFile::open(input, &Default::default())?;
            if file.item_len() != width {
                let what = format!(
                    "{}: values per item (shape {:?}; the model's input)",
                    input.display(),
                    file.dims()
                );
                return Err(ShapeError::new(what, width, file.item_len()).into());
            }
            let labels = (0..file.count())
                .map(|i| format!("{}[{i}]", input.display()))
                .collect();
            (labels, file.data().to_vec())
        };
        let mut x = vec![0.0f32; bytes.len()];
        for (row, src) in x.chunks_mut(width).zip(bytes.chunks(width)) {
            transform.bytes(row, src);
        }
        for (label, (class, p)) in labels.iter().zip(classify(net, &x)) {
            println!("{label}\t{class}\t{p:.4}");
        }
    }
    Ok(0)
}
