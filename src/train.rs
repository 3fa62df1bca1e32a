//! The training loop. [`StepBuffers::step`] is the hot path: gather a minibatch, forward,
//! backward, update, with every buffer allocated up front. [`Trainer::fit`] runs epochs
//! around it: shuffling, evaluation, stopping rules, interruption and divergence.

use crate::data::{gather, Batcher, Dataset, InputTransform, TargetBuffer};
use crate::diagnostics::{Diagnostics, Probe};
use crate::eval::{Evaluator, Subset};
use crate::loss::Score;
use crate::net::{accumulate_gradients, Activations, Deltas, Network, TensorInfo};
use crate::optim::{Fusion, Optimizer};
use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The data a run trains and evaluates on.
#[derive(Clone, Copy)]
pub struct Sets<'a> {
    pub train: &'a Dataset,
    /// Samples of `train` used for training (the rest of a validation split is held out).
    pub train_indices: &'a [usize],
    /// Samples of `train` held out for validation (may be empty).
    pub validation: &'a [usize],
    pub test: &'a Dataset,
    pub transform: &'a InputTransform,
}

/// Buffers for one minibatch: inputs and activations, deltas, targets, gradients.
pub struct StepBuffers {
    pub acts: Activations,
    pub deltas: Deltas,
    pub targets: TargetBuffer,
    pub grads: Vec<f32>,
}

impl StepBuffers {
    pub fn new(net: &Network, data: &Dataset, batch_size: usize) -> Self {
        StepBuffers {
            acts: Activations::new(&net.arch, batch_size),
            deltas: Deltas::new(&net.arch, batch_size),
            targets: TargetBuffer::for_dataset(data, batch_size),
            grads: vec![0.0; net.params.len()],
        }
    }

    /// Gathers `batch`, runs the forward pass and fills every layer's delta.
    fn forward_and_deltas(
        &mut self,
        net: &Network,
        data: &Dataset,
        transform: &InputTransform,
        batch: &[usize],
    ) -> Score {
        let n = batch.len();
        let x = self.acts.input_mut(n);
        gather(data, transform, batch, x, &mut self.targets);
        net.forward(&mut self.acts, n);
        net.backward_deltas(&self.acts, &mut self.deltas, self.targets.view(n), n)
    }

    /// Computes the gradient of the batch-mean loss over `batch` into `self.grads`.
    pub fn gradients(
        &mut self,
        net: &Network,
        data: &Dataset,
        transform: &InputTransform,
        batch: &[usize],
    ) -> Score {
        let score = self.forward_and_deltas(net, data, transform, batch);
        let (acts, deltas, n) = (&self.acts, &self.deltas, batch.len());
        accumulate_gradients(&net.tensors, acts, deltas, n, &mut self.grads, |_| {
            (1.0, 0.0)
        });
        score
    }

    /// One training step. Performs no heap allocation.
    pub fn step(
        &mut self,
        net: &mut Network,
        optimizer: &mut Optimizer,
        data: &Dataset,
        transform: &InputTransform,
        batch: &[usize],
        lr: f32,
    ) -> Score {
        self.step_with(
            optimizer.fusion(),
            net,
            optimizer,
            data,
            transform,
            batch,
            lr,
        )
    }

    /// One step with the update folded in as `fusion` says; `Fusion::None` leaves the
    /// gradients in `self.grads` (for probes that read them).
    #[allow(clippy::too_many_arguments)]
    pub fn step_with(
        &mut self,
        fusion: Fusion,
        net: &mut Network,
        optimizer: &mut Optimizer,
        data: &Dataset,
        transform: &InputTransform,
        batch: &[usize],
        lr: f32,
    ) -> Score {
        let score = self.forward_and_deltas(net, data, transform, batch);
        let n = batch.len();
        let hyper = optimizer.hyper;
        let fused = |t: &TensorInfo| Optimizer::fused_coefficients(&hyper, lr, t);
        let (acts, deltas) = (&self.acts, &self.deltas);
        match fusion {
            Fusion::None => {
                accumulate_gradients(&net.tensors, acts, deltas, n, &mut self.grads, |_| {
                    (1.0, 0.0)
                });
                optimizer.step(lr, &mut net.params, &self.grads);
            }
            Fusion::Params => {
                accumulate_gradients(&net.tensors, acts, deltas, n, &mut net.params, fused);
                optimizer.finish_fused(lr, &mut net.params);
            }
            Fusion::Velocity => {
                accumulate_gradients(
                    &net.tensors,
                    acts,
                    deltas,
                    n,
                    optimizer.velocity_mut(),
                    fused,
                );
                optimizer.finish_fused(lr, &mut net.params);
            }
        }
        score
    }
}

