//! The step recomputed in f64 from what it read (the batch, the weights, the optimizer's
//! state): the `--f64` trace, and the reference the f32 one is checked against.

use super::{names, Tensor, Trace};
use crate::model::{Activation, Architecture, Loss};
use crate::optim::{Hyper, OptimizerKind};
use anyhow::{anyhow, Result};
use ndarray::{Array1, Array2, Axis};

/// What the recomputation needs beyond the tensors.
#[derive(Clone, Copy, Debug)]
pub struct StepSettings<'a> {
    pub arch: &'a Architecture,
    pub hyper: Hyper,
    /// Updates taken before this one (Adam's bias correction).
    pub steps_before: u64,
    pub lr: f64,
    pub label_smoothing: f64,
}

fn matrix(t: &Tensor) -> Array2<f64> {
    let (r, c) = t.dims();
    Array2::from_shape_vec((r, c), t.data.clone()).expect("shape matches data")
}

fn tensor(name: String, a: &Array2<f64>) -> Tensor {
    Tensor::new(name, a.shape().to_vec(), a.iter().copied().collect())
}

/// `f'` at output `a` (input `z`), in f64.
pub fn derivative(act: Activation, a: f64, z: f64) -> f64 {
    match act {
        Activation::Relu => f64::from(u8::from(a > 0.0)),
        Activation::LeakyRelu { slope } => {
            if a > 0.0 {
                1.0
            } else {
                f64::from(slope)
            }
        }
        Activation::Sigmoid => a * (1.0 - a),
        Activation::Tanh => 1.0 - a * a,
        Activation::Identity => 1.0,
        Activation::Silu => {
            let s = 1.0 / (1.0 + (-z).exp());
            s * (1.0 + z * (1.0 - s))
        }
    }
}

