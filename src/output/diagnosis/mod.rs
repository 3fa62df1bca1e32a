//! What the probes' figures mean for the user: one verdict per epoch (the most likely cause,
//! the figures that show it, one fix), and the per-layer lines of `--diagnostics`. The
//! figures are gathered in `evidence`, weighed in `rules`; nothing here prints.

mod evidence;
mod rules;

pub use evidence::{Evidence, HeldOut, LayerFigures};
pub use rules::{decide, INPUT_MAX, JUDGE_AFTER_STEPS};

use crate::model::Network;
use crate::train::{DataFacts, Diagnostics, EpochRecord};

/// Why a network does not learn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    TargetsOutOfRange,
    InputsUnscaled,
    InitTooSmall,
    LrTooHigh,
    BiasKillsRelu,
    DeadUnits,
    InitTooLarge,
    LrTooLow,
    NothingToLearn,
    NotLearning,
}

impl Cause {
    pub const ALL: [Cause; 10] = [
        Cause::TargetsOutOfRange,
        Cause::InputsUnscaled,
        Cause::InitTooSmall,
        Cause::LrTooHigh,
        Cause::BiasKillsRelu,
        Cause::DeadUnits,
        Cause::InitTooLarge,
        Cause::LrTooLow,
        Cause::NothingToLearn,
        Cause::NotLearning,
    ];

    /// The cause in plain words, as the verdict starts.
    pub fn title(self) -> &'static str {
        match self {
            Cause::TargetsOutOfRange => {
                "the targets lie outside what the output activation can produce"
            }
            Cause::InputsUnscaled => "the inputs are not scaled",
            Cause::InitTooSmall => {
                "the initial weights are too small: the signal vanishes layer by layer"
            }
            Cause::LrTooHigh => "the learning rate is far too high",
            Cause::BiasKillsRelu => "negative biases keep the ReLU units switched off",
            Cause::DeadUnits => "most ReLU units are dead",
            Cause::InitTooLarge => {
                "the initial weights are too large: the sigmoid/tanh units saturate"
            }
            Cause::LrTooLow => "the learning rate is far too low",
            Cause::NothingToLearn => "the targets do not follow from the inputs",
            Cause::NotLearning => "the network is not learning, and the probes do not show why",
        }
    }

    /// The one fix; `lr` is the run's current learning rate.
    pub fn fix(self, lr: f32) -> String {
        match self {
            Cause::TargetsOutOfRange => {
                "use model.output_activation = \"identity\", which reaches any value".into()
            }
            Cause::InputsUnscaled => "scale the inputs: data.scale = \"unit\" for 0..255 bytes, \
                                      or data.mean and data.std to standardise them"
                .into(),
            Cause::InitTooSmall | Cause::InitTooLarge => {
                "use init = \"auto\" (He for ReLU, Xavier for sigmoid/tanh)".into()
            }
            Cause::LrTooHigh => format!(
                "lower the lr: try {} (or let `backprop lr-find` suggest one)",
                round_lr(lr / 10.0)
            ),
            Cause::BiasKillsRelu => "start the biases at 0 (model.bias_init = 0)".into(),
            Cause::DeadUnits => "use activation = \"leaky_relu\", whose units cannot die".into(),
            Cause::LrTooLow => format!(
                "raise the lr: try {} (or let `backprop lr-find` suggest one)",
                round_lr(lr * 10.0)
            ),
            Cause::NothingToLearn => "check that each row's target belongs to its inputs (a label \
                                      column shifted by a row, targets shuffled apart from their \
                                      inputs)"
                .into(),
            Cause::NotLearning => "look at the per-layer figures (--diagnostics), and compare one \
                                   step with `backprop trace`"
                .into(),
        }
    }
}

/// The diagnosis of a run at one epoch: the cause, the measured figures, one fix.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub epoch: usize,
    pub cause: Cause,
    pub evidence: Vec<String>,
    pub fix: String,
}

impl Verdict {
    pub fn new(epoch: usize, cause: Cause, evidence: Vec<String>, lr: f32) -> Self {
        Verdict {
            epoch,
            cause,
            evidence,
            fix: cause.fix(lr),
        }
    }

    /// The verdict in one sentence-like line.
    pub fn line(&self) -> String {
        format!(
            "epoch {}: {}. Evidence: {}. Fix: {}",
            self.epoch,
            self.cause.title(),
            self.evidence.join("; "),
            self.fix
        )
    }
}

/// The verdict on the run after the last epoch of `history`, if something is wrong.
/// `steps` is the number of updates so far: a few say little.
pub fn verdict(
    history: &[EpochRecord],
    net: &Network,
    steps: u64,
    facts: &DataFacts,
) -> Option<Verdict> {
    decide(&Evidence::gather(history, net, steps, facts)?)
}

/// The verdict on a run whose loss or weights became non-finite in `epoch` (`detail` says
/// where): unscaled inputs if they are, else the learning rate.
pub fn on_divergence(epoch: usize, lr: f32, facts: &DataFacts, detail: &str) -> Verdict {
    let mut evidence = vec![detail.to_string()];
    let cause = if facts.input_max > INPUT_MAX {
        evidence.push(format!("inputs reach |x| = {:.1}", facts.input_max));
        Cause::InputsUnscaled
    } else {
        Cause::LrTooHigh
    };
    Verdict::new(epoch, cause, evidence, lr)
}

/// One line per layer for `--diagnostics`.
pub fn lines(diag: &Diagnostics) -> Vec<String> {
    diag.layers
        .iter()
        .map(|l| {
            let mut s = format!(
                "  layer {} ({}): |grad| {:.3e}, update/weight {:.2e}",
                l.layer, l.activation, l.grad_norm, l.update_ratio
            );
            if let Some(d) = l.dead_fraction {
                s += &format!(", dead {:.1}%", 100.0 * d);
            }
            if let Some(v) = l.saturated_fraction {
                s += &format!(", saturated {:.1}%", 100.0 * v);
            }
            s
        })
        .collect()
}
/// An lr as a person would type it: two significant digits (0.35, 7e-7).
fn round_lr(lr: f32) -> String {
    let text = format!("{lr:.1e}");
    let value: f32 = text.parse().unwrap_or(lr);
    if (1e-3..1e3).contains(&value) {
        value.to_string()
    } else {
        text
    }
}
