//! Learning-rate schedules, evaluated once per epoch (0-based), or at every step when
//! `per_step` is set (then `t` below runs through fractional epochs: step `s` of `S` in epoch
//! `e` is at `e + s / S`).
//!
//! With `warmup` epochs W, epoch `e < W` uses `lr (e + 1) / (W + 1)` (per step: `lr t' / W`
//! with `t'` the epochs done after the step); the schedule proper then starts at `t = e - W`:
//! - constant:    `lr`
//! - step:        `lr * factor^floor(t / every)`
//! - exponential: `lr * factor^t`
//! - cosine:      `floor + (lr - floor) (1 + cos(π t / T)) / 2` for `t < T`, then `floor`
//!
//! One-cycle (Smith and Topin; PyTorch's `OneCycleLR` with cosine annealing) is always per
//! step, over the whole run: from `max_lr / div` up to `max_lr` in the first `pct_start` of
//! the steps, then down to `max_lr / final_div`; the momentum, where it cycles, moves the
//! other way between `max_momentum` and `base_momentum`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Shape {
    Constant,
    Step { every: usize, factor: f32 },
    Exponential { factor: f32 },
    Cosine { epochs: usize, floor: f32 },
    OneCycle(OneCycle),
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneCycle {
    pub max_lr: f32,
    /// The fraction of the run spent rising to `max_lr`.
    pub pct_start: f32,
    /// The first lr is `max_lr / div`.
    pub div: f32,
    /// The last lr is `max_lr / final_div`.
    pub final_div: f32,
    /// `(base, max)`: momentum falls from max to base while the lr rises, and back.
    pub momentum: Option<(f32, f32)>,
    /// Epochs of the whole cycle.
    pub epochs: usize,
}

/// The learning rate (and, where it cycles, the momentum) at one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub lr: f32,
    pub momentum: Option<f32>,
}

/// `start` at `x = 0` to `end` at `x = 1`, along half a cosine.
fn cosine_between(start: f64, end: f64, x: f64) -> f64 {
    end + (start - end) * (1.0 + (std::f64::consts::PI * x.clamp(0.0, 1.0)).cos()) / 2.0
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub base_lr: f32,
    pub warmup: usize,
    pub shape: Shape,
    /// Evaluate at every step rather than once per epoch (one-cycle always is).
    #[serde(default)]
    pub per_step: bool,
}

impl Schedule {
    pub fn constant(lr: f32) -> Self {
        Schedule {
            base_lr: lr,
            warmup: 0,
            shape: Shape::Constant,
            per_step: false,
        }
    }

    /// The lr and momentum of step `step` (0-based) of epoch `epoch` (0-based), of `steps`
    /// steps per epoch.
    pub fn at(&self, epoch: usize, step: usize, steps: usize) -> Point {
        let steps = steps.max(1);
        if let Shape::OneCycle(c) = self.shape {
            return c.at(epoch * steps + step, c.epochs.max(1) * steps);
        }
        let lr = if self.per_step {
            self.lr_at((epoch * steps + step) as f64 / steps as f64, steps)
        } else {
            self.lr(epoch)
        };
        Point { lr, momentum: None }
    }

    /// Per step, at `t` fractional epochs from the start.
    fn lr_at(&self, t: f64, steps: usize) -> f32 {
        let base = f64::from(self.base_lr);
        let warmup = self.warmup as f64;
        if t < warmup {
            // Counting the step being taken, so the first step is not at lr 0.
            return (base * (t + 1.0 / steps as f64) / warmup) as f32;
        }
        let t = t - warmup;
        let lr = match self.shape {
            Shape::Constant => base,
            Shape::Step { every, factor } => {
                base * f64::from(factor).powi((t as usize / every.max(1)) as i32)
            }
            Shape::Exponential { factor } => base * f64::from(factor).powf(t),
            Shape::Cosine { epochs, floor } => {
                cosine_between(base, f64::from(floor), t / epochs.max(1) as f64)
            }
            Shape::OneCycle(_) => unreachable!("one-cycle is evaluated in `at`"),
        };
        lr as f32
    }

    /// Per epoch: the lr of epoch `epoch` (0-based).
    pub fn lr(&self, epoch: usize) -> f32 {
        let base = f64::from(self.base_lr);
        if epoch < self.warmup {
            return (base * (epoch + 1) as f64 / (self.warmup + 1) as f64) as f32;
        }
        let t = epoch - self.warmup;
        let lr = match self.shape {
            Shape::Constant => base,
            Shape::Step { every, factor } => {
                base * f64::from(factor).powi((t / every.max(1)) as i32)
            }
            Shape::Exponential { factor } => base * f64::from(factor).powi(t as i32),
            Shape::Cosine { epochs, floor } => {
                let floor = f64::from(floor);
                if t >= epochs {
                    floor
                } else {
                    cosine_between(base, floor, t as f64 / epochs as f64)
                }
            }
            Shape::OneCycle(c) => f64::from(c.at(epoch, c.epochs).lr),
        };
        lr as f32
    }
}