/// Softmax of each row.
pub fn softmax(z: &Array2<f64>) -> Array2<f64> {
    let mut p = z.clone();
    for mut row in p.rows_mut() {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    p
}

/// The batch-mean loss and `∂loss/∂z` of the output layer.
fn loss_and_delta(
    s: &StepSettings,
    z: &Array2<f64>,
    a: &Array2<f64>,
    y: &Array2<f64>,
) -> (f64, Array2<f64>) {
    let (n, width) = (z.nrows() as f64, z.ncols() as f64);
    match s.arch.loss {
        Loss::SoftmaxCrossEntropy => {
            let eps = s.label_smoothing;
            let t = y.mapv(|v| (1.0 - eps) * v + eps / width);
            let p = softmax(z);
            let mut log_p = z.clone();
            for mut row in log_p.rows_mut() {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = row.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
                row.mapv_inplace(|v| v - lse);
            }
            let loss = -(&t * &log_p).sum() / n;
            (loss, (p - t) / n)
        }
        Loss::MeanSquaredError => {
            let act = s.arch.layers.last().expect("layers").activation;
            let err = a - y;
            let loss = err.mapv(|e| e * e).sum() / (n * width);
            let mut d = err * (2.0 / (n * width));
            ndarray::Zip::from(&mut d)
                .and(a)
                .and(z)
                .for_each(|d, &a, &z| *d *= derivative(act, a, z));
            (loss, d)
        }
        Loss::SigmoidBinaryCrossEntropy => {
            let mut loss = 0.0;
            ndarray::Zip::from(z).and(y).for_each(|&z, &y| {
                loss += z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
            });
            let p = z.mapv(|z| 1.0 / (1.0 + (-z).exp()));
            (loss / (n * width), (p - y) / (n * width))
        }
    }
}

/// One optimizer update of `p` by gradient `g` (states in `state`, updated too).
fn update(s: &StepSettings, p: &mut [f64], g: &[f64], state: &mut [Vec<f64>], decays: bool) {
    let h = &s.hyper;
    let wd = f64::from(h.weight_decay);
    let l2 = if decays && h.kind != OptimizerKind::AdamW {
        wd
    } else {
        0.0
    };
    let (mu, lr) = (f64::from(h.momentum), s.lr);
    let t = (s.steps_before + 1) as i32;
    let (b1, b2, eps) = (f64::from(h.beta1), f64::from(h.beta2), f64::from(h.eps));
    for i in 0..p.len() {
        let gi = g[i] + l2 * p[i];
        match (h.kind, &mut *state) {
            (OptimizerKind::Sgd, _) => p[i] -= lr * gi,
            (OptimizerKind::Momentum, [v]) => {
                v[i] = mu * v[i] + gi;
                p[i] -= lr * v[i];
            }
            (OptimizerKind::Nesterov, [v]) => {
                v[i] = mu * v[i] + gi;
                p[i] -= lr * (gi + mu * v[i]);
            }
            (OptimizerKind::Adam | OptimizerKind::AdamW, [m, v]) => {
                if decays && h.kind == OptimizerKind::AdamW {
                    p[i] -= lr * wd * p[i];
                }
                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                let (mh, vh) = (m[i] / (1.0 - b1.powi(t)), v[i] / (1.0 - b2.powi(t)));
                p[i] -= lr * mh / (vh.sqrt() + eps);
            }
            _ => unreachable!("one state vector per state name"),
        }
    }
}

/// Every tensor of the step recomputed in f64 from `read` (a trace holding at least the
/// input, target, weights, biases and optimizer state), under the same names.
pub fn recompute(read: &Trace, s: &StepSettings) -> Result<Trace> {
    let get = |name: &str| {
        read.get(name)
            .ok_or_else(|| anyhow!("the trace has no `{name}`"))
    };
    let layers = s.arch.layers.len();
    let states = s.hyper.kind.state_names();
    let mut out = Vec::new();
    let x = matrix(get("input")?);
    let y = matrix(get("target")?);
    let (mut zs, mut outs) = (Vec::new(), vec![x]);
    let mut params = Vec::new();
    for (l, spec) in s.arch.layers.iter().enumerate() {
        let w = matrix(get(&format!("layer{l}.weight"))?);
        let b: Array1<f64> = Array1::from(get(&format!("layer{l}.bias"))?.data.clone());
        let z = outs[l].dot(&w) + &b;
        let a = z.mapv(|v| spec.activation.apply_f64(v));
        out.push(tensor(format!("layer{l}.pre"), &z));
        out.push(tensor(format!("layer{l}.out"), &a));
        zs.push(z);
        outs.push(a);
        params.push((w, b));
    }
    let (loss, mut delta) = loss_and_delta(s, &zs[layers - 1], &outs[layers], &y);
    out.push(Tensor::new("loss", vec![], vec![loss]));
    let mut grads = vec![(Array2::zeros((0, 0)), Array1::zeros(0)); layers];
    for l in (0..layers).rev() {
        out.push(tensor(format!("layer{l}.delta"), &delta));
        grads[l] = (outs[l].t().dot(&delta), delta.sum_axis(Axis(0)));
        out.push(tensor(format!("layer{l}.weight.grad"), &grads[l].0));
        let gb = &grads[l].1;
        out.push(Tensor::new(
            format!("layer{l}.bias.grad"),
            vec![gb.len()],
            gb.to_vec(),
        ));
        if l > 0 {
            let act = s.arch.layers[l - 1].activation;
            let mut below = delta.dot(&params[l].0.t());
            ndarray::Zip::from(&mut below)
                .and(&outs[l])
                .and(&zs[l - 1])
                .for_each(|d, &a, &z| *d *= derivative(act, a, z));
            delta = below;
        }
    }
    for (l, (w, b)) in params.into_iter().enumerate() {
        for (p, values, g, shape, is_weight) in [
            (
                "weight",
                w.iter().copied().collect::<Vec<_>>(),
                grads[l].0.iter().copied().collect::<Vec<_>>(),
                w.shape().to_vec(),
                true,
            ),
            (
                "bias",
                b.to_vec(),
                grads[l].1.to_vec(),
                vec![b.len()],
                false,
            ),
        ] {
            let mut values = values;
            let mut state: Vec<Vec<f64>> = states
                .iter()
                .map(|st| get(&format!("optimizer.{st}.layer{l}.{p}")).map(|t| t.data.clone()))
                .collect::<Result<_>>()?;
            let decays = s.hyper.weight_decay != 0.0 && (is_weight || s.hyper.decay_biases);
            update(s, &mut values, &g, &mut state, decays);
            out.push(Tensor::new(format!("layer{l}.{p}.after"), shape, values));
        }
    }
    let mut trace = Trace {
        metadata: read.metadata.clone(),
        ..Trace::default()
    };
    trace.metadata.insert("precision".into(), "f64".into());
    for name in names(layers, states) {
        match out.iter().position(|t| t.name == name) {
            Some(i) => trace.push(out.swap_remove(i)),
            None => trace.push(get(&name)?.clone()),
        }
    }
    Ok(trace)
}
