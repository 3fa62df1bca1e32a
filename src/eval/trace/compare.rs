//! Two traces of the same step, tensor by tensor in forward-then-backward order: the first
//! that disagrees, by how much and where, and which classic mistake its values show.

use super::reference::softmax;
use super::{names, Tensor, Trace};
use crate::model::{Activation, Architecture, Loss};
use ndarray::Array2;

/// A mistake recognised by its signature in the first tensor that disagrees.
#[derive(Clone, Debug, PartialEq)]
pub enum Mistake {
    /// The output delta is ours times `p(1-p)`.
    SoftmaxDerivativeOnCrossEntropy,
    /// A gradient `B` times ours.
    SummedNotAveraged {
        batch: usize,
    },
    Transposed,
    /// A bias gradient missing, zero, or a bias left as it was.
    MissingBiasGradient,
    SignFlip,
    /// A tanh or sigmoid derivative taken from `z` instead of the output.
    DerivativeFromPreActivation {
        activation: &'static str,
    },
    /// A weight gradient built on another tensor than the layer's input.
    WrongActivations {
        used: String,
        right: String,
    },
}

impl Mistake {
    /// The mistake in plain words, with what is right.
    pub fn describe(&self) -> String {
        match self {
            Mistake::SoftmaxDerivativeOnCrossEntropy => "the softmax derivative is applied on top \
                of cross-entropy: your output delta is ours times p(1-p). With softmax and \
                cross-entropy together the output delta is simply (p - y) / B"
                .into(),
            Mistake::SummedNotAveraged { batch } => format!(
                "the gradient is summed over the batch, not averaged: yours is exactly B = \
                 {batch} times ours; divide by the batch size"
            ),
            Mistake::Transposed => "the gradient is transposed: yours is ours transposed; the \
                weight gradient is input.T @ delta, shaped like the weight [inputs, outputs]"
                .into(),
            Mistake::MissingBiasGradient => "the bias gradient is missing: the biases need \
                delta.sum(axis=0) and their own update"
                .into(),
            Mistake::SignFlip => "the sign is flipped: yours is minus ours (p - y, not y - p, \
                and the update subtracts lr * gradient)"
                .into(),
            Mistake::DerivativeFromPreActivation { activation } => {
                format!(
                "the {activation} derivative is computed from the pre-activation z instead of the \
                 output a = {activation}(z): use {}",
                if *activation == "tanh" { "1 - a**2" } else { "a * (1 - a)" }
            )
            }
            Mistake::WrongActivations { used, right } => format!(
                "the weight gradient uses `{used}` where the layer's input `{right}` belongs: \
                 dW = {right}.T @ delta"
            ),
        }
    }
}

/// How far two tensors of the same shape are apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub max_abs: f64,
    pub max_rel: f64,
    /// Where the absolute error is largest, as an index per dimension.
    pub worst: Vec<usize>,
    pub theirs: f64,
    pub ours: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Disagreement {
    pub name: String,
    pub shape: Vec<usize>,
    /// Absent when the shapes differ.
    pub difference: Option<Difference>,
    pub their_shape: Vec<usize>,
    pub mistake: Option<Mistake>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    pub agreed: Vec<String>,
    /// Ours, absent from theirs (not compared).
    pub missing: Vec<String>,
    /// Theirs, with a name ours does not have.
    pub unknown: Vec<String>,
    pub first: Option<Disagreement>,
    /// Further disagreeing tensors after the first.
    pub later: Vec<String>,
    /// A convention of theirs that differs from ours but is not a mistake.
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn agrees(&self) -> bool {
        self.first.is_none() && !self.agreed.is_empty()
    }
}

fn index(flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut rest = flat;
    let mut out = vec![0; shape.len()];
    for (o, &d) in out.iter_mut().zip(shape).rev() {
        *o = rest % d.max(1);
        rest /= d.max(1);
    }
    out
}

