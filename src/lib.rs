//! `backprop`: fast, correct, reproducible training of multilayer perceptrons.
//!
//! The tree follows the data, each folder depending only on those listed before it:
//!
//! - [`compute`]: the `sgemm` door to OpenBLAS, elementwise passes, seeded random streams;
//! - [`model`]: architecture and parameter layout, forward and backward passes, activations,
//!   losses, initialisation;
//! - [`optim`]: one file per update rule, and the learning-rate schedule;
//! - [`data`]: IDX files (memory-mapped, `.gz` cached), CSV and generated data, the input
//!   transform, shuffled minibatches gathered in parallel;
//! - [`train`]: one step (gather -> forward -> backward -> update), the epoch loop, stopping
//!   rules, probes, evaluation passes;
//! - [`config`]: the TOML schema over the domain types, its checks and overrides;
//! - [`eval`]: reports, predictions, the gradient check, the benchmark floor;
//! - [`output`]: console, metrics files, plots, checkpoints, TensorBoard logs (observers of
//!   the loop), ONNX export;
//! - [`api`]: the library's front door, [`MlpBuilder`] and the trained [`Model`], and the run
//!   setup the command line shares;
//! - `commands` on top, with `cli` holding only the command line's definitions (both behind
//!   the default `cli` feature).
//!
//! ```
//! use backprop::{MlpBuilder, OptimizerKind};
//! use ndarray::Array2;
//!
//! // Is a point above the diagonal? Two classes, learned from 200 points.
//! let x = Array2::from_shape_fn((200, 2), |(i, j)| ((i * 7 + j * 13) % 20) as f32 / 20.0);
//! let y: Vec<u32> = x.rows().into_iter().map(|r| u32::from(r[1] > r[0])).collect();
//! let model = MlpBuilder::new()
//!     .hidden([16])
//!     .optimizer(OptimizerKind::Adam)
//!     .lr(0.02)
//!     .epochs(60)
//!     .batch_size(20)
//!     .threads(1)
//!     .fit_arrays(x.view(), &y)?;
//! let accuracy = model.history().last().unwrap().test_acc.unwrap();
//! assert!(accuracy > 0.9, "{accuracy}");
//! # Ok::<(), anyhow::Error>(())
//! ```

// Links OpenBLAS (its `system` build, found with pkg-config).
extern crate blas_src;

pub mod api;
pub mod atomic;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod commands;
pub mod compute;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod model;
pub mod optim;
pub mod output;
pub mod train;

pub use api::{ArrayTargets, Evaluation, MlpBuilder, Model};
pub use model::{Activation, Loss};
pub use optim::OptimizerKind;
