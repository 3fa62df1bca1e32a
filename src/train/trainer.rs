//! The loop around the step ([`super::step`]): epochs, each a fresh seeded shuffle of
//! minibatches, then evaluation, the stopping rules, interruption and divergence.

use super::distributed;
use super::evaluate::{Evaluator, Subset};
use super::probe::{describe_divergence, Probe};
use super::record::{EpochRecord, Observer, TrainState};
use super::step::{Batch, StepBuffers};
use super::stop::{stop_reason, StopReason, StopRules};
use crate::compute::awake::with_workers_awake_if;
use crate::compute::blas;
use crate::compute::dist::{Collective, Single};
use crate::data::{Batcher, Dataset, InputTransform};
use crate::model::Score;
use crate::optim::schedule::Schedule;
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

pub struct TrainerOptions {
    pub batch_size: usize,
    pub drop_last: bool,
    pub eval_chunk: usize,
    pub diagnostics_every: Option<usize>,
    /// Label smoothing of the training loss (0 for none).
    pub label_smoothing: f32,
    /// Dropout rate per hidden layer (empty or zeros for none).
    pub dropout: Vec<f32>,
    /// Training loss weight per class (empty for none).
    pub class_weights: Vec<f32>,
}

impl TrainerOptions {
    /// The step's buffers for batches of up to `batch` samples of `data`, applying the
    /// options' label smoothing, class weights and dropout (masks from `seed`).
    pub fn step_buffers(
        &self,
        state: &TrainState,
        data: &Dataset,
        batch: usize,
        seed: u64,
    ) -> StepBuffers {
        let gradient_buffer =
            self.diagnostics_every.is_some() || !state.optimizer.hyper.kind.fuses();
        StepBuffers::new(&state.net, data, batch, gradient_buffer)
            .with_label_smoothing(self.label_smoothing)
            .with_class_weights(self.class_weights.clone())
            .with_dropout(&state.net, &self.dropout, seed)
    }
}

/// Every buffer of a run, allocated here and nowhere else: the step's, the evaluators', the
/// epoch snapshot and the probe's. (The optimizer's state vectors belong to the model state.)
struct Workspace {
    step: StepBuffers,
    batcher: Batcher,
    test_eval: Evaluator,
    validation_eval: Evaluator,
    /// The state at the start of the current epoch, restored when an epoch is abandoned.
    snapshot: (Vec<f32>, Vec<Vec<f32>>, u64),
    probe: Option<Probe>,
}

impl Workspace {
    fn new(state: &TrainState, sets: Sets, options: &TrainerOptions, seed: u64) -> Self {
        let net = &state.net;
        let batch = options.batch_size.min(sets.train_indices.len()).max(1);
        let probe = options
            .diagnostics_every
            .map(|every| Probe::new(net, every));
        Workspace {
            step: options.step_buffers(state, sets.train, batch, seed),
            batcher: Batcher::new(sets.train_indices.to_vec(), batch, options.drop_last),
            test_eval: Evaluator::new(net, sets.test, options.eval_chunk),
            validation_eval: Evaluator::new(net, sets.train, options.eval_chunk),
            snapshot: (
                net.params.clone(),
                state.optimizer.state.clone(),
                state.optimizer.steps,
            ),
            probe,
        }
    }
}