/// The difference of `theirs` from `ours` (same length).
pub fn difference(theirs: &[f64], ours: &[f64], shape: &[usize]) -> Difference {
    // Relative to entries of some size: one near-zero entry makes any ratio meaningless.
    let floor = 1e-6 * ours.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    let mut d = Difference {
        max_abs: 0.0,
        max_rel: 0.0,
        worst: index(0, shape),
        theirs: theirs.first().copied().unwrap_or(0.0),
        ours: ours.first().copied().unwrap_or(0.0),
    };
    for (i, (&t, &o)) in theirs.iter().zip(ours).enumerate() {
        let abs = (t - o).abs();
        let abs = if abs.is_nan() { f64::INFINITY } else { abs };
        d.max_rel = d.max_rel.max(abs / o.abs().max(floor));
        if abs > d.max_abs || (i == 0 && abs.is_infinite()) {
            d.max_abs = abs;
            d.worst = index(i, shape);
            (d.theirs, d.ours) = (t, o);
        }
    }
    d
}

/// Whether `theirs` equals `ours` within `tol` of the larger of their largest magnitudes.
pub fn close(theirs: &[f64], ours: &[f64], tol: f64) -> bool {
    let scale = ours
        .iter()
        .chain(theirs)
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-12);
    theirs.len() == ours.len()
        && theirs
            .iter()
            .zip(ours)
            .all(|(t, o)| (t - o).abs() <= tol * scale)
}

fn matrix(t: &Tensor) -> Array2<f64> {
    let (r, c) = t.dims();
    Array2::from_shape_vec((r, c), t.data.clone()).expect("shape matches data")
}

/// What the signatures need to know of our step.
struct Context<'a> {
    ours: &'a Trace,
    arch: Option<Architecture>,
    batch: usize,
    tol: f64,
}

