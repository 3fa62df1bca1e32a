//! TensorBoard logs of a run: per epoch the loss and accuracy of each set (`loss/train`,
//! `accuracy/test`, ...) and the learning rate (`lr`), and at the start the run's config as
//! text. Each record reaches the file whole in one write, so TensorBoard can read the run
//! while it trains.

pub mod events;
pub mod proto;

use crate::train::{EpochRecord, Observer, TrainState};
use anyhow::{Context, Result};
pub use events::EventWriter;
use std::path::Path;

/// Writes one run's event file under a TensorBoard log folder.
pub struct TensorBoard {
    writer: EventWriter,
}

impl TensorBoard {
    /// Starts a run folder named after `run_name` inside `dir` (`-2`, `-3`, ... if taken) and
    /// records `config` (TOML) as the `config` text at step 0.
    pub fn create(dir: &Path, run_name: &str, config: &str) -> Result<Self> {
        let writer = EventWriter::create(dir, run_name)
            .with_context(|| format!("cannot create TensorBoard log in {}", dir.display()))?;
        let mut tb = TensorBoard { writer };
        // The text tab renders Markdown: a code block shows the TOML as written.
        let text = format!("```toml\n{config}```\n");
        tb.checked(|w| w.text("config", 0, &text))?;
        Ok(tb)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    fn checked(&mut self, f: impl FnOnce(&mut EventWriter) -> std::io::Result<()>) -> Result<()> {
        f(&mut self.writer)
            .with_context(|| format!("cannot write TensorBoard log {}", self.path().display()))
    }
}

impl Observer for TensorBoard {
    fn epoch_end(&mut self, _: &TrainState, r: &EpochRecord) -> Result<()> {
        let step = r.epoch as i64;
        let figures = [
            ("loss/train", Some(r.train_loss)),
            ("accuracy/train", r.train_acc),
            ("loss/validation", r.val_loss),
            ("accuracy/validation", r.val_acc),
            ("loss/test", Some(r.test_loss)),
            ("accuracy/test", r.test_acc),
            ("lr", Some(f64::from(r.lr))),
            ("momentum", r.momentum.map(f64::from)),
        ];
        for (tag, value) in figures {
            if let Some(v) = value {
                self.checked(|w| w.scalar(tag, step, v as f32))?;
            }
        }
        Ok(())
    }

    fn run_end(&mut self) {
        // Every record is already in the file; this only forces it to disk.
        let _ = self.writer.flush();
    }
}
