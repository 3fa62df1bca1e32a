//! The figures a verdict weighs, gathered from the epoch records, the weights and the data:
//! plain numbers, so that the rules ([`super::rules`]) are a pure function of them.

use crate::model::{Activation, Loss, Network};
use crate::train::{DataFacts, EpochRecord};

/// One layer's figures: from the last epoch's probes, and from its weights as they are now.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerFigures {
    pub layer: usize,
    pub activation: Activation,
    /// `rms(W)·√fan_in`: about 1.4 for He, about 1 for Xavier initialisation.
    pub gain: f64,
    pub bias_mean: f64,
    pub output_rms: f64,
    pub dead: Option<f64>,
    pub saturated: Option<f64>,
    pub update_ratio: f64,
}

/// The held-out figures of the last epoch (validation, else test).
#[derive(Clone, Debug, PartialEq)]
pub struct HeldOut {
    pub name: &'static str,
    pub loss: f64,
    pub accuracy: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    pub epoch: usize,
    /// Updates so far.
    pub steps: u64,
    pub lr: f32,
    pub loss: f64,
    pub previous_loss: Option<f64>,
    /// The loss before any update: the first probed step's, else chance level.
    pub start_loss: f64,
    pub best_loss: f64,
    /// Softmax classes (chance loss `ln K`, chance accuracy `1/K`).
    pub classes: Option<usize>,
    pub held_out: Option<HeldOut>,
    /// The largest update-to-weight ratio of the run so far, and its epoch.
    pub wildest_update: (f64, usize),
    pub layers: Vec<LayerFigures>,
    pub input_max: f64,
    pub target_range: Option<(f64, f64)>,
    /// The range of a bounded output activation under mean squared error, with its name.
    pub output_range: Option<(f64, f64, &'static str)>,
}

fn rms(v: &[f32]) -> f64 {
    let sum: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (sum / v.len().max(1) as f64).sqrt()
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64
}

/// What a sigmoid or tanh output can reach.
fn bounded_range(a: Activation) -> Option<(f64, f64, &'static str)> {
    match a {
        Activation::Sigmoid => Some((0.0, 1.0, "sigmoid")),
        Activation::Tanh => Some((-1.0, 1.0, "tanh")),
        _ => None,
    }
}

fn layer_figures(net: &Network, record: &EpochRecord) -> Vec<LayerFigures> {
    let probed = record.diagnostics.as_ref().map(|d| &d.layers);
    net.arch
        .layers
        .iter()
        .enumerate()
        .map(|(l, spec)| {
            let w = net.weight_info(l);
            let d = probed.and_then(|p| p.get(l));
            LayerFigures {
                layer: l,
                activation: spec.activation,
                gain: rms(&net.params[w.range()]) * (w.rows as f64).sqrt(),
                bias_mean: mean(&net.params[net.bias_info(l).range()]),
                output_rms: d.map_or(f64::NAN, |d| d.output_rms),
                dead: d.and_then(|d| d.dead_fraction),
                saturated: d.and_then(|d| d.saturated_fraction),
                update_ratio: d.map_or(f64::NAN, |d| d.update_ratio),
            }
        })
        .collect()
}

impl Evidence {
    /// The figures after the last epoch of `history`; `steps` updates so far.
    pub fn gather(
        history: &[EpochRecord],
        net: &Network,
        steps: u64,
        facts: &DataFacts,
    ) -> Option<Self> {
        let record = history.last()?;
        let classes = (net.arch.loss == Loss::SoftmaxCrossEntropy && net.arch.outputs() > 1)
            .then(|| net.arch.outputs());
        let first = &history[0];
        let start_loss = first
            .diagnostics
            .as_ref()
            .map(|d| d.first_loss)
            .filter(|l| l.is_finite() && *l > 0.0)
            .or_else(|| classes.map(|k| (k as f64).ln()))
            .unwrap_or(first.train_loss);
        let wildest_update = history
            .iter()
            .filter_map(|r| {
                r.diagnostics
                    .as_ref()
                    .map(|d| (d.max_update_ratio, r.epoch))
            })
            .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a });
        let held_out = match (record.val_loss, record.val_acc) {
            (Some(loss), accuracy) => HeldOut {
                name: "validation",
                loss,
                accuracy,
            },
            (None, _) => HeldOut {
                name: "test",
                loss: record.test_loss,
                accuracy: record.test_acc,
            },
        };
        let last = net.arch.layers.last()?;
        Some(Evidence {
            epoch: record.epoch,
            steps,
            lr: record.lr,
            loss: record.train_loss,
            previous_loss: history.len().checked_sub(2).map(|i| history[i].train_loss),
            start_loss,
            best_loss: history
                .iter()
                .map(|r| r.train_loss)
                .fold(f64::INFINITY, f64::min),
            classes,
            held_out: Some(held_out).filter(|h| h.loss.is_finite()),
            wildest_update,
            layers: layer_figures(net, record),
            input_max: facts.input_max,
            target_range: facts.target_range,
            output_range: (net.arch.loss == Loss::MeanSquaredError)
                .then(|| bounded_range(last.activation))
                .flatten(),
        })
    }
}
