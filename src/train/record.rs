//! What a run produces and tells: each epoch's record, the state a checkpoint holds, and the
//! observers that hear about progress.

use super::probe::Diagnostics;
use crate::model::{Network, Score};
use crate::optim::Optimizer;
use serde::{Deserialize, Serialize};

/// Which figures the stopping rules watch. `Test` is kept for reading old configs and for
/// runs without stop rules; a config whose stop rules would watch the test set is refused
/// (the test set never steers training).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    Validation,
    /// The training figures of the epoch (for data too small to hold out, such as XOR).
    Train,
    Test,
}

impl Monitor {
    pub fn name(&self) -> &'static str {
        match self {
            Monitor::Validation => "validation",
            Monitor::Train => "train",
            Monitor::Test => "test",
        }
    }
}

/// One epoch's figures, as printed and as written to the metrics files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// The lr of the epoch's last step.
    pub lr: f32,
    /// The momentum of the epoch's last step, where the schedule cycles it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f32>,
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
    /// Training seconds of the run up to the end of this epoch (evaluation excluded).
    #[serde(default)]
    pub elapsed: f64,
    /// Training seconds until the end of the first epoch at or above 98% test accuracy
    /// (once reached, every later record repeats it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_98: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
}

/// The test accuracy whose first epoch [`EpochRecord::time_to_98`] times.
pub const TIMED_ACCURACY: f64 = 0.98;

impl EpochRecord {
    /// Fills the run-level timings from the record before this one (`None` for the first).
    pub fn continue_timings(&mut self, previous: Option<&EpochRecord>) {
        self.elapsed = previous.map_or(0.0, |p| p.elapsed) + self.seconds;
        let reached = self.test_acc.is_some_and(|a| a >= TIMED_ACCURACY);
        self.time_to_98 = previous
            .and_then(|p| p.time_to_98)
            .or(reached.then_some(self.elapsed));
    }

    /// The held-out figures that stopping rules watch.
    pub fn monitored(&self, monitor: Monitor) -> (f64, Option<f64>) {
        match monitor {
            Monitor::Validation => (self.val_loss.unwrap_or(f64::NAN), self.val_acc),
            Monitor::Train => (self.train_loss, self.train_acc),
            Monitor::Test => (self.test_loss, self.test_acc),
        }
    }
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
    /// The run ended, however it ended.
    fn run_end(&mut self) {}
}

/// An observer that does nothing (tests, benchmarks).
pub struct Silent;
impl Observer for Silent {}

/// Several observers told in turn, in order; the first error stops the run.
#[derive(Default)]
pub struct Observers<'a>(pub Vec<Box<dyn Observer + Send + 'a>>);

impl Observer for Observers<'_> {
    fn epoch_start(&mut self, epoch: usize, samples: usize, lr: f32) {
        self.0
            .iter_mut()
            .for_each(|o| o.epoch_start(epoch, samples, lr));
    }

    fn batch(&mut self, samples_done: usize, running: &Score) {
        self.0
            .iter_mut()
            .for_each(|o| o.batch(samples_done, running));
    }

    fn epoch_end(&mut self, state: &TrainState, record: &EpochRecord) -> anyhow::Result<()> {
        self.0
            .iter_mut()
            .try_for_each(|o| o.epoch_end(state, record))
    }

    fn run_end(&mut self) {
        self.0.iter_mut().for_each(|o| o.run_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_to_98_is_the_elapsed_training_time_of_the_first_epoch_there() {
        let record = |seconds, acc| EpochRecord {
            seconds,
            test_acc: Some(acc),
            ..EpochRecord::default()
        };
        let mut history: Vec<EpochRecord> = Vec::new();
        for (seconds, acc) in [(2.0, 0.97), (1.5, 0.981), (1.0, 0.979), (1.0, 0.985)] {
            let mut r = record(seconds, acc);
            r.continue_timings(history.last());
            history.push(r);
        }
        let elapsed: Vec<f64> = history.iter().map(|r| r.elapsed).collect();
        assert_eq!(elapsed, [2.0, 3.5, 4.5, 5.5]);
        let timed: Vec<Option<f64>> = history.iter().map(|r| r.time_to_98).collect();
        assert_eq!(timed, [None, Some(3.5), Some(3.5), Some(3.5)]);
    }
}
