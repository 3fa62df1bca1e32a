//! Generated datasets for the classic hand-written-backprop exercises: a noisy sine to fit
//! and XOR. Seeded, so a config describes its data completely.

use crate::config::{SineConfig, XorConfig};
use crate::data::{float_dataset, Dataset, TargetData};
use crate::rng;
use rand::RngExt;

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
