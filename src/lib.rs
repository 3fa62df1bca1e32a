//! `backprop`: fast, correct, reproducible training of multilayer perceptrons.
//!
//! Data ([`idx`], [`cache`], [`data`], [`synth`], [`tabular`]) feeds minibatches into the
//! network ([`net`], [`activation`], [`loss`], [`init`]) whose products run on OpenBLAS
//! ([`blas`]); [`optim`] and [`schedule`] update it, [`train`] runs the loop, [`eval`],
//! [`report`], [`plot`], [`diagnostics`] and [`checkpoint`] surround it; [`config`],
//! [`setup`], [`app`] and [`cli`] tie it to a TOML file and a command line.

// Links OpenBLAS (its `system` build, found with pkg-config).
extern crate blas_src;

pub mod activation;
pub mod app;
pub mod atomic;
pub mod bench;
pub mod blas;
pub mod cache;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod diagnostics;
pub mod eval;
pub mod gradcheck;
pub mod idx;
pub mod init;
pub mod interrupt;
pub mod loss;
pub mod net;
pub mod optim;
pub mod parallel;
pub mod plot;
pub mod predict;
pub mod report;
pub mod rng;
pub mod schedule;
pub mod setup;
pub mod synth;
pub mod tabular;
pub mod train;
