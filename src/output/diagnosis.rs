//! What the probes' figures mean for the user: warnings, each with its likely cause and fix,
//! and the per-layer lines of `--diagnostics`.

use crate::model::{Loss, Network};
use crate::train::{Diagnostics, EpochRecord};

/// Warnings about the last epoch of `history`, each with the likely cause and the fix, in
/// one sentence. `steps` is the number of updates so far: a few say little.
pub fn warnings(history: &[EpochRecord], net: &Network, steps: u64) -> Vec<String> {
    let mut out = Vec::new();
    let Some(record) = history.last() else {
        return out;
    };
    if steps < JUDGE_AFTER_STEPS {
        return out;
    }
    if let [first, .., previous, _] = history {
        if record.train_loss > 1.25 * previous.train_loss {
            out.push(format!(
                "training loss rose in epoch {} ({:.4} after {:.4}): the learning rate is likely \
                 too high; lower it, or add a decaying schedule",
                record.epoch, record.train_loss, previous.train_loss
            ));
        } else if record.train_loss > 0.99 * first.train_loss {
            out.push(format!(
                "training loss has not decreased since epoch 1 ({:.4}, then {:.4}): the network \
                 is not learning; check the learning rate (too low or far too high) and the init",
                first.train_loss, record.train_loss
            ));
        }
    }
    let Some(diag) = &record.diagnostics else {
        return out;
    };
    if let Some(chance) = chance_loss(net) {
        let stalled = (record.train_loss - chance).abs() < 0.03 * chance;
        if stalled {
            out.push(format!(
                "training loss {:.4} is still at chance level ({chance:.4}) after epoch {}: the \
                 signal is not getting through, most often because the weights start too small \
                 (e.g. normal std 0.01 on a deep ReLU net); use init = \"auto\" (He for ReLU, \
                 Xavier for sigmoid/tanh) or a higher lr",
                record.train_loss, record.epoch
            ));
        }
    }
    for l in &diag.layers {
        if let Some(dead) = l.dead_fraction.filter(|&d| d > 0.5) {
            out.push(format!(
                "{:.0}% of the ReLU units of layer {} are dead (zero for a whole batch): the lr is \
                 likely too high or the biases too negative; lower the lr or use leaky_relu",
                100.0 * dead,
                l.layer
            ));
        }
        if let Some(sat) = l.saturated_fraction.filter(|&s| s > 0.5) {
            out.push(format!(
                "{:.0}% of the {} activations of layer {} are saturated (gradient ~0): inputs are \
                 likely unscaled or the weights too large; scale inputs to [0, 1] (data.scale = \
                 \"unit\") and use Xavier init",
                100.0 * sat,
                l.activation,
                l.layer
            ));
        }
    }
    let ratios: Vec<f64> = diag.layers.iter().map(|l| l.update_ratio).collect();
    let worst_high = ratios.iter().copied().fold(0.0, f64::max);
    let worst_low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    if worst_high > 0.1 {
        out.push(format!(
            "an update changes the weights by {:.1}% of their size (about 0.1% is healthy): the lr \
             is too high; divide it by 10",
            100.0 * worst_high
        ));
    } else if worst_low < 1e-6 {
        out.push(format!(
            "an update changes some layer's weights by only {worst_low:.1e} of their size (about \
             1e-3 is healthy): the lr is too low or the gradient vanishes; raise the lr or check \
             the init"
        ));
    }
    out
}

/// The loss of a model that knows nothing: ln(classes) for softmax cross-entropy.
fn chance_loss(net: &Network) -> Option<f64> {
    match net.arch.loss {
        Loss::SoftmaxCrossEntropy if net.arch.outputs() > 1 => {
            Some((net.arch.outputs() as f64).ln())
        }
        _ => None,
    }
}

/// Updates before the warnings judge a run: early epochs of tiny datasets are noise.
const JUDGE_AFTER_STEPS: u64 = 100;

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
