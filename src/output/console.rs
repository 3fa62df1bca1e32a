//! What a run tells its user on the console: a progress bar per epoch (stderr, only on a
//! terminal), one summary line per epoch (stdout), and warnings (stderr).

use super::diagnosis;
use crate::model::Score;
use crate::train::{DataFacts, EpochRecord, Observer, TrainState};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Whether stderr may carry colour: a terminal, and `NO_COLOR` unset.
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Warnings held back instead of printed, while `Some` (see [`hold_warnings`]).
static HELD: std::sync::Mutex<Option<Vec<String>>> = std::sync::Mutex::new(None);

/// From now on [`warn`] keeps its messages for [`release_warnings`] (a distributed run's
/// setup, whose warnings rank 0 prints once for every rank).
pub fn hold_warnings() {
    *HELD.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
}

/// The warnings held since [`hold_warnings`]; [`warn`] prints again from now on.
pub fn release_warnings() -> Vec<String> {
    let held = HELD.lock().unwrap_or_else(|e| e.into_inner()).take();
    held.unwrap_or_default()
}

pub fn warn(message: &str) {
    if let Some(held) = HELD.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        return held.push(message.to_string());
    }
    if color_allowed() {
        eprintln!("\x1b[33mwarning:\x1b[0m {message}");
    } else {
        eprintln!("warning: {message}");
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!(" acc {:.2}%", 100.0 * v))
}

/// Seconds for people: `2.31s`, `12.4ms`, `85us`.
pub fn duration(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2}s")
    } else if seconds >= 1e-3 {
        format!("{:.1}ms", seconds * 1e3)
    } else {
        format!("{:.0}us", seconds * 1e6)
    }
}

/// The summary line of an epoch.
pub fn epoch_line(r: &EpochRecord, total_epochs: usize) -> String {
    let width = total_epochs.to_string().len();
    let mut line = format!(
        "epoch {:>width$}/{total_epochs}  lr {:.4}  train loss {:.4}{}",
        r.epoch,
        r.lr,
        r.train_loss,
        pct(r.train_acc)
    );
    if let Some(v) = r.val_loss {
        line += &format!("  val loss {v:.4}{}", pct(r.val_acc));
    }
    line += &format!(
        "  test loss {:.4}{}  {} ({:.0} samples/s) + eval {}",
        r.test_loss,
        pct(r.test_acc),
        duration(r.seconds),
        r.samples_per_sec,
        duration(r.eval_seconds)
    );
    line
}

/// Samples per second for the progress bar, whole: `36089/s`.
pub fn rate(per_sec: f64) -> String {
    format!("{per_sec:.0}/s")
}

/// The progress bar of the running epoch.
pub struct Progress {
    bar: Option<ProgressBar>,
    last_message: Instant,
    total_epochs: usize,
}

impl Progress {
    pub fn new(quiet: bool, total_epochs: usize) -> Self {
        let show = !quiet && std::io::stderr().is_terminal();
        Progress {
            bar: show.then(ProgressBar::hidden),
            last_message: Instant::now(),
            total_epochs,
        }
    }

    pub fn start(&mut self, epoch: usize, samples: usize) {
        if self.bar.is_none() {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(samples as u64), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "epoch {prefix} [{bar:28}] {pos}/{len} {msg} {rate} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", rate(state.per_sec()));
            },
        )
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("{epoch}/{}", self.total_epochs));
        self.bar = Some(bar);
    }

    pub fn update(&mut self, samples_done: usize, running: &Score) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(samples_done as u64);
        // Formatting allocates: do it a few times a second, not per batch.
        if self.last_message.elapsed() >= Duration::from_millis(200) {
            self.last_message = Instant::now();
            bar.set_message(format!(
                "loss {:.4}{}",
                running.mean_loss(),
                pct(running.accuracy())
            ));
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The console during training: the progress bar, one line per epoch, the per-layer
/// diagnostics when asked for, and the diagnosis whenever its cause changes.
pub struct Console {
    progress: Progress,
    quiet: bool,
    total_epochs: usize,
    show_diagnostics: bool,
    facts: DataFacts,
    /// The cause last reported: the same verdict is not repeated every epoch.
    reported: Option<diagnosis::Cause>,
}

impl Console {
    pub fn new(quiet: bool, total_epochs: usize, show_diagnostics: bool) -> Self {
        Console {
            progress: Progress::new(quiet, total_epochs),
            quiet,
            total_epochs,
            show_diagnostics,
            facts: DataFacts::default(),
            reported: None,
        }
    }

    /// The training data's figures, which the diagnosis weighs.
    pub fn with_facts(mut self, facts: DataFacts) -> Self {
        self.facts = facts;
        self
    }
}

impl Observer for Console {
    fn epoch_start(&mut self, epoch: usize, samples: usize, _lr: f32) {
        self.progress.start(epoch, samples);
    }

    fn batch(&mut self, samples_done: usize, running: &Score) {
        self.progress.update(samples_done, running);
    }

    fn epoch_end(&mut self, state: &TrainState, record: &EpochRecord) -> anyhow::Result<()> {
        self.progress.finish();
        if !self.quiet {
            println!("{}", epoch_line(record, self.total_epochs));
            if let (true, Some(d)) = (self.show_diagnostics, &record.diagnostics) {
                diagnosis::lines(d).iter().for_each(|l| println!("{l}"));
            }
        }
        let steps = state.optimizer.steps;
        let verdict = diagnosis::verdict(&state.history, &state.net, steps, &self.facts);
        if let Some(v) = verdict.filter(|v| self.reported != Some(v.cause)) {
            self.reported = Some(v.cause);
            warn(&v.line());
        }
        Ok(())
    }

    fn run_end(&mut self) {
        self.progress.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rates_are_whole_samples_per_second() {
        assert_eq!(rate(36_089.481_3), "36089/s");
    }

    #[test]
    fn epoch_line_shows_train_and_test_figures() {
        let r = EpochRecord {
            epoch: 3,
            lr: 0.05,
            train_loss: 0.07123,
            train_acc: Some(0.97851),
            test_loss: 0.08,
            test_acc: Some(0.9752),
            seconds: 2.31,
            eval_seconds: 0.12,
            samples_per_sec: 25974.0,
            ..EpochRecord::default()
        };
        assert_eq!(
            epoch_line(&r, 10),
            "epoch  3/10  lr 0.0500  train loss 0.0712 acc 97.85%  test loss 0.0800 acc 97.52%  \
             2.31s (25974 samples/s) + eval 120.0ms"
        );
    }
}
