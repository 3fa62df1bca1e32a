//! The rules, most decisive first: the first that matches is the verdict. A certain bug (an
//! unreachable target) needs no symptom; the others are weighed only once the run shows one
//! (a rising or stalled loss, dead or saturated units, a held-out score at chance), so a
//! healthy run hears nothing. Dead units after a wild update are the lr's doing, so the lr
//! rule comes before the dead-unit ones.

use super::evidence::{Evidence, LayerFigures};
use super::{Cause, Verdict};

/// Updates before a run is judged on its symptoms: early epochs of tiny datasets are noise.
pub const JUDGE_AFTER_STEPS: u64 = 100;
/// Largest healthy `|x|`: standardised or unit-scaled inputs stay well below.
pub const INPUT_MAX: f64 = 20.0;
/// An update moving a layer's weights by more than this fraction of their size is wild.
const WILD_UPDATE: f64 = 0.1;
/// An update below this fraction of the weights' size teaches nothing in a useful time.
const TIMID_UPDATE: f64 = 1e-5;
/// A signal scaled by less than this through the hidden layers has vanished.
const TINY_GAIN: f64 = 0.01;
const MOSTLY: f64 = 0.5;

/// What is visibly wrong, before asking why.
struct Symptoms<'a> {
    rose: bool,
    stalled: bool,
    dead: Option<&'a LayerFigures>,
    saturated: Option<&'a LayerFigures>,
    held_out_at_chance: bool,
}

fn hidden(e: &Evidence) -> &[LayerFigures] {
    &e.layers[..e.layers.len().saturating_sub(1)]
}

/// The hidden layer with the largest `figure`, if above [`MOSTLY`].
fn worst(e: &Evidence, figure: impl Fn(&LayerFigures) -> Option<f64>) -> Option<&LayerFigures> {
    hidden(e)
        .iter()
        .filter(|l| figure(l).is_some_and(|f| f > MOSTLY))
        .max_by(|a, b| figure(a).partial_cmp(&figure(b)).expect("finite"))
}

impl<'a> Symptoms<'a> {
    fn of(e: &'a Evidence) -> Self {
        // A rise counts against the loss the run started from: near convergence a loss of
        // 0.015 after 0.012 is noise, not a symptom.
        let rose = e
            .previous_loss
            .is_some_and(|p| e.loss > p + 0.1 * e.start_loss)
            || e.loss > 1.2 * e.start_loss;
        let held_out_at_chance = match (e.classes, &e.held_out) {
            (Some(k), Some(h)) => {
                let k = k as f64;
                h.accuracy.is_some_and(|a| a < 1.5 / k) && h.loss > 0.95 * k.ln()
            }
            _ => false,
        };
        Symptoms {
            rose,
            stalled: e.best_loss > 0.97 * e.start_loss,
            dead: worst(e, |l| l.dead),
            saturated: worst(e, |l| l.saturated),
            held_out_at_chance,
        }
    }

    fn any(&self) -> bool {
        self.rose
            || self.stalled
            || self.dead.is_some()
            || self.saturated.is_some()
            || self.held_out_at_chance
    }
}

type Rule = fn(&Evidence, &Symptoms) -> Option<(Cause, Vec<String>)>;

/// In order of precedence.
const RULES: [Rule; 9] = [
    inputs_unscaled,
    init_too_small,
    lr_too_high,
    bias_kills_relu,
    dead_units,
    init_too_large,
    lr_too_low,
    nothing_to_learn,
    not_learning,
];

/// The one verdict on the run so far, if anything is wrong.
pub fn decide(e: &Evidence) -> Option<Verdict> {
    let (cause, evidence) = targets_out_of_range(e).or_else(|| {
        let symptoms = Symptoms::of(e);
        if e.steps < JUDGE_AFTER_STEPS || !symptoms.any() {
            return None;
        }
        RULES.iter().find_map(|rule| rule(e, &symptoms))
    })?;
    Some(Verdict::new(e.epoch, cause, evidence, e.lr))
}

fn pct(v: f64) -> String {
    format!("{:.0}%", 100.0 * v)
}

fn loss_figures(e: &Evidence) -> String {
    format!(
        "training loss {:.4} in epoch {}, {:.4} before the first update",
        e.loss, e.epoch, e.start_loss
    )
}