/// One epoch's figures, as printed and as written to the metrics files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub lr: f32,
    pub train_loss: f64,
    pub train_acc: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_acc: Option<f64>,
    pub test_loss: f64,
    pub test_acc: Option<f64>,
    /// Training loop only: shuffle, gather, forward, backward, update.
    pub seconds: f64,
    pub eval_seconds: f64,
    pub samples_per_sec: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
}

impl EpochRecord {
    /// The held-out figures that stopping rules watch.
    pub fn monitored(&self, monitor: Monitored) -> (f64, Option<f64>) {
        match monitor {
            Monitored::Validation => (self.val_loss.unwrap_or(f64::NAN), self.val_acc),
            Monitored::Test => (self.test_loss, self.test_acc),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Monitored {
    Validation,
    Test,
}

impl Monitored {
    pub fn name(&self) -> &'static str {
        match self {
            Monitored::Validation => "validation",
            Monitored::Test => "test",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct StopRules {
    /// Total epochs of the run (a resumed run counts the epochs already done).
    pub epochs: usize,
    pub target_accuracy: Option<f64>,
    pub target_loss: Option<f64>,
    pub patience: Option<usize>,
    pub min_delta: f64,
    pub monitor: Monitored,
}

impl StopRules {
    pub fn epochs(epochs: usize) -> Self {
        StopRules {
            epochs,
            target_accuracy: None,
            target_loss: None,
            patience: None,
            min_delta: 0.0,
            monitor: Monitored::Test,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum StopReason {
    EpochsDone,
    TargetAccuracy {
        accuracy: f64,
    },
    TargetLoss {
        loss: f64,
    },
    Patience {
        best_epoch: usize,
    },
    Interrupted {
        epoch: usize,
        batches_done: usize,
    },
    Diverged {
        epoch: usize,
        batch: usize,
        detail: String,
    },
}

/// What a checkpoint holds: the model, the optimizer and the epochs done so far.
#[derive(Clone, Debug)]
pub struct TrainState {
    pub net: Network,
    pub optimizer: Optimizer,
    pub history: Vec<EpochRecord>,
}

impl TrainState {
    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }
}

/// Told about progress; may stop the run by returning an error from `epoch_end`.
pub trait Observer {
    fn epoch_start(&mut self, _epoch: usize, _samples: usize, _lr: f32) {}
    fn batch(&mut self, _samples_done: usize, _running: &Score) {}
    fn epoch_end(&mut self, _state: &TrainState, _record: &EpochRecord) -> anyhow::Result<()> {
        Ok(())
    }
}

/// An observer that does nothing (tests, benchmarks).
pub struct Silent;
impl Observer for Silent {}

pub struct Trainer {
    pub state: TrainState,
    pub schedule: Schedule,
    pub rules: StopRules,
    pub seed: u64,
    work: StepBuffers,
    batcher: Batcher,
    test_eval: Evaluator,
    validation_eval: Evaluator,
    /// The state at the start of the current epoch, restored when an epoch is abandoned.
    snapshot: (Vec<f32>, Vec<Vec<f32>>, u64),
    probe: Option<Probe>,
}

pub struct TrainerOptions {
    pub batch_size: usize,
    pub drop_last: bool,
    pub eval_chunk: usize,
    pub diagnostics_every: Option<usize>,
}

impl Trainer {
    pub fn new(
        state: TrainState,
        schedule: Schedule,
        rules: StopRules,
        seed: u64,
        sets: Sets,
        options: &TrainerOptions,
    ) -> Self {
        let net = &state.net;
        let batch = options.batch_size.min(sets.train_indices.len()).max(1);
        Trainer {
            work: StepBuffers::new(net, sets.train, batch),
            batcher: Batcher::new(sets.train_indices.to_vec(), batch, options.drop_last),
            test_eval: Evaluator::new(net, sets.test, options.eval_chunk),
            validation_eval: Evaluator::new(net, sets.train, options.eval_chunk),
            snapshot: (
                net.params.clone(),
                state.optimizer.state.clone(),
                state.optimizer.steps,
            ),
            probe: options
                .diagnostics_every
                .map(|every| Probe::new(net, every)),
            state,
            schedule,
            rules,
            seed,
        }
    }

    pub fn batch_size(&self) -> usize {
        self.batcher.batch_size()
    }

    fn save_snapshot(&mut self) {
        let (params, opt, steps) = &mut self.snapshot;
        params.copy_from_slice(&self.state.net.params);
        for (s, o) in opt.iter_mut().zip(&self.state.optimizer.state) {
            s.copy_from_slice(o);
        }
        *steps = self.state.optimizer.steps;
    }

    fn restore_snapshot(&mut self) {
        let (params, opt, steps) = &self.snapshot;
        self.state.net.params.copy_from_slice(params);
        for (o, s) in self.state.optimizer.state.iter_mut().zip(opt) {
            o.copy_from_slice(s);
        }
        self.state.optimizer.steps = *steps;
    }

    /// Trains until a stopping rule fires, `interrupt` is raised, or the loss diverges.
    /// After an interruption or divergence, `state` is the last completed epoch's.
    pub fn fit(
        &mut self,
        sets: Sets,
        observer: &mut dyn Observer,
        interrupt: &AtomicBool,
    ) -> anyhow::Result<StopReason> {
        while self.state.epochs_done() < self.rules.epochs {
            let epoch = self.state.epochs_done();
            let lr = self.schedule.lr(epoch);
            self.save_snapshot();
            self.batcher.shuffle(self.seed, epoch);
            observer.epoch_start(epoch + 1, self.batcher.samples(), lr);
            let started = Instant::now();
            let outcome = self.train_epoch(sets, epoch, lr, observer, interrupt);
            let running = match outcome {
                Ok(running) => running,
                Err(reason) => {
                    self.restore_snapshot();
                    return Ok(reason);
                }
            };
            let seconds = started.elapsed().as_secs_f64();
            let record = self.finish_epoch(sets, epoch, lr, running, seconds);
            self.state.history.push(record.clone());
            observer.epoch_end(&self.state, &record)?;
            if let Some(reason) = self.should_stop() {
                return Ok(reason);
            }
        }
        Ok(StopReason::EpochsDone)
    }

    /// The minibatches of one epoch; an `Err` ends the run (interrupt or divergence).
    fn train_epoch(
        &mut self,
        sets: Sets,
        epoch: usize,
        lr: f32,
        observer: &mut dyn Observer,
        interrupt: &AtomicBool,
    ) -> Result<Score, StopReason> {
        let Trainer {
            state,
            work,
            batcher,
            probe,
            ..
        } = self;
        let mut running = Score::default();
        for (b, batch) in batcher.batches().enumerate() {
            let mut probe = probe.as_mut().filter(|p| p.due(b));
            if let Some(p) = probe.as_mut() {
                p.before_step(&state.net);
            }
            // Probes read the gradient buffer, which a fused step does not fill.
            let fusion = if probe.is_some() {
                Fusion::None
            } else {
                state.optimizer.fusion()
            };
            let score = work.step_with(
                fusion,
                &mut state.net,
                &mut state.optimizer,
                sets.train,
                sets.transform,
                batch,
                lr,
            );
            if let Some(p) = probe {
                p.after_step(&state.net, work, batch.len());
            }
            if !score.loss_sum.is_finite() {
                let detail = crate::diagnostics::describe_divergence(
                    &state.net,
                    &work.grads,
                    score.loss_sum,
                );
                return Err(StopReason::Diverged {
                    epoch: epoch + 1,
                    batch: b + 1,
                    detail,
                });
            }
            running.add(score);
            observer.batch(running.samples, &running);
            if interrupt.load(Ordering::Relaxed) {
                return Err(StopReason::Interrupted {
                    epoch: epoch + 1,
                    batches_done: b + 1,
                });
            }
        }
        // A last update can leave non-finite weights behind a finite loss.
        if !state.net.params.iter().all(|p| p.is_finite()) {
            let detail = crate::diagnostics::describe_divergence(&state.net, &work.grads, f64::NAN);
            return Err(StopReason::Diverged {
                epoch: epoch + 1,
                batch: batcher.batch_count(),
                detail,
            });
        }
        Ok(running)
    }

    fn finish_epoch(
        &mut self,
        sets: Sets,
        epoch: usize,
        lr: f32,
        running: Score,
        seconds: f64,
    ) -> EpochRecord {
        let eval_started = Instant::now();
        let net = &self.state.net;
        let validation = (!sets.validation.is_empty()).then(|| {
            self.validation_eval.score(
                net,
                sets.train,
                sets.transform,
                Subset::Only(sets.validation),
            )
        });
        let test = self
            .test_eval
            .score(net, sets.test, sets.transform, Subset::All);
        EpochRecord {
            epoch: epoch + 1,
            lr,
            train_loss: running.mean_loss(),
            train_acc: running.accuracy(),
            val_loss: validation.map(|s| s.mean_loss()),
            val_acc: validation.and_then(|s| s.accuracy()),
            test_loss: test.mean_loss(),
            test_acc: test.accuracy(),
            seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
            samples_per_sec: running.samples as f64 / seconds.max(1e-12),
            diagnostics: self.probe.as_mut().map(Probe::take_epoch),
        }
    }

    /// Stopping rules over the history (so a resumed run decides exactly as an uninterrupted one).
    fn should_stop(&self) -> Option<StopReason> {
        stop_reason(&self.state.history, &self.rules)
    }
}

/// Which rule, if any, ends a run with this history.
pub fn stop_reason(history: &[EpochRecord], rules: &StopRules) -> Option<StopReason> {
    let last = history.last()?;
    let (loss, acc) = last.monitored(rules.monitor);
    if let (Some(target), Some(acc)) = (rules.target_accuracy, acc) {
        if acc >= target {
            return Some(StopReason::TargetAccuracy { accuracy: acc });
        }
    }
    if let Some(target) = rules.target_loss {
        if loss <= target {
            return Some(StopReason::TargetLoss { loss });
        }
    }
    if let Some(patience) = rules.patience {
        let mut best = f64::INFINITY;
        let mut best_epoch = 0;
        for r in history {
            let (l, _) = r.monitored(rules.monitor);
            if l < best - rules.min_delta {
                best = l;
                best_epoch = r.epoch;
            }
        }
        if last.epoch - best_epoch >= patience {
            return Some(StopReason::Patience { best_epoch });
        }
    }
    if history.len() >= rules.epochs {
        return Some(StopReason::EpochsDone);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, loss: f64, acc: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            test_loss: loss,
            test_acc: Some(acc),
            ..EpochRecord::default()
        }
    }

    #[test]
    fn stopping_rules() {
        let mut rules = StopRules::epochs(10);
        let h = vec![record(1, 1.0, 0.5), record(2, 0.5, 0.8)];
        assert_eq!(stop_reason(&h, &rules), None);
        rules.target_accuracy = Some(0.8);
        assert_eq!(
            stop_reason(&h, &rules),
            Some(StopReason::TargetAccuracy { accuracy: 0.8 })
        );
        rules.target_accuracy = None;
        rules.target_loss = Some(0.6);
        assert!(matches!(
            stop_reason(&h, &rules),
            Some(StopReason::TargetLoss { .. })
        ));
        rules.target_loss = None;
        rules.patience = Some(2);
        let mut h2 = h.clone();
        h2.push(record(3, 0.6, 0.8));
        assert_eq!(stop_reason(&h2, &rules), None);
        h2.push(record(4, 0.55, 0.8));
        assert_eq!(
            stop_reason(&h2, &rules),
            Some(StopReason::Patience { best_epoch: 2 })
        );
        assert_eq!(
            stop_reason(&h2, &StopRules::epochs(4)),
            Some(StopReason::EpochsDone)
        );
    }
}
