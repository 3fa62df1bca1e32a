//! `backprop gradcheck --config FILE`: every analytic gradient against central finite
//! differences in f64.

use super::experiment::{default_threads, Experiment};
use super::{exit, thread_pool};
use crate::cli::GradcheckArgs;
use crate::config;
use crate::data::{float_dataset, Dataset, InputTransform, Labels, TargetData};
use crate::eval::gradcheck;
use crate::model::Network;
use anyhow::{bail, Context, Result};

/// The first `samples` samples of `data`, transformed, cut to their first `inputs` features.
fn shrunk(data: &Dataset, transform: &InputTransform, samples: usize, inputs: usize) -> Dataset {
    let width = data.width();
    let mut features = Vec::with_capacity(samples * inputs);
    let mut raw = vec![0.0f32; width];
    let mut row = vec![0.0f32; width];
    for i in 0..samples {
        data.raw_features(i, &mut raw);
        if data.is_bytes() {
            let bytes: Vec<u8> = raw.iter().map(|&v| v as u8).collect();
            transform.bytes(&mut row, &bytes);
        } else {
            transform.floats(&mut row, &raw);
        }
        features.extend_from_slice(&row[..inputs]);
    }
    let targets = match data.classes() {
        Some(classes) => TargetData::Classes {
            labels: Labels::Owned((0..samples).map(|i| data.label(i)).collect()),
            classes,
        },
        None => TargetData::Values {
            values: (0..samples).flat_map(|i| data.values(i).to_vec()).collect(),
            width: data.target_width(),
        },
    };
    float_dataset(
        format!("{} (first {samples})", data.name),
        features,
        inputs,
        targets,
    )
}

pub fn run(args: &GradcheckArgs) -> Result<i32> {
    let loaded = config::load(&args.config)?;
    loaded
        .config
        .validate()
        .with_context(|| format!("invalid config {}", loaded.path.display()))?;
    thread_pool(loaded.config.threads.unwrap_or_else(default_threads))?;
    let exp = Experiment::prepare(loaded)?;
    let samples = args.samples.clamp(1, exp.train.len());
    let inputs = args
        .inputs
        .unwrap_or(exp.train.width())
        .clamp(1, exp.train.width());
    let data = shrunk(&exp.train, &exp.transform, samples, inputs);
    let mut arch = exp.arch.clone();
    arch.inputs = inputs;
    arch.input_shape = vec![inputs];
    let cfg = &exp.loaded.config;
    let net = Network::initialised(arch, cfg.init(), cfg.model.bias_init, cfg.seed);
    let identity = InputTransform::identity();
    let indices: Vec<usize> = (0..samples).collect();
    let rates = exp.dropout_rates();
    let (per_tensor, seed) = (args.per_tensor, cfg.seed);
    let checks =
        gradcheck::check_with_dropout(&net, &data, &identity, &indices, per_tensor, seed, &rates);
    let masks = if rates.iter().any(|&r| r > 0.0) {
        format!(", dropout {rates:?} with the first step's masks")
    } else {
        String::new()
    };
    println!(
        "gradient check of {} on {samples} sample(s), central differences in f64{masks}",
        net.arch.describe()
    );
    println!(
        "{:<16} {:>8} {:>8} {:>14} {:>14}",
        "tensor", "checked", "skipped", "max abs err", "max rel err"
    );
    for c in &checks {
        println!(
            "{:<16} {:>8} {:>8} {:>14.3e} {:>14.3e}",
            c.name, c.checked, c.skipped, c.max_abs_error, c.max_rel_error
        );
    }
    let skipped: usize = checks.iter().map(|c| c.skipped).sum();
    if skipped > 0 {
        println!(
            "{skipped} entr{} skipped: perturbing {} moved a ReLU input across its kink at 0, \
             where finite differences are meaningless",
            if skipped == 1 { "y" } else { "ies" },
            if skipped == 1 { "it" } else { "them" }
        );
    }
    if checks.iter().all(|c| c.checked == 0) {
        bail!("no entry could be checked (all sat on ReLU kinks); try another --seed or more --samples");
    }
    let worst = checks.iter().map(|c| c.max_rel_error).fold(0.0, f64::max);
    if worst <= args.threshold {
        println!(
            "OK: worst relative error {worst:.3e} <= {:.1e}",
            args.threshold
        );
        Ok(0)
    } else {
        println!(
            "FAILED: worst relative error {worst:.3e} > {:.1e}",
            args.threshold
        );
        Ok(exit::GRADCHECK_FAILED)
    }
}
