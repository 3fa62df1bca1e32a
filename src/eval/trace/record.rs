//! Records one real training step: runs the loop's steps up to step `n`, then takes step `n`
//! keeping everything it read and computed.

use super::{names, Tensor, Trace};
use crate::compute::blas::{gemm, Op};
use crate::data::Batcher;
use crate::model::buffers::rows;
use crate::model::{Network, Targets};
use crate::optim::schedule::Schedule;
use crate::train::{Batch, Sets, StepBuffers, TrainState};
use anyhow::{bail, Result};
use ndarray::Array2;

/// Identifies a trace file.
pub const FORMAT: &str = "backprop-trace-1";

/// How the loop batches and steps, as the trainer would.
pub struct StepPlan<'a> {
    pub sets: Sets<'a>,
    pub schedule: &'a Schedule,
    pub seed: u64,
    pub batch_size: usize,
    pub drop_last: bool,
    pub label_smoothing: f32,
}

/// Trains `state` through steps `0..step` and records step `step` (counted from 0 across
/// epochs, each epoch its own seeded shuffle as in training). The batch is read dense.
pub fn record(state: &mut TrainState, plan: &StepPlan, step: usize) -> Result<Trace> {
    let sets = plan.sets;
    let batch_size = plan.batch_size.min(sets.train_indices.len()).max(1);
    let mut batcher = Batcher::new(sets.train_indices.to_vec(), batch_size, plan.drop_last);
    let mut buffers = StepBuffers::new(&state.net, sets.train, batch_size, true)
        .with_label_smoothing(plan.label_smoothing);
    let mut done = 0;
    for epoch in 0.. {
        batcher.shuffle(plan.seed, epoch);
        let steps = batcher.batch_count();
        for (b, indices) in batcher.batches().enumerate() {
            let point = plan.schedule.at(epoch, b, steps);
            if let Some(m) = point.momentum {
                state.optimizer.hyper.momentum = m;
            }
            let batch = Batch {
                data: sets.train,
                transform: sets.transform,
                indices,
            };
            if done == step {
                let mut trace = capture(state, &mut buffers, batch, point.lr, plan)?;
                let meta = &mut trace.metadata;
                meta.insert("step".into(), step.to_string());
                meta.insert("epoch".into(), (epoch + 1).to_string());
                meta.insert("batch".into(), (b + 1).to_string());
                return Ok(trace);
            }
            let score = buffers.step(&mut state.net, &mut state.optimizer, batch, point.lr, false);
            if !score.loss_sum.is_finite() {
                bail!("the loss became non-finite at step {done}, before step {step}");
            }
            done += 1;
        }
    }
    unreachable!("the epochs never end")
}

/// The targets of `n` rows as the loss reads them: one-hot rows for labels (the label itself
/// for a single output), values for regression.
fn target_matrix(targets: Targets, n: usize, width: usize) -> Vec<f64> {
    match targets {
        Targets::Labels(labels) => labels[..n]
            .iter()
            .flat_map(|&y| {
                (0..width).map(move |c| match width {
                    1 => f64::from(y),
                    _ => f64::from(u8::from(c == y as usize)),
                })
            })
            .collect(),
        Targets::Values(v) => v.iter().map(|&x| f64::from(x)).collect(),
    }
}

/// `z = a @ W + b` of layer `l`, as the forward pass computes it, from the weights before the
/// step (for activations that do not keep their own).
fn pre_activation(
    net: &Network,
    before: &[f32],
    a: ndarray::ArrayView2<f32>,
    l: usize,
) -> Vec<f32> {
    let w = net.weight_info(l);
    let w = ndarray::ArrayView2::from_shape((w.rows, w.cols), &before[w.range()]).expect("layout");
    let mut z = Array2::zeros((a.nrows(), w.ncols()));
    gemm(1.0, a, Op::N, w, Op::N, 0.0, z.view_mut());
    let bias = &before[net.bias_info(l).range()];
    z.rows_mut()
        .into_iter()
        .for_each(|mut r| r.iter_mut().zip(bias).for_each(|(v, b)| *v += b));
    z.into_raw_vec_and_offset().0
}

