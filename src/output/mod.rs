//! Everything a run writes or shows: the console ([`console`]: progress, epoch lines,
//! warnings) and what the probes mean ([`diagnosis`]), metrics files ([`metrics`]),
//! learning-curve plots ([`plot`]), checkpoints ([`checkpoint`]), regression fits
//! ([`predictions`]), TensorBoard event files ([`tensorboard`]) and ONNX models ([`onnx`]);
//! [`plan`] checks every output path before a run writes any. The per-epoch writers are
//! [`crate::train::Observer`]s, so a new log format is one new
//! observer.

pub mod checkpoint;
#[cfg(feature = "cli")]
pub mod console;
pub mod diagnosis;
pub mod metrics;
pub mod onnx;
pub mod plan;
#[cfg(feature = "cli")]
pub mod plot;
pub mod predictions;
pub mod tensorboard;
