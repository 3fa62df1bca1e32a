//! Learning-rate schedules, evaluated once per epoch (0-based).
//!
//! With `warmup` epochs W, epoch `e < W` uses `lr (e + 1) / (W + 1)`; the schedule proper then
//! starts at `t = e - W`:
//! - constant:    `lr`
//! - step:        `lr * factor^floor(t / every)`
//! - exponential: `lr * factor^t`
//! - cosine:      `floor + (lr - floor) (1 + cos(π t / T)) / 2` for `t < T`, then `floor`

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Shape {
    Constant,
    Step { every: usize, factor: f32 },
    Exponential { factor: f32 },
    Cosine { epochs: usize, floor: f32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub base_lr: f32,
    pub warmup: usize,
    pub shape: Shape,
}

impl Schedule {
    pub fn constant(lr: f32) -> Self {
        Schedule {
            base_lr: lr,
            warmup: 0,
            shape: Shape::Constant,
        }
    }

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
                    let progress = t as f64 / epochs as f64;
                    floor + (base - floor) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
                }
            }
        };
        lr as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(s: Schedule, n: usize) -> Vec<f32> {
        (0..n).map(|e| s.lr(e)).collect()
    }

    #[test]
    fn constant_step_and_exponential_sequences() {
        assert_eq!(sequence(Schedule::constant(0.1), 3), [0.1, 0.1, 0.1]);
        let step = Schedule {
            base_lr: 1.0,
            warmup: 0,
            shape: Shape::Step {
                every: 2,
                factor: 0.5,
            },
        };
        assert_eq!(sequence(step, 6), [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
        let exp = Schedule {
            base_lr: 2.0,
            warmup: 0,
            shape: Shape::Exponential { factor: 0.5 },
        };
        assert_eq!(sequence(exp, 4), [2.0, 1.0, 0.5, 0.25]);
    }

    #[test]
    fn cosine_reaches_its_floor_and_stays() {
        let cos = Schedule {
            base_lr: 1.0,
            warmup: 0,
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
            shape: Shape::Step {
                every: 1,
                factor: 0.5,
            },
        };
        assert_eq!(sequence(s, 6), [0.1, 0.2, 0.3, 0.4, 0.2, 0.1]);
    }
}