fn capture(
    state: &mut TrainState,
    buffers: &mut StepBuffers,
    batch: Batch,
    lr: f32,
    plan: &StepPlan,
) -> Result<Trace> {
    let n = batch.indices.len();
    let before = state.net.params.clone();
    let opt_before = state.optimizer.state.clone();
    let meta_optimizer = serde_json::json!({
        "hyper": state.optimizer.hyper,
        "steps": state.optimizer.steps,
    });
    let score = buffers.step(&mut state.net, &mut state.optimizer, batch, lr, true);
    let net = &state.net;
    let layers = net.layer_count();
    let states = net_states(state);
    let mut all = Vec::new();
    let (acts, deltas) = (&buffers.acts, &buffers.deltas);
    let input = rows(&acts.bufs[0], n);
    all.push(Tensor::from_f32(
        "input",
        vec![n, input.ncols()],
        input.as_slice().expect("rows"),
    ));
    let width = net.arch.outputs();
    let target = target_matrix(buffers.targets.view(n), n, width);
    all.push(Tensor::new("target", vec![n, width], target));
    for t in &net.tensors {
        let shape = match t.kind {
            crate::model::TensorKind::Weight => vec![t.rows, t.cols],
            crate::model::TensorKind::Bias => vec![t.cols],
        };
        all.push(Tensor::from_f32(&t.name, shape.clone(), &before[t.range()]));
        for (name, values) in states.iter().zip(&opt_before) {
            let full = format!("optimizer.{name}.{}", t.name);
            all.push(Tensor::from_f32(full, shape.clone(), &values[t.range()]));
        }
        let grad = &buffers.grads[t.range()];
        all.push(Tensor::from_f32(
            format!("{}.grad", t.name),
            shape.clone(),
            grad,
        ));
        let after = &net.params[t.range()];
        all.push(Tensor::from_f32(format!("{}.after", t.name), shape, after));
    }
    for l in 0..layers {
        let below = rows(&acts.bufs[l], n);
        let cols = net.arch.layers[l].outputs;
        let pre = match acts.layer_input(l, n) {
            Some(z) => z.to_vec(),
            None => pre_activation(net, &before, below, l),
        };
        all.push(Tensor::from_f32(
            format!("layer{l}.pre"),
            vec![n, cols],
            &pre,
        ));
        let out = acts.layer_output(l, n);
        let out = out.as_slice().expect("rows");
        all.push(Tensor::from_f32(
            format!("layer{l}.out"),
            vec![n, cols],
            out,
        ));
        let delta = rows(&deltas.bufs[l], n);
        let delta = delta.as_slice().expect("rows");
        all.push(Tensor::from_f32(
            format!("layer{l}.delta"),
            vec![n, cols],
            delta,
        ));
    }
    all.push(Tensor::new("loss", vec![], vec![score.mean_loss()]));
    let mut trace = Trace::default();
    for name in names(layers, &states) {
        if let Some(i) = all.iter().position(|t| t.name == name) {
            trace.push(all.swap_remove(i));
        }
    }
    let meta = &mut trace.metadata;
    meta.insert("format".into(), FORMAT.into());
    meta.insert("architecture".into(), serde_json::to_string(&net.arch)?);
    meta.insert("optimizer".into(), meta_optimizer.to_string());
    meta.insert("lr".into(), lr.to_string());
    meta.insert("label_smoothing".into(), plan.label_smoothing.to_string());
    meta.insert("precision".into(), "f32".into());
    meta.insert(
        "layout".into(),
        "z = x @ weight + bias; weight is [inputs, outputs]; delta and grad are of the batch-mean loss".into(),
    );
    Ok(trace)
}

fn net_states(state: &TrainState) -> Vec<&'static str> {
    state.optimizer.hyper.kind.state_names().to_vec()
}
