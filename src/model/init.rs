//! Weight initialisation. The default follows the layer's activation: He for the ReLU family
//! (keeps the forward variance so ReLUs neither die nor explode), Xavier/Glorot for sigmoid,
//! tanh and identity (keeps them out of saturation).

use super::activation::Activation;
use rand::RngExt;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Init {
    Auto,
    HeNormal,
    HeUniform,
    XavierNormal,
    XavierUniform,
    Uniform { limit: f32 },
    Normal { std: f32 },
}

enum Draw {
    Normal(f32),
    Uniform(f32),
}

impl Init {
    pub fn name(&self) -> &'static str {
        match self {
            Init::Auto => "auto",
            Init::HeNormal => "he_normal",
            Init::HeUniform => "he_uniform",
            Init::XavierNormal => "xavier_normal",
            Init::XavierUniform => "xavier_uniform",
            Init::Uniform { .. } => "uniform",
            Init::Normal { .. } => "normal",
        }
    }

    /// The concrete scheme `Auto` stands for with this activation.
    pub fn resolve(self, activation: Activation) -> Init {
        match self {
            Init::Auto if activation.is_relu_family() => Init::HeNormal,
            Init::Auto => Init::XavierUniform,
            other => other,
        }
    }

    fn draw(self, activation: Activation, fan_in: usize, fan_out: usize) -> Draw {
        // He's gain for leaky ReLU: 2 / (1 + slope^2).
        let gain = match activation {
            Activation::LeakyRelu { slope } => 2.0 / (1.0 + slope * slope),
            _ => 2.0,
        };
        let (fan_in, fan_out) = (fan_in as f32, fan_out as f32);
        match self.resolve(activation) {
            Init::HeNormal => Draw::Normal((gain / fan_in).sqrt()),
            Init::HeUniform => Draw::Uniform((3.0 * gain / fan_in).sqrt()),
            Init::XavierNormal => Draw::Normal((2.0 / (fan_in + fan_out)).sqrt()),
            Init::XavierUniform => Draw::Uniform((6.0 / (fan_in + fan_out)).sqrt()),
            Init::Uniform { limit } => Draw::Uniform(limit),
            Init::Normal { std } => Draw::Normal(std),
            Init::Auto => unreachable!("resolved above"),
        }
    }

    /// Fills a `fan_in x fan_out` weight matrix.
    pub fn fill(
        self,
        activation: Activation,
        weights: &mut [f32],
        fan_in: usize,
        fan_out: usize,
        rng: &mut crate::compute::rng::Rng,
    ) {
        match self.draw(activation, fan_in, fan_out) {
            Draw::Normal(std) if std > 0.0 => {
                let dist = Normal::new(0.0f32, std).expect("std is positive and finite");
                weights.iter_mut().for_each(|w| *w = dist.sample(rng));
            }
            Draw::Uniform(limit) if limit > 0.0 => {
                let dist = Uniform::new_inclusive(-limit, limit).expect("limit is positive");
                weights.iter_mut().for_each(|w| *w = rng.sample(dist));
            }
            _ => weights.fill(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(init: Init, act: Activation, fan_in: usize, fan_out: usize) -> (f64, f64, f32) {
        let mut w = vec![0.0f32; fan_in * fan_out];
        init.fill(
            act,
            &mut w,
            fan_in,
            fan_out,
            &mut crate::compute::rng::stream(1, crate::compute::rng::Stream::Init, 0),
        );
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = w
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        (mean, var.sqrt(), max)
    }

    #[test]
    fn schemes_have_their_textbook_spread() {
        let relu = Activation::Relu;
        let (m, s, _) = moments(Init::HeNormal, relu, 784, 300);
        assert!(
            m.abs() < 1e-3 && (s - (2.0f64 / 784.0).sqrt()).abs() < 1e-3,
            "{m} {s}"
        );
        let (_, s, max) = moments(Init::HeUniform, relu, 784, 300);
        let limit = (6.0f32 / 784.0).sqrt();
        assert!(max <= limit && (s - f64::from(limit) / 3f64.sqrt()).abs() < 1e-3);
        let (_, s, max) = moments(Init::XavierUniform, Activation::Tanh, 300, 100);
        let limit = (6.0f32 / 400.0).sqrt();
        assert!(max <= limit && (s - f64::from(limit) / 3f64.sqrt()).abs() < 1e-3);
        let (_, s, _) = moments(Init::XavierNormal, Activation::Sigmoid, 300, 100);
        assert!((s - (2.0f64 / 400.0).sqrt()).abs() < 1e-3);
        let (_, s, _) = moments(Init::Normal { std: 0.01 }, relu, 300, 100);
        assert!((s - 0.01).abs() < 1e-3);
        let (_, _, max) = moments(Init::Uniform { limit: 0.5 }, relu, 30, 10);
        assert!(max <= 0.5 && max > 0.45);
    }

    #[test]
    fn auto_follows_the_activation() {
        assert_eq!(Init::Auto.resolve(Activation::Relu), Init::HeNormal);
        assert_eq!(
            Init::Auto.resolve(Activation::LeakyRelu { slope: 0.1 }),
            Init::HeNormal
        );
        assert_eq!(Init::Auto.resolve(Activation::Sigmoid), Init::XavierUniform);
        assert_eq!(Init::Auto.resolve(Activation::Tanh), Init::XavierUniform);
    }
}