fn targets_out_of_range(e: &Evidence) -> Option<(Cause, Vec<String>)> {
    let (lo, hi, name) = e.output_range?;
    let (t_lo, t_hi) = e.target_range?;
    (t_lo < lo || t_hi > hi).then(|| {
        (
            Cause::TargetsOutOfRange,
            vec![format!(
                "the targets span [{t_lo:.4}, {t_hi:.4}], a {name} output only ({lo}, {hi})"
            )],
        )
    })
}

fn inputs_unscaled(e: &Evidence, _: &Symptoms) -> Option<(Cause, Vec<String>)> {
    (e.input_max > INPUT_MAX).then(|| {
        (
            Cause::InputsUnscaled,
            vec![
                format!(
                    "inputs reach |x| = {:.1} (scaled inputs stay within a few units)",
                    e.input_max
                ),
                loss_figures(e),
            ],
        )
    })
}

/// How much the hidden layers' weights scale the signal, all together: `rms·√fan_in` per
/// layer, halved in power by a ReLU (He init keeps the product about 1).
fn compound_gain(e: &Evidence) -> f64 {
    hidden(e)
        .iter()
        .map(|l| {
            let relu = l.activation.is_relu_family();
            l.gain / if relu { std::f64::consts::SQRT_2 } else { 1.0 }
        })
        .product()
}

fn init_too_small(e: &Evidence, s: &Symptoms) -> Option<(Cause, Vec<String>)> {
    let gain = compound_gain(e);
    let last = hidden(e).last()?;
    (s.stalled && gain < TINY_GAIN).then(|| {
        (
            Cause::InitTooSmall,
            vec![
                format!(
                    "the weights of the {} hidden layer(s) scale the signal by {gain:.1e} in all \
                     (He or Xavier init keep it about 1)",
                    hidden(e).len()
                ),
                format!(
                    "layer {}'s outputs have rms {:.2e}",
                    last.layer, last.output_rms
                ),
                loss_figures(e),
            ],
        )
    })
}

fn lr_too_high(e: &Evidence, s: &Symptoms) -> Option<(Cause, Vec<String>)> {
    let (wild, epoch) = e.wildest_update;
    if wild <= WILD_UPDATE && !s.rose {
        return None;
    }
    let mut evidence = Vec::new();
    if wild > WILD_UPDATE {
        evidence.push(format!(
            "an update in epoch {epoch} changed a layer's weights by {} of their size (about 0.1% \
             is healthy)",
            pct(wild)
        ));
    }
    if s.rose {
        evidence.push(loss_figures(e));
    }
    if let Some(d) = s.dead {
        evidence.push(format!(
            "{} of layer {}'s ReLU units died in those updates",
            pct(d.dead.unwrap_or(0.0)),
            d.layer
        ));
    }
    Some((Cause::LrTooHigh, evidence))
}

fn dead_evidence(d: &LayerFigures) -> String {
    format!(
        "{} of layer {}'s ReLU units output 0 on every sample of a batch",
        pct(d.dead.unwrap_or(0.0)),
        d.layer
    )
}

fn bias_kills_relu(_: &Evidence, s: &Symptoms) -> Option<(Cause, Vec<String>)> {
    let d = s.dead.filter(|d| d.bias_mean < -0.1)?;
    Some((
        Cause::BiasKillsRelu,
        vec![
            dead_evidence(d),
            format!("its biases average {:.3}", d.bias_mean),
        ],
    ))
}

fn dead_units(_: &Evidence, s: &Symptoms) -> Option<(Cause, Vec<String>)> {
    Some((Cause::DeadUnits, vec![dead_evidence(s.dead?)]))
}

fn init_too_large(e: &Evidence, s: &Symptoms) -> Option<(Cause, Vec<String>)> {
    let l = s.saturated?;
    Some((
        Cause::InitTooLarge,
        vec![
            format!(
                "{} of layer {}'s {} outputs are within 1% of their limits (gradient ~0)",
                pct(l.saturated.unwrap_or(0.0)),
                l.layer,
                l.activation.name()
            ),
            format!(
                "its weights have rms·√fan_in = {:.2} (Xavier init gives about 1)",
                l.gain
            ),
            format!("inputs stay within |x| <= {:.2}", e.input_max),
        ],
    ))
}

fn lr_too_low(e: &Evidence, s: &Symptoms) -> Option<(Cause, Vec<String>)> {
    let largest = e.layers.iter().map(|l| l.update_ratio).fold(0.0, f64::max);
    (s.stalled && largest < TIMID_UPDATE).then(|| {
        (
            Cause::LrTooLow,
            vec![
                format!(
                    "an update changes the weights by at most {largest:.1e} of their size (about \
                     1e-3 is healthy)"
                ),
                loss_figures(e),
            ],
        )
    })
}

