//! One training step laid bare, for comparing a hand-written backprop against ours: every
//! tensor of the step under a stable name ([`names`]), written to safetensors
//! ([`file`](mod@file)), recorded from the real step ([`record`]) or recomputed in f64
//! ([`reference`](mod@reference)), and two traces compared tensor by tensor with the classic mistakes
//! recognised by their signature ([`compare`]).
//!
//! Names, for layers `l = 0..L` (`z = x @ weight + bias`, `weight` is `[inputs, outputs]`):
//! `input`, `target` (one-hot for classes), `layer{l}.weight`, `layer{l}.bias` and any
//! optimizer state `optimizer.{velocity|m|v}.layer{l}.{weight|bias}` before the step;
//! `layer{l}.pre` (z), `layer{l}.out` (f(z); the logits for the fused losses), `loss` (the
//! batch mean); `layer{l}.delta` (∂loss/∂z), `layer{l}.weight.grad`, `layer{l}.bias.grad`;
//! `layer{l}.weight.after`, `layer{l}.bias.after`.

pub mod compare;
pub mod file;
pub mod record;
pub mod reference;

use std::collections::HashMap;

/// One tensor of a trace, held in f64 whatever its file's precision.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Tensor {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f64>) -> Self {
        Tensor {
            name: name.into(),
            shape,
            data,
        }
    }

    pub fn from_f32(name: impl Into<String>, shape: Vec<usize>, data: &[f32]) -> Self {
        Self::new(name, shape, data.iter().map(|&v| f64::from(v)).collect())
    }

    /// Rows and columns of a matrix (a vector is one row).
    pub fn dims(&self) -> (usize, usize) {
        match self.shape[..] {
            [r, c] => (r, c),
            [c] => (1, c),
            _ => (1, self.data.len()),
        }
    }
}

/// The tensors of one step and what describes them (`metadata`: the architecture, the
/// optimizer, the lr, which step).
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub tensors: Vec<Tensor>,
    pub metadata: HashMap<String, String>,
}

impl Trace {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub fn push(&mut self, t: Tensor) {
        self.tensors.push(t);
    }

    /// Layers, from the weights present.
    pub fn layers(&self) -> usize {
        (0..)
            .take_while(|l| self.get(&format!("layer{l}.weight")).is_some())
            .count()
    }
}

/// Every name of a step of an `layers`-layer network whose optimizer keeps `states`, in
/// forward-then-backward order: what the step reads, the forward pass, the loss, then per
/// layer from the output down its delta and gradients, then the weights after the update.
pub fn names(layers: usize, states: &[&str]) -> Vec<String> {
    let mut out = vec!["input".to_string(), "target".to_string()];
    for l in 0..layers {
        for p in ["weight", "bias"] {
            out.push(format!("layer{l}.{p}"));
            out.extend(states.iter().map(|s| format!("optimizer.{s}.layer{l}.{p}")));
        }
    }
    for l in 0..layers {
        out.push(format!("layer{l}.pre"));
        out.push(format!("layer{l}.out"));
    }
    out.push("loss".to_string());
    for l in (0..layers).rev() {
        out.push(format!("layer{l}.delta"));
        out.push(format!("layer{l}.weight.grad"));
        out.push(format!("layer{l}.bias.grad"));
    }
    for l in 0..layers {
        out.push(format!("layer{l}.weight.after"));
        out.push(format!("layer{l}.bias.after"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_run_forward_then_backward() {
        let n = super::names(2, &["velocity"]);
        let at = |name: &str| n.iter().position(|x| x == name).unwrap();
        assert!(at("optimizer.velocity.layer0.weight") < at("layer0.pre"));
        assert!(at("layer1.out") < at("loss"));
        assert!(at("loss") < at("layer1.delta"));
        assert!(at("layer1.bias.grad") < at("layer0.delta"));
        assert!(at("layer0.bias.grad") < at("layer0.weight.after"));
        assert_eq!(n.len(), 2 + 2 * 4 + 4 + 1 + 6 + 4);
    }
}
