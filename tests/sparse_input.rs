//! The sparse first layer computes what the dense one does: the same gradients, and the same
//! training curve up to rounding, with and without standardisation, for fused and buffered
//! updates; and the run header says which path ran.

mod common;

use backprop::data::{load_idx_sets, standard_paths, CachePolicy, Dataset, InputTransform};
use backprop::model::init::Init;
use backprop::model::Network;
use backprop::optim::{Hyper, Optimizer, OptimizerKind};
use backprop::train::{Batch, StepBuffers};

fn mnist_pair() -> (Dataset, Dataset) {
    let paths = standard_paths(&common::mnist_dir()).unwrap();
    let (dense, _) = load_idx_sets(&paths, None, &CachePolicy::default()).unwrap();
    let (mut sparse, _) = load_idx_sets(&paths, None, &CachePolicy::default()).unwrap();
    sparse.compress().unwrap();
    assert!(dense.sparse.is_none() && sparse.sparse.is_some());
    (dense, sparse)
}

fn network(train: &Dataset) -> Network {
    let text = "[data]\ndir = \"x\"\n[model]\nhidden = [64, 32]\n";
    let loaded = common::loaded(text, &common::mnist_dir());
    let arch = backprop::commands::experiment::architecture(&loaded, train).unwrap();
    Network::initialised(arch, Init::Auto, 0.01, 5)
}

const TRANSFORMS: [(f32, f32); 2] = [(0.0, 1.0), (0.1307, 0.3081)];

fn rows(step: usize, batch: usize, len: usize) -> Vec<usize> {
    (0..batch)
        .map(|i| (step * 7919 + i * 104_729) % len)
        .collect()
}

#[test]
fn sparse_and_dense_gradients_agree() {
    let (dense, sparse) = mnist_pair();
    let net = network(&dense);
    for (mean, std) in TRANSFORMS {
        let t = InputTransform::new(1.0 / 255.0, mean, std);
        let indices = rows(3, 100, dense.len());
        let mut grads = [
            vec![0.0f32; net.params.len()],
            vec![0.0f32; net.params.len()],
        ];
        for (data, out) in [&dense, &sparse].into_iter().zip(grads.iter_mut()) {
            let mut work = StepBuffers::new(&net, data, 100, false);
            let batch = Batch {
                data,
                transform: &t,
                indices: &indices,
            };
            work.gradient(&net, batch, out);
        }
        for tensor in &net.tensors {
            let (d, s) = (&grads[0][tensor.range()], &grads[1][tensor.range()]);
            let scale = d.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let worst = d
                .iter()
                .zip(s)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(scale > 0.0, "{} has a zero gradient", tensor.name);
            assert!(
                worst <= 1e-5 * scale,
                "{} (mean {mean}): max diff {worst} vs scale {scale}",
                tensor.name
            );
        }
    }
}

#[test]
fn sparse_and_dense_training_curves_agree_for_every_update_form() {
    let (dense, sparse) = mnist_pair();
    for (mean, std) in TRANSFORMS {
        let t = InputTransform::new(1.0 / 255.0, mean, std);
        // The fused forms for a few hundred steps; adam (buffered), which normalises every
        // gradient entry and so lets rounding differences grow fastest, for fewer.
        for (kind, lr, steps) in [
            (OptimizerKind::Sgd, 0.1, 300),
            (OptimizerKind::Momentum, 0.02, 300),
            (OptimizerKind::Adam, 0.001, 60),
        ] {
            let hyper = Hyper {
                kind,
                weight_decay: 1e-4,
                ..Hyper::default()
            };
            let start = network(&dense);
            let mut losses = [Vec::new(), Vec::new()];
            let mut finals = Vec::new();
            for (data, curve) in [&dense, &sparse].into_iter().zip(losses.iter_mut()) {
                let mut net = start.clone();
                let mut opt = Optimizer::new(hyper, &net.tensors);
                let mut work = StepBuffers::new(&net, data, 64, !kind.fuses());
                for step in 0..steps {
                    let indices = rows(step, 64, data.len());
                    let batch = Batch {
                        data,
                        transform: &t,
                        indices: &indices,
                    };
                    curve.push(work.step(&mut net, &mut opt, batch, lr, false).mean_loss());
                }
                finals.push(net.params);
            }
            let (first, last) = (losses[0][0], losses[0][steps - 1]);
            assert!(last < 0.6 * first, "{kind:?} learns: {first} -> {last}");
            // Rounding differs: the sparse products sum in another order.
            for (step, (a, b)) in losses[0].iter().zip(&losses[1]).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-3 * a.abs().max(1e-3),
                    "{kind:?} mean {mean}, step {step}: dense {a} vs sparse {b}"
                );
            }
            let worst = finals[0]
                .iter()
                .zip(&finals[1])
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                worst < 1e-3,
                "{kind:?} mean {mean}: weights differ by {worst}"
            );
        }
    }
}

#[test]
fn the_header_says_which_input_path_runs() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "[data]\ndir = \"{}\"\n[model]\nhidden = [16]\n[train]\nepochs = 1\nbatch_size = 500\n",
        common::mnist_dir().display()
    );
    for (extra, needle) in [
        ("", "sparse input (18."),
        (
            "sparse_input = \"off\"\n",
            "dense input (train.sparse_input = \"off\")",
        ),
        ("sparse_input = \"on\"\n", "sparse input (18."),
    ] {
        let cfg = common::write_config(dir.path(), "c.toml", &format!("{base}{extra}"));
        let out = common::run(&["--config", cfg.to_str().unwrap(), "--epochs", "1"]);
        let text = common::stdout(&out);
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert!(text.contains(needle), "`{needle}` not in: {text}");
    }
    let sine = common::write_config(
        dir.path(),
        "s.toml",
        "[data.sine]\n[model]\nhidden = [4]\nloss = \"mean_squared_error\"\n[train]\nsparse_input = \"on\"\n",
    );
    let out = common::run(&["--config", sine.to_str().unwrap()]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("train.sparse_input = \"on\" needs byte (IDX) features"),
        "{err}"
    );
}
