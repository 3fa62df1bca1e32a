//! From the config's sections to the domain types they describe.

use super::sections::{ActivationName, Config, InitName, ScheduleKind};
use crate::model::{Activation, Init, Loss};
use crate::optim::schedule::{OneCycle, Schedule, Shape};
use crate::optim::{Hyper, OptimizerKind};

fn activation(name: ActivationName, slope: f32) -> Activation {
    match name {
        ActivationName::Relu => Activation::Relu,
        ActivationName::LeakyRelu => Activation::LeakyRelu { slope },
        ActivationName::Sigmoid => Activation::Sigmoid,
        ActivationName::Tanh => Activation::Tanh,
        ActivationName::Identity => Activation::Identity,
        ActivationName::Silu => Activation::Silu,
    }
}

impl Config {
    pub fn hidden_activations(&self) -> Vec<Activation> {
        let m = &self.model;
        (0..m.hidden.len())
            .map(|i| {
                let name = m.activations.as_ref().map_or(m.activation, |a| a[i]);
                activation(name, m.leaky_slope)
            })
            .collect()
    }

    pub fn output_activation(&self) -> Activation {
        match self.model.output_activation {
            Some(name) if self.model.loss == Loss::MeanSquaredError => {
                activation(name, self.model.leaky_slope)
            }
            _ => Activation::Identity,
        }
    }

    pub fn init(&self) -> Init {
        let m = &self.model;
        match m.init {
            InitName::Auto => Init::Auto,
            InitName::HeNormal => Init::HeNormal,
            InitName::HeUniform => Init::HeUniform,
            InitName::XavierNormal => Init::XavierNormal,
            InitName::XavierUniform => Init::XavierUniform,
            InitName::Uniform => Init::Uniform {
                limit: m.init_limit.unwrap_or(0.0),
            },
            InitName::Normal => Init::Normal {
                std: m.init_std.unwrap_or(0.0),
            },
        }
    }

    pub fn hyper(&self) -> Hyper {
        let o = &self.optimizer;
        Hyper {
            kind: o.kind,
            momentum: o.momentum,
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
            decay_biases: o.decay_biases,
        }
    }

    pub fn schedule(&self) -> Schedule {
        let s = &self.schedule;
        let shape = match s.kind {
            ScheduleKind::Constant => Shape::Constant,
            ScheduleKind::Step => Shape::Step {
                every: s.every.unwrap_or(10),
                factor: s.factor.unwrap_or(0.1),
            },
            ScheduleKind::Exponential => Shape::Exponential {
                factor: s.factor.unwrap_or(0.95),
            },
            ScheduleKind::Cosine => Shape::Cosine {
                epochs: s
                    .epochs
                    .unwrap_or(self.train.epochs.saturating_sub(s.warmup_epochs))
                    .max(1),
                floor: s.min_lr,
            },
            ScheduleKind::OneCycle => {
                let kind = self.optimizer.kind;
                let cycles = matches!(kind, OptimizerKind::Momentum | OptimizerKind::Nesterov);
                Shape::OneCycle(OneCycle {
                    max_lr: s.max_lr.unwrap_or(self.optimizer.lr),
                    pct_start: s.pct_start,
                    div: s.div,
                    final_div: s.final_div,
                    momentum: (s.cycle_momentum && cycles)
                        .then_some((s.base_momentum, s.max_momentum)),
                    epochs: self.train.epochs,
                })
            }
        };
        Schedule {
            base_lr: self.optimizer.lr,
            warmup: s.warmup_epochs,
            shape,
            per_step: s.per_step,
        }
    }
}
