//! `backprop export --model FILE --onnx OUT`: a checkpoint's network as an ONNX model.

use crate::atomic;
use crate::cli::ExportArgs;
use crate::output::checkpoint::{self, Checkpoint};
use crate::output::onnx::{self, InputKind};
use anyhow::{Context, Result};
use std::path::Path;

/// The raw input of the training data: bytes for IDX sources; floats for CSV, generated data
/// and checkpoints without a config (the library's in-memory arrays).
fn input_kind(ck: &Checkpoint, model: &Path) -> Result<InputKind> {
    if ck.config.is_none() {
        return Ok(InputKind::Floats);
    }
    let loaded = ck.loaded_config(model)?;
    Ok(if loaded.config.data.is_idx() {
        InputKind::Bytes
    } else {
        InputKind::Floats
    })
}

pub fn run(args: &ExportArgs) -> Result<i32> {
    let ck = checkpoint::load(&args.model)?;
    let input = input_kind(&ck, &args.model)?;
    let net = &ck.state.net;
    let bytes = onnx::export(net, &ck.scaling, input)
        .with_context(|| format!("cannot export {}", args.model.display()))?;
    atomic::write(&args.onnx, &bytes)
        .with_context(|| format!("cannot write ONNX model {}", args.onnx.display()))?;
    let input = match input {
        InputKind::Bytes => {
            let dims: Vec<String> = net.arch.input_shape.iter().map(usize::to_string).collect();
            format!("uint8 [N, {}]", dims.join(", "))
        }
        InputKind::Floats => format!("float [N, {}]", net.arch.inputs),
    };
    println!(
        "wrote {} ({}): input {input}, opset {}",
        args.onnx.display(),
        net.arch.describe(),
        onnx::OPSET_VERSION
    );
    Ok(0)
}
