//! Gradient checking: the analytic gradients of the real (f32, sgemm) backward pass against
//! central finite differences of an independent, naive f64 forward pass.

use crate::compute::rng;
use crate::data::{gather, Dataset, InputTransform, TargetBuffer};
use crate::model::{Activation, Network, Targets};
use crate::train::{Batch, StepBuffers};
use rand::seq::index::sample;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct TensorCheck {
    pub name: String,
    pub checked: usize,
    pub max_abs_error: f64,
    /// `|analytic - numeric| / max(|analytic|, |numeric|, floor)`, worst entry; the floor is
    /// 1e-3 of the tensor's largest numeric gradient, so entries that are ~0 are judged
    /// against the tensor's scale rather than against zero.
    pub max_rel_error: f64,
    /// Entries not judged because their perturbation moved a ReLU's input across its kink
    /// at 0, where the central difference averages two slopes and means nothing.
    pub skipped: usize,
}

/// One step's dropout masks, per layer: `scale[r * width + j]` (0, or `1 / (1 - p)`), or
/// `None` for a layer without dropout.
pub type Masks = Vec<Option<Vec<f32>>>;

/// The batch-mean loss in f64, computed naively from `params` (hidden outputs times their
/// `masks`), also recording, when asked, which side of the kink every (leaky) ReLU input is
/// on.
fn reference_pass(
    net: &Network,
    params: &[f64],
    x: &[f64],
    targets: Targets,
    n: usize,
    masks: &Masks,
    mut sides: Option<&mut Vec<bool>>,
) -> f64 {
    if let Some(s) = sides.as_deref_mut() {
        s.clear();
    }
    let mut total = 0.0;
    let mut act: Vec<f64> = Vec::new();
    let mut next: Vec<f64> = Vec::new();
    for r in 0..n {
        act.clear();
        act.extend_from_slice(&x[r * net.arch.inputs..(r + 1) * net.arch.inputs]);
        for (l, layer) in net.arch.layers.iter().enumerate() {
            let w = net.weight_info(l);
            let b = net.bias_info(l);
            next.clear();
            for j in 0..w.cols {
                let mut z = params[b.offset + j];
                for (i, a) in act.iter().enumerate() {
                    z += a * params[w.offset + i * w.cols + j];
                }
                if let (Some(s), Activation::Relu | Activation::LeakyRelu { .. }) =
                    (sides.as_deref_mut(), layer.activation)
                {
                    s.push(z > 0.0);
                }
                let scale = masks
                    .get(l)
                    .and_then(Option::as_ref)
                    .map_or(1.0, |m| f64::from(m[r * w.cols + j]));
                next.push(layer.activation.apply_f64(z) * scale);
            }
            std::mem::swap(&mut act, &mut next);
        }
        total += net.arch.loss.sample_loss_f64(&act, targets, r);
    }
    total / n as f64
}

/// Checks up to `per_tensor` entries of every tensor (all of them if the tensor is smaller)
/// on the samples `indices`.
pub fn check(
    net: &Network,
    data: &Dataset,
    transform: &InputTransform,
    indices: &[usize],
    per_tensor: usize,
    seed: u64,
) -> Vec<TensorCheck> {
    check_with_dropout(net, data, transform, indices, per_tensor, seed, &[])
}

/// [`check`] with dropout `rates` per hidden layer, under the fixed masks of the first
/// training step of a run seeded with `seed`.
pub fn check_with_dropout(
    net: &Network,
    data: &Dataset,
    transform: &InputTransform,
    indices: &[usize],
    per_tensor: usize,
    seed: u64,
    rates: &[f32],
) -> Vec<TensorCheck> {
    let n = indices.len();
    let mut work = StepBuffers::new(net, data, n, false).with_dropout(net, rates, seed);
    let set = (data, transform, indices);
    let grads = analytic(&mut work, net, set);
    let masks: Masks = (0..net.layer_count())
        .map(|l| work.acts.last_mask(l, n).map(|(_, scale)| scale.to_vec()))
        .collect();
    compare_masked(net, set, &grads, &masks, per_tensor, seed)
}

/// The analytic gradient of the real step (f32, sgemm) over `indices`, in `work`'s buffers.
pub fn analytic(
    work: &mut StepBuffers,
    net: &Network,
    (data, transform, indices): (&Dataset, &InputTransform, &[usize]),
) -> Vec<f32> {
    let mut grads = vec![0.0; net.params.len()];
    let batch = Batch {
        data,
        transform,
        indices,
    };
    work.gradient(net, batch, &mut grads);
    grads
}

/// Compares given gradients (laid out like `net.params`) with finite differences.
pub fn compare(
    net: &Network,
    data: &Dataset,
    transform: &InputTransform,
    indices: &[usize],
    analytic: &[f32],
    per_tensor: usize,
    seed: u64,
) -> Vec<TensorCheck> {
    let set = (data, transform, indices);
    compare_masked(net, set, analytic, &Vec::new(), per_tensor, seed)
}

/// [`compare`] for gradients taken under dropout `masks`.
pub fn compare_masked(
    net: &Network,
    (data, transform, indices): (&Dataset, &InputTransform, &[usize]),
    analytic: &[f32],
    masks: &Masks,
    per_tensor: usize,
    seed: u64,
) -> Vec<TensorCheck> {
    let n = indices.len();
    let mut x32 = vec![0.0f32; n * net.arch.inputs];
    let mut targets = TargetBuffer::for_dataset(data, n);
    gather(data, transform, indices, &mut x32, &mut targets);
    let x: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
    let mut params: Vec<f64> = net.params.iter().map(|&v| f64::from(v)).collect();

    let mut rng = rng::stream(seed, rng::Stream::Data, 99);
    let (mut up_sides, mut down_sides) = (Vec::new(), Vec::new());
    net.tensors
        .iter()
        .map(|t| {
            let picks: Vec<usize> = if t.len() <= per_tensor {
                (0..t.len()).collect()
            } else {
                sample(&mut rng, t.len(), per_tensor).into_vec()
            };
            let mut pairs = Vec::with_capacity(picks.len());
            let mut skipped = 0;
            for k in picks {
                let p = t.offset + k;
                let original = params[p];
                let h = 1e-6 * original.abs().max(1.0);
                params[p] = original + h;
                let up = reference_pass(
                    net,
                    &params,
                    &x,
                    targets.view(n),
                    n,
                    masks,
                    Some(&mut up_sides),
                );
                params[p] = original - h;
                let down = reference_pass(
                    net,
                    &params,
                    &x,
                    targets.view(n),
                    n,
                    masks,
                    Some(&mut down_sides),
                );
                params[p] = original;
                if up_sides != down_sides {
                    skipped += 1;
                    continue;
                }
                pairs.push((f64::from(analytic[p]), (up - down) / (2.0 * h)));
            }
            let scale = pairs.iter().map(|(_, n)| n.abs()).fold(0.0, f64::max);
            let floor = (1e-3 * scale).max(1e-10);
            let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
            for (a, num) in &pairs {
                let err = (a - num).abs();
                max_abs = max_abs.max(err);
                max_rel = max_rel.max(err / a.abs().max(num.abs()).max(floor));
            }
            TensorCheck {
                name: t.name.clone(),
                checked: pairs.len(),
                max_abs_error: max_abs,
                max_rel_error: max_rel,
                skipped,
            }
        })
        .collect()
}
