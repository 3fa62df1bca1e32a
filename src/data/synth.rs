//! Generated datasets for the classic hand-written-backprop exercises: a noisy sine to fit
//! and XOR. Seeded, so a config describes its data completely.

use super::dataset::{float_dataset, Dataset, TargetData};
use crate::compute::rng;
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// `[data.sine]`: `y = sin(x)` on a uniform grid of x, with uniform noise on the training
/// targets.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SineConfig {
    pub train_samples: usize,
    pub test_samples: usize,
    pub x_min: f32,
    pub x_max: f32,
    /// Half-width of the uniform noise added to training targets.
    pub noise: f32,
}

impl Default for SineConfig {
    fn default() -> Self {
        SineConfig {
            train_samples: 1000,
            test_samples: 200,
            x_min: 0.0,
            x_max: 4.0 * std::f32::consts::PI,
            noise: 0.1,
        }
    }
}

/// `[data.tanh]`: seed 001's "identity" exercise, `y = tanh(x)` for `x ~ N(0, 1)`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TanhConfig {
    pub train_samples: usize,
    /// Points of the test grid, evenly spaced over [-3, 3].
    pub test_samples: usize,
}

impl Default for TanhConfig {
    fn default() -> Self {
        TanhConfig {
            train_samples: 10_000,
            test_samples: 61,
        }
    }
}

/// `[data.xor]`: the four XOR points with inputs at `low` and `high`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct XorConfig {
    pub low: f32,
    pub high: f32,
}

impl Default for XorConfig {
    fn default() -> Self {
        XorConfig {
            low: -1.0,
            high: 1.0,
        }
    }
}

/// Training: `x ~ N(0, 1)`, `y = tanh x` (noiseless). Test: `tanh` on an evenly spaced grid
/// over [-3, 3], ends included (with 61 points, every tenth: -2 among them).
pub fn tanh(cfg: &TanhConfig, seed: u64) -> (Dataset, Dataset) {
    let mut rng = rng::stream(seed, rng::Stream::Data, 0);
    let xs: Vec<f32> = (0..cfg.train_samples)
        .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal))
        .collect();
    let ys: Vec<f32> = xs.iter().map(|x| x.tanh()).collect();
    let step = 6.0 / (cfg.test_samples - 1) as f32;
    let grid: Vec<f32> = (0..cfg.test_samples)
        .map(|i| -3.0 + step * i as f32)
        .collect();
    let truth: Vec<f32> = grid.iter().map(|x| x.tanh()).collect();
    let values = |values| TargetData::Values { values, width: 1 };
    (
        float_dataset("tanh (generated, x ~ N(0, 1))", xs, 1, values(ys)),
        float_dataset("tanh (grid over [-3, 3])", grid, 1, values(truth)),
    )
}

/// Training: `x ~ U[x_min, x_max]`, `y = sin x + U(-noise, noise)`. Test: the noiseless sine
/// on an evenly spaced grid over the same range, ends included.
pub fn sine(cfg: &SineConfig, seed: u64) -> (Dataset, Dataset) {
    let mut rng = rng::stream(seed, rng::Stream::Data, 0);
    let xs: Vec<f32> = (0..cfg.train_samples)
        .map(|_| rng.random_range(cfg.x_min..=cfg.x_max))
        .collect();
    let ys: Vec<f32> = xs
        .iter()
        .map(|x| {
            let noise = if cfg.noise > 0.0 {
                rng.random_range(-cfg.noise..=cfg.noise)
            } else {
                0.0
            };
            x.sin() + noise
        })
        .collect();
    let step = (cfg.x_max - cfg.x_min) / (cfg.test_samples - 1) as f32;
    let grid: Vec<f32> = (0..cfg.test_samples)
        .map(|i| cfg.x_min + step * i as f32)
        .collect();
    let truth: Vec<f32> = grid.iter().map(|x| x.sin()).collect();
    let values = |values| TargetData::Values { values, width: 1 };
    (
        float_dataset("sine (generated, noisy)", xs, 1, values(ys)),
        float_dataset("sine (noiseless grid)", grid, 1, values(truth)),
    )
}

/// The four XOR cases, inputs 0/1, targets `low`/`high`; the test set is the same four.
pub fn xor(cfg: &XorConfig) -> (Dataset, Dataset) {
    let make = || {
        let inputs = vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let targets = vec![cfg.low, cfg.high, cfg.high, cfg.low];
        float_dataset(
            "xor",
            inputs,
            2,
            TargetData::Values {
                values: targets,
                width: 1,
            },
        )
    };
    (make(), make())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_draws_standard_normal_inputs_and_grids_the_test() {
        let cfg = TanhConfig::default();
        let (train, test) = tanh(&cfg, 7);
        let x = |d: &Dataset, i| {
            let mut x = [0.0];
            d.raw_features(i, &mut x);
            x[0]
        };
        let xs: Vec<f32> = (0..train.len()).map(|i| x(&train, i)).collect();
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / xs.len() as f32;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        assert_eq!(train.values(5)[0], xs[5].tanh());
        assert_eq!((x(&test, 0), x(&test, 60)), (-3.0, 3.0));
        assert!((x(&test, 10) + 2.0).abs() < 1e-6);
    }

    #[test]
    fn sine_is_seeded_noisy_in_range_and_its_grid_is_exact() {
        let cfg: SineConfig = toml::from_str("").unwrap();
        let (train, test) = sine(&cfg, 1);
        assert_eq!((train.len(), test.len()), (1000, 200));
        let mut x = [0.0];
        let mut max_noise = 0.0f32;
        for i in 0..train.len() {
            train.raw_features(i, &mut x);
            assert!((0.0..=cfg.x_max).contains(&x[0]));
            let noise = (train.values(i)[0] - x[0].sin()).abs();
            assert!(noise <= 0.1 + 1e-6);
            max_noise = max_noise.max(noise);
        }
        assert!(max_noise > 0.09, "noise is really there");
        test.raw_features(199, &mut x);
        assert!((x[0] - cfg.x_max).abs() < 1e-5);
        assert_eq!(test.values(199)[0], x[0].sin());
        let (again, _) = sine(&cfg, 1);
        again.raw_features(5, &mut x);
        let mut y = [0.0];
        train.raw_features(5, &mut y);
        assert_eq!(x, y);
    }
}
