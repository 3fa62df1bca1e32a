//! `backprop predict --model FILE INPUT...`: classes for IDX items or PNG/JPEG images;
//! regression fits as CSV.

use super::eval::checkpoint_test_set;
use crate::cli::PredictArgs;
use crate::data::files::{open_regular, NotRegular};
use crate::data::idx::IdxFile;
use crate::data::image::image_bytes;
use crate::data::image::other_image_format;
use crate::error::ShapeError;
use crate::eval::predict::classify;
use crate::output::checkpoint;
use crate::output::plan;
use crate::output::predictions::write_regression_csv;
use anyhow::{anyhow, bail, Result};
use std::io::Read;
use std::path::Path;

/// What an input is, by its first bytes (the extension can lie).
enum Kind {
    Image,
    Idx,
}

fn kind_of(path: &Path) -> Result<Kind> {
    let mut head = [0u8; 8];
    let n = open_regular(path)
        .and_then(|mut f| f.read(&mut head).map_err(NotRegular::Io))
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    let head = &head[..n];
    if head.starts_with(b"\x89PNG") || head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Kind::Image);
    }
    if let Some(format) = other_image_format(head) {
        bail!(
            "{}: is a {format} image, not a PNG or JPEG; predict reads PNG or JPEG images, or \
             IDX files",
            path.display()
        );
    }
    Ok(Kind::Idx)
}

pub fn run(args: &PredictArgs) -> Result<i32> {
    if let Some(csv) = &args.csv_out {
        let input = |what: &str, p: &Path| plan::Input {
            what: what.into(),
            path: p.to_path_buf(),
        };
        let mut inputs = vec![input("the model", &args.model)];
        inputs.extend(args.inputs.iter().map(|p| input("an input", p)));
        let out = plan::Output {
            named_by: "--csv-out".into(),
            path: csv.clone(),
            may_replace: None,
            is_plot: false,
        };
        plan::check(&[out], &inputs)?;
    }
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
    let width = net.arch.inputs;
    for input in &args.inputs {
        let (labels, bytes): (Vec<String>, Vec<u8>) = if let Kind::Image = kind_of(input)? {
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
