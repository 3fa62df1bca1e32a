//! The per-epoch metrics files, JSON lines and CSV, each rewritten whole (atomically) after
//! every epoch so that a reader never sees half a file.

use crate::atomic;
use crate::train::{EpochRecord, Observer, TrainState};
use std::path::{Path, PathBuf};

/// Writes the history as JSON lines after each epoch.
pub struct JsonLines(pub PathBuf);

impl Observer for JsonLines {
    fn epoch_end(&mut self, state: &TrainState, _: &EpochRecord) -> anyhow::Result<()> {
        write_json_lines(&self.0, &state.history)
    }
}

/// Writes the history as CSV after each epoch.
pub struct Csv(pub PathBuf);

impl Observer for Csv {
    fn epoch_end(&mut self, state: &TrainState, _: &EpochRecord) -> anyhow::Result<()> {
        write_csv(&self.0, &state.history)
    }
}

/// The whole history as JSON lines: one object per epoch.
pub fn write_json_lines(path: &Path, history: &[EpochRecord]) -> anyhow::Result<()> {
    let mut text = String::new();
    for r in history {
        text += &serde_json::to_string(r)?;
        text.push('\n');
    }
    atomic::write(path, text.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write metrics {}: {e}", path.display()))
}

pub const CSV_HEADER: &str =
    "epoch,lr,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc,seconds,eval_seconds,samples_per_sec,elapsed,time_to_98";

/// A float as every file of a run prints it: serde_json's shortest round-trip form (the
/// checkpoint's history, the JSON lines and the CSV agree digit for digit).
pub fn num<T: serde::Serialize + std::fmt::Display + Copy>(v: T) -> String {
    match serde_json::to_string(&v) {
        // JSON has no NaN (it writes `null`); a CSV cell keeps the word.
        Ok(text) if text != "null" => text,
        _ => v.to_string(),
    }
}

/// The whole history as CSV.
pub fn write_csv(path: &Path, history: &[EpochRecord]) -> anyhow::Result<()> {
    let opt = |v: Option<f64>| v.map_or(String::new(), num);
    atomic::write_with(path, |out| {
        writeln!(out, "{CSV_HEADER}")?;
        for r in history {
            writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.epoch,
                num(r.lr),
                num(r.train_loss),
                opt(r.train_acc),
                opt(r.val_loss),
                opt(r.val_acc),
                num(r.test_loss),
                opt(r.test_acc),
                num(r.seconds),
                num(r.eval_seconds),
                num(r.samples_per_sec),
                num(r.elapsed),
                opt(r.time_to_98)
            )?;
        }
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("cannot write metrics {}: {e}", path.display()))
}
