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
//! - [`output`]: console, metrics files, plots, checkpoints, as observers of the loop;
//! - [`commands`] on top, with [`cli`] holding only the command line's definitions.

// Links OpenBLAS (its `system` build, found with pkg-config).
extern crate blas_src;

pub mod atomic;
pub mod cli;
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