fn nothing_to_learn(e: &Evidence, s: &Symptoms) -> Option<(Cause, Vec<String>)> {
    let h = e.held_out.as_ref().filter(|_| s.held_out_at_chance)?;
    let k = e.classes?;
    let largest = e.layers.iter().map(|l| l.update_ratio).fold(0.0, f64::max);
    Some((
        Cause::NothingToLearn,
        vec![
            format!(
                "{} accuracy {} after {} epochs, chance is {} (loss {:.4}, chance {:.4})",
                h.name,
                pct(h.accuracy.unwrap_or(0.0)),
                e.epoch,
                pct(1.0 / k as f64),
                h.loss,
                (k as f64).ln()
            ),
            format!(
                "training loss {:.4} from {:.4}, while the gradients flow (updates {largest:.1e} \
                 of the weights' size) and no unit is dead or saturated",
                e.loss, e.start_loss
            ),
        ],
    ))
}

fn not_learning(e: &Evidence, s: &Symptoms) -> Option<(Cause, Vec<String>)> {
    s.stalled
        .then(|| (Cause::NotLearning, vec![loss_figures(e)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Activation;

    /// A 2-layer ReLU classifier after 500 steps, healthy in every figure.
    fn healthy() -> Evidence {
        let layer = |layer, activation| LayerFigures {
            layer,
            activation,
            gain: 1.4,
            bias_mean: 0.0,
            output_rms: 1.0,
            dead: Some(0.05),
            saturated: None,
            update_ratio: 1e-3,
        };
        Evidence {
            epoch: 5,
            steps: 500,
            lr: 0.1,
            loss: 0.3,
            previous_loss: Some(0.35),
            start_loss: 2.3,
            best_loss: 0.3,
            classes: Some(10),
            held_out: None,
            wildest_update: (2e-3, 1),
            layers: vec![layer(0, Activation::Relu), layer(1, Activation::Identity)],
            input_max: 2.8,
            target_range: None,
            output_range: None,
        }
    }

    fn cause(e: &Evidence) -> Option<Cause> {
        decide(e).map(|v| v.cause)
    }

    #[test]
    fn a_healthy_run_has_no_verdict() {
        assert_eq!(cause(&healthy()), None);
    }

    #[test]
    fn units_killed_by_a_wild_update_are_the_lrs_doing() {
        let mut e = healthy();
        e.layers[0].dead = Some(0.9);
        e.layers[0].bias_mean = -0.5;
        assert_eq!(cause(&e), Some(Cause::BiasKillsRelu));
        e.wildest_update = (0.8, 1);
        let v = decide(&e).unwrap();
        assert_eq!(v.cause, Cause::LrTooHigh);
        assert!(
            v.evidence.iter().any(|l| l.contains("90% of layer 0")),
            "{v:?}"
        );
        assert!(v.fix.contains("try 0.01"), "{}", v.fix);
    }

    #[test]
    fn a_rising_loss_outranks_a_stalled_one_and_tiny_updates() {
        let mut e = healthy();
        e.best_loss = 2.29;
        e.layers.iter_mut().for_each(|l| l.update_ratio = 1e-7);
        assert_eq!(cause(&e), Some(Cause::LrTooLow));
        e.loss = 3.5;
        e.previous_loss = Some(2.3);
        assert_eq!(cause(&e), Some(Cause::LrTooHigh));
    }

    #[test]
    fn a_small_rise_near_convergence_is_no_symptom() {
        let mut e = healthy();
        e.wildest_update = (0.3, 7);
        (e.previous_loss, e.loss, e.best_loss) = (Some(0.012), 0.015, 0.012);
        assert_eq!(cause(&e), None);
    }

    #[test]
    fn unreachable_targets_are_named_at_once_and_early_symptoms_wait() {
        let mut e = healthy();
        e.steps = 10;
        e.best_loss = 2.3;
        assert_eq!(cause(&e), None, "too early to judge a stall");
        e.output_range = Some((0.0, 1.0, "sigmoid"));
        e.target_range = Some((0.0, 1.0));
        assert_eq!(cause(&e), None);
        e.target_range = Some((-0.5, 1.0));
        assert_eq!(cause(&e), Some(Cause::TargetsOutOfRange));
    }
}