impl Context<'_> {
    fn t(&self, name: &str) -> Option<&Tensor> {
        self.ours.get(name)
    }

    /// Our delta of layer `l`, and the derivative-from-z variant of the layer below's.
    fn wrong_derivative(&self, theirs: &Tensor, l: usize) -> Option<Mistake> {
        let arch = self.arch.as_ref()?;
        let act = arch.layers.get(l)?.activation;
        let formula = match act {
            Activation::Tanh => |z: f64| 1.0 - z * z,
            Activation::Sigmoid => |z: f64| z * (1.0 - z),
            _ => return None,
        };
        let upper = matrix(self.t(&format!("layer{}.delta", l + 1))?);
        let w = matrix(self.t(&format!("layer{}.weight", l + 1))?);
        let z = matrix(self.t(&format!("layer{l}.pre"))?);
        let back = upper.dot(&w.t());
        let candidate: Vec<f64> = back.iter().zip(&z).map(|(b, &z)| b * formula(z)).collect();
        close(&theirs.data, &candidate, self.tol).then_some(Mistake::DerivativeFromPreActivation {
            activation: act.name(),
        })
    }

    fn softmax_twice(&self, theirs: &Tensor, ours: &Tensor, l: usize) -> Option<Mistake> {
        let arch = self.arch.as_ref()?;
        let out = matrix(self.t(&format!("layer{l}.out"))?);
        let p = match arch.loss {
            Loss::SoftmaxCrossEntropy => softmax(&out),
            Loss::SigmoidBinaryCrossEntropy => out.mapv(|z| 1.0 / (1.0 + (-z).exp())),
            Loss::MeanSquaredError => return None,
        };
        let candidate: Vec<f64> = ours
            .data
            .iter()
            .zip(&p)
            .map(|(d, p)| d * p * (1.0 - p))
            .collect();
        let per_sample: Vec<f64> = candidate.iter().map(|v| v * self.batch as f64).collect();
        (close(&theirs.data, &candidate, self.tol) || close(&theirs.data, &per_sample, self.tol))
            .then_some(Mistake::SoftmaxDerivativeOnCrossEntropy)
    }

    /// `A.T @ delta` for every other tensor `A` that fits layer `l`'s weight gradient.
    fn wrong_activations(&self, theirs: &Tensor, l: usize) -> Option<Mistake> {
        let delta = matrix(self.t(&format!("layer{l}.delta"))?);
        let right = if l == 0 {
            "input".to_string()
        } else {
            format!("layer{}.out", l - 1)
        };
        let layers = self.ours.layers();
        let candidates = std::iter::once("input".to_string())
            .chain((0..layers).flat_map(|k| [format!("layer{k}.out"), format!("layer{k}.pre")]));
        for name in candidates.filter(|c| *c != right) {
            let a = matrix(self.t(&name)?);
            if a.nrows() != delta.nrows() || a.ncols() * delta.ncols() != theirs.data.len() {
                continue;
            }
            let g = a.t().dot(&delta);
            let g: Vec<f64> = g.iter().copied().collect();
            if close(&theirs.data, &g, self.tol) {
                return Some(Mistake::WrongActivations { used: name, right });
            }
        }
        None
    }

    /// The mistake `theirs` (disagreeing with `ours`) shows, if one is recognised.
    fn signature(&self, theirs: &Tensor, ours: &Tensor, delta_scale: f64) -> Option<Mistake> {
        let name = ours.name.as_str();
        let layer: Option<usize> = name
            .strip_prefix("layer")
            .and_then(|r| r.split('.').next())
            .and_then(|d| d.parse().ok());
        let scaled = |k: f64| ours.data.iter().map(|v| v * k).collect::<Vec<_>>();
        let is_bias = name.contains(".bias.");
        if is_bias && theirs.data.iter().all(|&v| v == 0.0) && ours.data.iter().any(|&v| v != 0.0) {
            return Some(Mistake::MissingBiasGradient);
        }
        if name.ends_with(".bias.after") {
            let before = self.t(name.trim_end_matches(".after"))?;
            if close(&theirs.data, &before.data, self.tol * 1e-3) {
                return Some(Mistake::MissingBiasGradient);
            }
        }
        let sign = if name.ends_with(".delta") {
            -delta_scale
        } else {
            -1.0
        };
        if close(&theirs.data, &scaled(sign), self.tol) {
            return Some(Mistake::SignFlip);
        }
        if name.ends_with(".grad") && close(&theirs.data, &scaled(self.batch as f64), self.tol) {
            return Some(Mistake::SummedNotAveraged { batch: self.batch });
        }
        if name.ends_with(".weight.grad") {
            let (r, c) = ours.dims();
            let transposed = matrix(ours).t().iter().copied().collect::<Vec<_>>();
            let shape_fits = theirs.shape == [c, r] || (r == c && theirs.shape == ours.shape);
            if shape_fits && close(&theirs.data, &transposed, self.tol) {
                return Some(Mistake::Transposed);
            }
            return self.wrong_activations(theirs, layer?);
        }
        if name.ends_with(".delta") {
            let l = layer?;
            let last = self.ours.layers().checked_sub(1)?;
            return if l == last {
                self.softmax_twice(theirs, ours, l)
            } else {
                self.wrong_derivative(theirs, l)
            };
        }
        None
    }
}

/// Tensors the user's code reads rather than computes: a mismatch there is a loading error.
fn is_read(name: &str) -> bool {
    !(name.ends_with(".pre")
        || name.ends_with(".out")
        || name.ends_with(".delta")
        || name.ends_with(".grad")
        || name.ends_with(".after")
        || name == "loss")
}

