//! `mpirun -np N backprop --config FILE`: one model trained on N ranks (see
//! [`crate::train::distributed`]). Every rank reads the config, the data and any checkpoint
//! itself; rank 0 alone prints and writes. A failure on any rank before or during training
//! ends every rank with a message naming it, never a hang.

use super::exit;
use super::experiment::{default_threads, Experiment};
use super::train::{announce, check_plan, finish, header, load_for_training};
use super::train::{observers, prepare, rescue};
use crate::cli::TrainArgs;
use crate::compute::dist::Collective;
use crate::output::console;
use crate::train::distributed::{agree, allreduce_time, checksum, fnv, unlike_rank_0, FNV_START};
use crate::train::{Observer, Observers, StopReason, TrainState};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Ranks on this host, as the launcher tells them (Open MPI, MPICH).
fn local_ranks() -> usize {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
        .unwrap_or(1usize)
        .max(1)
}

/// Rank 0 prints every rank's held warnings, each once (another rank's with its number).
fn share_warnings(team: &dyn Collective) {
    let mine = console::release_warnings();
    let mut seen = HashSet::new();
    for r in 0..team.size() {
        let mut bytes = match r == team.rank() {
            true => mine.join("\0").into_bytes(),
            false => Vec::new(),
        };
        team.broadcast_bytes(r, &mut bytes);
        if !team.is_root() {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        for w in text.split('\0').filter(|w| !w.is_empty()) {
            if seen.insert(w.to_string()) {
                let from = if r == 0 {
                    String::new()
                } else {
                    format!(" (rank {r})")
                };
                console::warn(&format!("{w}{from}"));
            }
        }
    }
}

/// Refuses to start unless every rank runs the same config (outputs and threads aside: only
/// rank 0 writes, and the thread count does not change the replicas), on data of the same
/// size, from the same model: a rank stopping early would leave the others waiting.
fn same_run_everywhere(team: &dyn Collective, exp: &Experiment, state: &TrainState) -> Result<()> {
    let mut config = exp.loaded.config.clone();
    config.output = Default::default();
    config.threads = None;
    let text = toml::to_string(&config)?;
    let sizes = [exp.train.len(), exp.test.len(), state.epochs_done()];
    let h = sizes.iter().fold(fnv(FNV_START, text.as_bytes()), |h, n| {
        fnv(h, &n.to_le_bytes())
    });
    let h = fnv(h, &checksum(state).to_le_bytes());
    if let Err(all) = team.all_equal_u64(h) {
        bail!(
            "rank(s) {} run another config, data or starting model than rank 0: every rank \
             must be given the same config and checkpoint, and see the same data",
            unlike_rank_0(&all)
        )
    }
    Ok(())
}

/// The allreduces' share of the run (`seconds` of training and evaluation): what adding
/// ranks costs in communication, waiting for a slower rank included.
fn report_allreduce(seconds: f64) {
    let (reducing, steps) = allreduce_time();
    if steps == 0 || seconds <= 0.0 {
        return;
    }
    println!(
        "allreduce: {} per step over {steps} steps, {:.1}% of the run's {}",
        console::duration(reducing / steps as f64),
        100.0 * reducing / seconds,
        console::duration(seconds)
    );
}

pub fn run(args: &TrainArgs, interrupt: &AtomicBool, team: &dyn Collective) -> Result<i32> {
    let root = team.is_root();
    if !root {
        super::interrupt::silence();
    }
    console::hold_warnings();
    let setup = (|| {
        let (loaded, resumed) = load_for_training(args)?;
        check_plan(args, &loaded, root)?;
        // The host's cores shared among its ranks, unless the config says.
        let per_rank = (default_threads() / local_ranks()).max(1);
        let threads = loaded.config.threads.unwrap_or(per_rank);
        // The global pool, not `install`: MPI is called from this (the main) thread only.
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("cannot start worker threads")?;
        let (exp, trainer) = prepare(args, loaded, resumed)?;
        Ok((exp, trainer, threads))
    })();
    share_warnings(team);
    let (exp, mut trainer, threads) = agree(team, "setting up the run", setup)?;
    same_run_everywhere(team, &exp, &trainer.state)?;
    let quiet = args.quiet || !root;
    if !quiet {
        let batch = trainer.batch_size();
        let line = format!(
            "{} | {} MPI ranks, each ~{} samples of every batch",
            header(&exp, threads, batch),
            team.size(),
            batch / team.size()
        );
        announce(&line);
    }
    let opened = match root {
        true => observers(&exp, quiet, trainer.rules.epochs),
        false => Ok(Observers::default()),
    };
    let mut observers = agree(team, "opening the outputs", opened)?;
    let started = Instant::now();
    let reason = trainer.fit_on(exp.sets(), &mut observers, interrupt, team);
    observers.run_end();
    if !quiet {
        report_allreduce(started.elapsed().as_secs_f64());
    }
    let status = match (root, reason) {
        (true, Ok(reason)) => finish(&exp, &trainer.state, &reason),
        (true, Err(e)) => Err(rescue(&exp, &trainer.state, e)),
        (false, Ok(StopReason::Interrupted { .. })) => Ok(exit::INTERRUPTED),
        (false, Ok(StopReason::Diverged { .. })) => Ok(exit::DIVERGED),
        (false, Ok(_)) => Ok(0),
        (false, Err(e)) => Err(e),
    };
    // No rank leaves before rank 0 has saved: mpirun ends the whole job as soon as one rank
    // exits with a failure status (130 after an interrupt included).
    let _ = team.all_equal_u64(0);
    status
}
