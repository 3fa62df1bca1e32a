//! When a run ends: the stopping rules over the history, so that a resumed run decides
//! exactly as an uninterrupted one.

use super::record::{EpochRecord, Monitor};

#[derive(Clone, Debug, PartialEq)]
pub struct StopRules {
    /// Total epochs of the run (a resumed run counts the epochs already done).
    pub epochs: usize,
    pub target_accuracy: Option<f64>,
    pub target_loss: Option<f64>,
    pub patience: Option<usize>,
    pub min_delta: f64,
    pub monitor: Monitor,
}

impl StopRules {
    pub fn epochs(epochs: usize) -> Self {
        StopRules {
            epochs,
            target_accuracy: None,
            target_loss: None,
            patience: None,
            min_delta: 0.0,
            monitor: Monitor::Test,
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