impl OneCycle {
    /// Step `step` of `total`.
    pub fn at(&self, step: usize, total: usize) -> Point {
        let max = f64::from(self.max_lr);
        let (start, end) = (max / f64::from(self.div), max / f64::from(self.final_div));
        // The peak is a step of its own; the last step reaches `end` (as PyTorch's).
        let last = total.saturating_sub(1).max(1) as f64;
        let peak = (f64::from(self.pct_start) * last).round().max(1.0);
        let x = step as f64;
        let (lr, rising) = if x <= peak {
            (cosine_between(start, max, x / peak), x / peak)
        } else {
            (
                cosine_between(max, end, (x - peak) / (last - peak).max(1.0)),
                0.0,
            )
        };
        let momentum = self.momentum.map(|(base, top)| {
            let (base, top) = (f64::from(base), f64::from(top));
            let m = if x <= peak {
                cosine_between(top, base, rising)
            } else {
                cosine_between(base, top, (x - peak) / (last - peak).max(1.0))
            };
            m as f32
        });
        Point {
            lr: lr as f32,
            momentum,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sequence(s: Schedule, n: usize) -> Vec<f32> {
        (0..n).map(|e| s.lr(e)).collect()
    }

    #[test]
    fn constant_step_and_exponential_sequences() {
        assert_eq!(sequence(Schedule::constant(0.1), 3), [0.1, 0.1, 0.1]);
        let step = Schedule {
            base_lr: 1.0,
            warmup: 0,
            per_step: false,
            shape: Shape::Step {
                every: 2,
                factor: 0.5,
            },
        };
        assert_eq!(sequence(step, 6), [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
        let exp = Schedule {
            base_lr: 2.0,
            warmup: 0,
            per_step: false,
            shape: Shape::Exponential { factor: 0.5 },
        };
        assert_eq!(sequence(exp, 4), [2.0, 1.0, 0.5, 0.25]);
    }

    #[test]
    fn cosine_reaches_its_floor_and_stays() {
        let cos = Schedule {
            base_lr: 1.0,
            warmup: 0,
            per_step: false,
            shape: Shape::Cosine {
                epochs: 4,
                floor: 0.2,
            },
        };
        let want = [
            1.0,
            0.2 + 0.8 * 0.853_553_4,
            0.6,
            0.2 + 0.8 * 0.146_446_6,
            0.2,
            0.2,
        ];
        for (got, want) in sequence(cos, 6).iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn warmup_ramps_linearly_before_any_shape() {
        let s = Schedule {
            base_lr: 0.4,
            warmup: 3,
            per_step: false,
            shape: Shape::Step {
                every: 1,
                factor: 0.5,
            },
        };
        assert_eq!(sequence(s, 6), [0.1, 0.2, 0.3, 0.4, 0.2, 0.1]);
    }

    fn one_cycle(momentum: Option<(f32, f32)>) -> Schedule {
        Schedule {
            base_lr: 0.1,
            warmup: 0,
            per_step: false,
            shape: Shape::OneCycle(OneCycle {
                max_lr: 1.0,
                pct_start: 0.25,
                div: 25.0,
                final_div: 1e4,
                momentum,
                epochs: 2,
            }),
        }
    }

    #[test]
    fn one_cycle_rises_to_max_lr_then_anneals_with_momentum_inverse() {
        // 2 epochs of 5 steps: 10 steps, the peak at round(0.25 * 9) = step 2.
        let s = one_cycle(Some((0.85, 0.95)));
        let at = |k: usize| s.at(k / 5, k % 5, 5);
        let close = |a: f32, b: f64| (f64::from(a) - b).abs() < 1e-6;
        assert!(close(at(0).lr, 1.0 / 25.0), "{:?}", at(0));
        assert!(close(at(1).lr, 0.04 + 0.96 * 0.5), "{:?}", at(1));
        assert!(close(at(2).lr, 1.0), "{:?}", at(2));
        assert!(close(at(9).lr, 1e-4), "{:?}", at(9));
        // Halfway down the 7 annealing steps (step 2 + 3.5): the mean of max and end.
        let down = |k: usize| 1e-4 + (1.0 - 1e-4) * (1.0 + (PI * (k - 2) as f64 / 7.0).cos()) / 2.0;
        for k in 3..10 {
            assert!(close(at(k).lr, down(k)), "step {k}: {:?}", at(k));
            assert!(at(k).lr < at(k - 1).lr, "annealing is monotone");
        }
        // Momentum: 0.95 at the start and the end, 0.85 at the peak.
        assert!(close(at(0).momentum.unwrap(), 0.95));
        assert!(close(at(2).momentum.unwrap(), 0.85));
        assert!(close(at(9).momentum.unwrap(), 0.95));
        assert!(close(at(1).momentum.unwrap(), 0.90));
        assert_eq!(one_cycle(None).at(0, 3, 5).momentum, None);
    }

    #[test]
    fn per_step_cosine_meets_the_per_epoch_values_at_epoch_starts() {
        let mut cos = Schedule {
            base_lr: 1.0,
            warmup: 0,
            per_step: false,
            shape: Shape::Cosine {
                epochs: 4,
                floor: 0.2,
            },
        };
        let per_epoch: Vec<f32> = (0..4).map(|e| cos.at(e, 7, 10).lr).collect();
        cos.per_step = true;
        for (e, want) in per_epoch.iter().enumerate() {
            let got = cos.at(e, 0, 10).lr;
            assert!((got - want).abs() < 1e-6, "epoch {e}: {got} vs {want}");
        }
        let steps: Vec<f32> = (0..40).map(|k| cos.at(k / 10, k % 10, 10).lr).collect();
        assert!(steps.windows(2).all(|w| w[1] < w[0]), "{steps:?}");
        // Per epoch the lr holds for the whole epoch.
        cos.per_step = false;
        assert_eq!(cos.at(1, 0, 10), cos.at(1, 9, 10));
    }

    #[test]
    fn per_step_warmup_ramps_within_epochs() {
        let s = Schedule {
            base_lr: 1.0,
            warmup: 2,
            per_step: true,
            shape: Shape::Constant,
        };
        let lrs: Vec<f32> = (0..5).map(|k| s.at(k / 2, k % 2, 2).lr).collect();
        assert_eq!(lrs, [0.25, 0.5, 0.75, 1.0, 1.0]);
    }
}