/// Compares `theirs` with `ours` within the relative tolerance `tol` (of each tensor's
/// largest magnitude).
pub fn compare(theirs: &Trace, ours: &Trace, tol: f64) -> Comparison {
    let arch: Option<Architecture> = ours
        .metadata
        .get("architecture")
        .and_then(|a| serde_json::from_str(a).ok());
    let batch = ours.get("input").map_or(1, |t| t.dims().0);
    let states: Vec<&str> = ["velocity", "m", "v"]
        .into_iter()
        .filter(|s| ours.get(&format!("optimizer.{s}.layer0.weight")).is_some())
        .collect();
    let order = names(ours.layers(), &states);
    let cx = Context {
        ours,
        arch,
        batch,
        tol,
    };
    let mut c = Comparison {
        unknown: theirs
            .tensors
            .iter()
            .filter(|t| !order.contains(&t.name))
            .map(|t| t.name.clone())
            .collect(),
        ..Comparison::default()
    };
    // 1, or B for deltas of a per-sample convention (the batch mean's 1/B applied later).
    let mut delta_scale = 1.0;
    for name in &order {
        let Some(o) = ours.get(name) else { continue };
        let Some(t) = theirs.get(name) else {
            let weight_grad = name.replace(".bias.grad", ".weight.grad");
            if name.ends_with(".bias.grad")
                && theirs.get(&weight_grad).is_some()
                && c.first.is_none()
            {
                c.first = Some(Disagreement {
                    name: name.clone(),
                    shape: o.shape.clone(),
                    difference: None,
                    their_shape: Vec::new(),
                    mistake: Some(Mistake::MissingBiasGradient),
                });
            } else if !is_read(name) {
                c.missing.push(name.clone());
            }
            continue;
        };
        let same_shape = t.data.len() == o.data.len() && t.dims() == o.dims();
        let mut expected = o.data.clone();
        if same_shape && name.ends_with(".delta") {
            if delta_scale == 1.0 && !close(&t.data, &o.data, tol) {
                let b = batch as f64;
                if close(
                    &t.data,
                    &o.data.iter().map(|v| v * b).collect::<Vec<_>>(),
                    tol,
                ) {
                    delta_scale = b;
                    c.notes.push(format!(
                        "your deltas are per sample, {batch} times ours (the batch mean's 1/B \
                         applied in the gradients): compared as such"
                    ));
                }
            }
            expected.iter_mut().for_each(|v| *v *= delta_scale);
        }
        if same_shape && close(&t.data, &expected, tol) {
            c.agreed.push(name.clone());
            continue;
        }
        if c.first.is_some() {
            c.later.push(name.clone());
            continue;
        }
        let mut mistake = cx.signature(t, o, delta_scale);
        if is_read(name) {
            mistake = None;
        }
        c.first = Some(Disagreement {
            name: name.clone(),
            shape: o.shape.clone(),
            difference: same_shape.then(|| difference(&t.data, &expected, &o.shape)),
            their_shape: t.shape.clone(),
            mistake,
        });
    }
    c
}

fn shape(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// The comparison for people, one line each.
pub fn report(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!("{} tensor(s) agree", c.agreed.len()));
    out.extend(c.notes.iter().map(|n| format!("note: {n}")));
    match &c.first {
        None if c.agreed.is_empty() => out.push("no tensor of ours found in theirs".into()),
        None => out.push("everything compared agrees".into()),
        Some(d) => {
            let mut line = format!("first disagreement: {} ({})", d.name, shape(&d.shape));
            match &d.difference {
                Some(x) => line += &format!(
                    ": max abs error {:.3e} at [{}] (theirs {:.6e}, ours {:.6e}), max rel error {:.3e}",
                    x.max_abs,
                    x.worst.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
                    x.theirs,
                    x.ours,
                    x.max_rel
                ),
                None if d.their_shape.is_empty() => line += ": missing from theirs",
                None => line += &format!(": theirs is shaped {}", shape(&d.their_shape)),
            }
            out.push(line);
            match &d.mistake {
                Some(m) => out.push(format!("likely mistake: {}", m.describe())),
                None => out.push("no classic mistake recognised".into()),
            }
            if !c.later.is_empty() {
                out.push(format!("{} later tensor(s) disagree too", c.later.len()));
            }
        }
    }
    if !c.missing.is_empty() {
        out.push(format!(
            "not compared (not in theirs): {}",
            c.missing.join(", ")
        ));
    }
    if !c.unknown.is_empty() {
        out.push(format!(
            "ignored (names we do not write): {}",
            c.unknown.join(", ")
        ));
    }
    out
}
