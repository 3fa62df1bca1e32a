//! The commands behind the command line, one file each: [`train`], [`eval`], [`predict`],
//! [`gradcheck`], [`bench`](mod@bench), [`export`], [`lr_find`], [`trace`]; [`experiment`] assembles a run
//! from a config for all of them.

pub mod bench;
pub mod distributed;
pub mod eval;
// Moved below the commands so the library API shares it; the old path stays.
pub use crate::api::experiment;
pub mod export;
pub mod gradcheck;
pub mod interrupt;
pub mod lr_find;
pub mod predict;
pub mod trace;
pub mod train;

use crate::cli::{Cli, Command, TrainArgs};
use crate::compute::dist::{self, Collective, Single};
use anyhow::Result;

/// Exit statuses beyond 0 (success), 1 (error) and 2 (usage).
pub mod exit {
    pub const ERROR: i32 = 1;
    pub const DIVERGED: i32 = 3;
    pub const GRADCHECK_FAILED: i32 = 4;
    /// `backprop trace --compare`: a tensor differs.
    pub const TRACE_DIFFERS: i32 = 5;
    /// 128 + SIGINT, as shells report a Ctrl-C.
    pub const INTERRUPTED: i32 = 130;
}

/// Parses the command line, runs, and returns the exit status.
pub fn main() -> i32 {
    let cli = <Cli as clap::Parser>::parse();
    let mode = match &cli.command {
        None | Some(Command::Train(_)) => interrupt::Mode::Train,
        Some(Command::Bench(_)) => interrupt::Mode::Bench,
        Some(_) => interrupt::Mode::Immediate,
    };
    match &cli.command {
        None => require_config(&cli.train),
        Some(Command::Train(a)) => require_config(a),
        Some(Command::Bench(a)) => require_config(&a.train),
        _ => {}
    }
    let interrupt = interrupt::install(mode);
    // Under an MPI launcher a training run is one rank of a job (kept to the end of `main`:
    // dropping it finalises MPI).
    let team: Box<dyn Collective> = match mode {
        interrupt::Mode::Train => match dist::init() {
            Ok(team) => team,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::ERROR;
            }
        },
        _ => Box::new(Single),
    };
    let result = match cli.command {
        None => train_on(&cli.train, interrupt, &*team),
        Some(Command::Train(args)) => train_on(&args, interrupt, &*team),
        Some(Command::Eval(args)) => eval::run(&args),
        Some(Command::Predict(args)) => predict::run(&args),
        Some(Command::Gradcheck(args)) => gradcheck::run(&args),
        Some(Command::Bench(args)) => bench::run(&args, interrupt),
        Some(Command::Export(args)) => export::run(&args),
        Some(Command::LrFind(args)) => lr_find::run(&args),
        Some(Command::Trace(args)) => trace::run(&args),
    };
    match result {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::ERROR
        }
    }
}

/// One process trains as ever; a rank of a larger job trains its share.
fn train_on(
    args: &TrainArgs,
    interrupt: &'static std::sync::atomic::AtomicBool,
    team: &dyn Collective,
) -> Result<i32> {
    match team.size() {
        1 => train::run(args, interrupt),
        _ => distributed::run(args, interrupt, team),
    }
}

/// A run needs a config (or a checkpoint holding one): without, it is a usage error (exit
/// status 2, with the usage), not a failed run.
fn require_config(args: &TrainArgs) {
    if args.config.is_none() && args.resume.is_none() {
        <Cli as clap::CommandFactory>::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--config FILE is required (or --resume CHECKPOINT, which holds its config)",
            )
            .exit();
    }
}

fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// The run's thread pool (see [`crate::api::experiment::thread_pool`]), with a warning when
/// it has more threads than the machine.
fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    let hardware = crate::compute::hardware_threads();
    if threads > hardware {
        crate::output::console::warn(&format!(
            "{threads} threads on {hardware} hardware thread(s): oversubscribed, each product \
             runs slower than with {hardware}"
        ));
    }
    crate::api::experiment::thread_pool(threads)
}
