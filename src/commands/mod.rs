//! The commands behind the command line, one file each: [`train`], [`eval`], [`predict`],
//! [`gradcheck`], [`bench`], [`export`]; [`experiment`] assembles a run from a config for
//! all of them.

pub mod bench;
pub mod eval;
// Moved below the commands so the library API shares it; the old path stays.
pub use crate::api::experiment;
pub mod export;
pub mod gradcheck;
pub mod interrupt;
pub mod predict;
pub mod train;

use crate::api::experiment::thread_pool;
use crate::cli::{Cli, Command};

/// Exit statuses beyond 0 (success), 1 (error) and 2 (usage).
pub mod exit {
    pub const ERROR: i32 = 1;
    pub const DIVERGED: i32 = 3;
    pub const GRADCHECK_FAILED: i32 = 4;
    /// 128 + SIGINT, as shells report a Ctrl-C.
    pub const INTERRUPTED: i32 = 130;
}

/// Parses the command line, runs, and returns the exit status.
pub fn main() -> i32 {
    let cli = <Cli as clap::Parser>::parse();
    let interrupt = interrupt::install();
    let result = match cli.command {
        None => train::run(&cli.train, interrupt),
        Some(Command::Train(args)) => train::run(&args, interrupt),
        Some(Command::Eval(args)) => eval::run(&args),
        Some(Command::Predict(args)) => predict::run(&args),
        Some(Command::Gradcheck(args)) => gradcheck::run(&args),
        Some(Command::Bench(args)) => bench::run(&args, interrupt),
        Some(Command::Export(args)) => export::run(&args),
    };
    match result {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::ERROR
        }
    }
}

fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}
