//! `backprop eval --model FILE`: loss, accuracy, per-class precision and recall, confusion
//! matrix on the test set.

use super::experiment;
use crate::cli::EvalArgs;
use crate::config::Overrides;
use crate::data::Dataset;
use crate::error::ShapeError;
use crate::eval::report::report;
use crate::output::checkpoint::{self, Checkpoint};
use crate::train::Evaluator;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The test set a checkpoint should be evaluated on.
pub(super) fn checkpoint_test_set(
    ck: &Checkpoint,
    model: &Path,
    data_dir: Option<&PathBuf>,
) -> Result<Dataset> {
    let mut loaded = ck.loaded_config(model)?;
    if let Some(dir) = data_dir {
        Overrides {
            data_dir: Some(dir.clone()),
            ..Default::default()
        }
        .apply(&mut loaded);
    }
    let (_, mut test) = experiment::load_data(&loaded)?;
    // The same first-layer path as training took.
    if loaded.config.train.sparse_input.decide(&test)?.0 {
        test.compress()?;
    }
    if test.width() != ck.state.net.arch.inputs {
        let what = format!(
            "{}: features per sample (the model {} takes)",
            test.name,
            model.display()
        );
        return Err(ShapeError::new(what, ck.state.net.arch.inputs, test.width()).into());
    }
    Ok(test)
}

pub fn run(args: &EvalArgs) -> Result<i32> {
    let ck = checkpoint::load(&args.model)?;
    let test = checkpoint_test_set(&ck, &args.model, args.data_dir.as_ref())?;
    let net = &ck.state.net;
    let transform = ck.scaling.transform();
    let report = report(
        &mut Evaluator::new(net, &test, 1000),
        net,
        &test,
        &transform,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("model {} ({})", args.model.display(), net.arch.describe());
        println!("data  {}", test.name);
        print!("{}", report.table());
    }
    Ok(0)
}