pub struct Trainer {
    pub state: TrainState,
    pub schedule: Schedule,
    pub rules: StopRules,
    pub seed: u64,
    work: Workspace,
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
        Trainer {
            work: Workspace::new(&state, sets, options, seed),
            state,
            schedule,
            rules,
            seed,
        }
    }

    pub fn batch_size(&self) -> usize {
        self.work.batcher.batch_size()
    }

    /// Whether a step hands work to other threads: its largest product is cut between them.
    /// (An activation pass splits from 4K elements, so a layer fed by under 32 inputs can
    /// split one without a cut product beside it; that pass then wakes a sleeping worker.)
    fn steps_share_work(&self) -> bool {
        blas::cuts(self.state.net.arch.largest_product(self.batch_size()))
    }

    fn save_snapshot(&mut self) {
        let (params, opt, steps) = &mut self.work.snapshot;
        params.copy_from_slice(&self.state.net.params);
        for (s, o) in opt.iter_mut().zip(&self.state.optimizer.state) {
            s.copy_from_slice(o);
        }
        *steps = self.state.optimizer.steps;
    }

    fn restore_snapshot(&mut self) {
        let (params, opt, steps) = &self.work.snapshot;
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
        self.fit_on(sets, observer, interrupt, &Single)
    }

    /// As [`Trainer::fit`], as one rank of `team` (see [`distributed`]): call it on every
    /// rank, from the thread that started the team; only rank 0's observer should write.
    pub fn fit_on(
        &mut self,
        sets: Sets,
        observer: &mut dyn Observer,
        interrupt: &AtomicBool,
        team: &dyn Collective,
    ) -> anyhow::Result<StopReason> {
        if team.size() > 1 {
            // The unfused path: the summed gradient must exist before the update.
            self.work
                .step
                .grads
                .resize(self.state.net.params.len(), 0.0);
        }
        while self.state.epochs_done() < self.rules.epochs {
            let epoch = self.state.epochs_done();
            self.save_snapshot();
            self.work.batcher.shuffle(self.seed, epoch);
            let steps = self.work.batcher.batch_count();
            let first = self.schedule.at(epoch, 0, steps);
            observer.epoch_start(epoch + 1, self.work.batcher.samples(), first.lr);
            let started = Instant::now();
            let mut running = Score::default();
            let poll = team.size() == 1 && self.steps_share_work();
            let batches =
                || self.train_batches(sets, epoch, observer, interrupt, team, &mut running);
            // Alone, the other workers poll through the epoch: a step hands them work every
            // few microseconds, too often to sleep and be woken each time. (MPI ranks may
            // share cores: there they sleep.)
            let trained = with_workers_awake_if(poll, batches);
            if let Err(reason) = trained.and_then(|()| self.check_finite(epoch)) {
                self.restore_snapshot();
                return Ok(reason);
            }
            let seconds = started.elapsed().as_secs_f64();
            // The lr (and momentum) of the epoch's last step.
            let last = self.schedule.at(epoch, steps.saturating_sub(1), steps);
            distributed::check_replicas(team, &self.state, epoch + 1)?;
            let mut record = self.finish_epoch(sets, epoch, last.lr, running, seconds, team);
            record.momentum = last.momentum;
            record.continue_timings(self.state.history.last());
            self.state.history.push(record.clone());
            let written = observer.epoch_end(&self.state, &record);
            distributed::agree(team, "writing the epoch's outputs", written)?;
            if let Some(reason) = stop_reason(&self.state.history, &self.rules) {
                return Ok(reason);
            }
        }
        Ok(StopReason::EpochsDone)
    }

    /// A last update can leave non-finite weights behind a finite loss.
    fn check_finite(&self, epoch: usize) -> Result<(), StopReason> {
        let net = &self.state.net;
        if net.params.iter().all(|p| p.is_finite()) {
            return Ok(());
        }
        Err(StopReason::Diverged {
            epoch: epoch + 1,
            batch: self.work.batcher.batch_count(),
            detail: describe_divergence(net, None, f64::NAN),
        })
    }

    /// Steps through the epoch's minibatches, adding each one's score to `running`; an `Err`
    /// ends the run (interrupt or divergence).
    fn train_batches(
        &mut self,
        sets: Sets,
        epoch: usize,
        observer: &mut dyn Observer,
        interrupt: &AtomicBool,
        team: &dyn Collective,
        running: &mut Score,
    ) -> Result<(), StopReason> {
        let Trainer {
            state,
            work,
            schedule,
            ..
        } = self;
        let steps = work.batcher.batch_count();
        for (b, indices) in work.batcher.batches().enumerate() {
            let point = schedule.at(epoch, b, steps);
            if let Some(momentum) = point.momentum {
                state.optimizer.hyper.momentum = momentum;
            }
            let batch = Batch {
                data: sets.train,
                transform: sets.transform,
                indices,
            };
            let mut probe = work.probe.as_mut().filter(|p| p.due(b));
            if let Some(p) = probe.as_mut() {
                p.before_step(&state.net);
            }
            let (net, opt) = (&mut state.net, &mut state.optimizer);
            let (score, rows, stop) = if team.size() > 1 {
                // Every rank stops at the same step: the flags are summed with the scores.
                let stop = interrupt.load(Ordering::Relaxed);
                distributed::step(team, &mut work.step, net, opt, batch, point.lr, stop)
            } else {
                let score = work.step.step(net, opt, batch, point.lr, probe.is_some());
                (score, indices.len(), interrupt.load(Ordering::Relaxed))
            };
            if !score.loss_sum.is_finite() {
                // The step left the weights as they were: the gradient named is this
                // batch's, recomputed. (Allocated once; the run is ending.)
                let mut grads = vec![0.0; state.net.params.len()];
                work.step.gradient(&state.net, batch, &mut grads);
                return Err(StopReason::Diverged {
                    epoch: epoch + 1,
                    batch: b + 1,
                    detail: describe_divergence(&state.net, Some(&grads), score.loss_sum),
                });
            }
            if let Some(p) = probe {
                let (grads, acts) = (&work.step.grads, &work.step.acts);
                p.after_step(&state.net, grads, acts, rows, score.mean_loss());
            }
            running.add(score);
            observer.batch(running.samples, running);
            if stop {
                return Err(StopReason::Interrupted {
                    epoch: epoch + 1,
                    batches_done: b + 1,
                });
            }
        }
        Ok(())
    }

    fn finish_epoch(
        &mut self,
        sets: Sets,
        epoch: usize,
        lr: f32,
        running: Score,
        seconds: f64,
        team: &dyn Collective,
    ) -> EpochRecord {
        let eval_started = Instant::now();
        let (net, work) = (&self.state.net, &mut self.work);
        let validation = (!sets.validation.is_empty()).then(|| {
            let subset = Subset::Only(sets.validation);
            let eval = &mut work.validation_eval;
            distributed::score(team, eval, net, sets.train, sets.transform, subset)
        });
        let eval = &mut work.test_eval;
        let test = distributed::score(team, eval, net, sets.test, sets.transform, Subset::All);
        EpochRecord {
            epoch: epoch + 1,
            lr,
            momentum: None,
            train_loss: running.mean_loss(),
            train_acc: running.accuracy(),
            val_loss: validation.map(|s| s.mean_loss()),
            val_acc: validation.and_then(|s| s.accuracy()),
            test_loss: test.mean_loss(),
            test_acc: test.accuracy(),
            seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
            samples_per_sec: running.samples as f64 / seconds.max(1e-12),
            diagnostics: work.probe.as_mut().map(Probe::take_epoch),
            elapsed: 0.0,
            time_to_98: None,
        }
    }
}
