//! [`Collective`] over MPI via rsmpi 0.8 (`mpi` crate, default features off).
//!
//! rsmpi's safe API has no `MPI_IN_PLACE`, so the in-place allreduce copies
//! the input into a scratch buffer owned by [`Mpi`] (allocated on first use,
//! reused afterwards) and reduces scratch -> caller's buffer.

use std::cell::RefCell;
use std::io::Write;
use std::sync::OnceLock;
use std::thread::{self, ThreadId};

use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;

use super::{Collective, DistError};

/// Exit code used when a rank panics.
pub const PANIC_EXIT_CODE: i32 = 101;

/// MPI counts are C `int`s; larger buffers are sent in pieces of this many
/// elements (1 Gi elements < `i32::MAX`).
const MAX_CHUNK: usize = 1 << 30;

/// Thread that called `MPI_Init_thread` (the only one allowed to call MPI
/// under `Threading::Funneled`).
static MPI_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// The MPI backend. Field order matters: `world` is dropped before
/// `_universe`, whose `Drop` calls `MPI_Finalize`.
pub struct Mpi {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    scratch_f32: RefCell<Vec<f32>>,
    scratch_f64: RefCell<Vec<f64>>,
    _universe: Universe,
}

impl Mpi {
    /// `MPI_Init_thread(FUNNELED)` and install the abort-on-panic hook.
    pub fn init() -> Result<Mpi, DistError> {
        let (universe, provided) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or(DistError::AlreadyInitialized)?;
        if provided < Threading::Funneled {
            return Err(DistError::ThreadingTooLow {
                provided: format!("{provided:?}"),
            });
        }
        let _ = MPI_THREAD.set(thread::current().id());
        install_abort_on_panic_hook();
        let world = universe.world();
        let rank = usize::try_from(world.rank()).expect("negative MPI rank");
        let size = usize::try_from(world.size()).expect("negative MPI size");
        Ok(Mpi {
            world,
            rank,
            size,
            scratch_f32: RefCell::new(Vec::new()),
            scratch_f64: RefCell::new(Vec::new()),
            _universe: universe,
        })
    }

    /// The world communicator, for anything the trait does not cover.
    pub fn world(&self) -> &SimpleCommunicator {
        &self.world
    }

    fn allreduce_sum<T: Equivalence + Copy>(&self, scratch: &RefCell<Vec<T>>, buf: &mut [T]) {
        if self.size == 1 {
            return;
        }
        let mut scratch = scratch.borrow_mut();
        scratch.clear();
        scratch.extend_from_slice(buf);
        for (send, recv) in scratch.chunks(MAX_CHUNK).zip(buf.chunks_mut(MAX_CHUNK)) {
            self.world
                .all_reduce_into(send, recv, SystemOperation::sum());
        }
    }
}

impl Collective for Mpi {
    fn size(&self) -> usize {
        self.size
    }

    fn rank(&self) -> usize {
        self.rank
    }

    fn allreduce_sum_f32(&self, buf: &mut [f32]) {
        self.allreduce_sum(&self.scratch_f32, buf);
    }

    fn allreduce_sum_f64(&self, buf: &mut [f64]) {
        self.allreduce_sum(&self.scratch_f64, buf);
    }

    fn broadcast_bytes(&self, root: usize, buf: &mut Vec<u8>) {
        assert!(
            root < self.size,
            "broadcast root {root} >= size {}",
            self.size
        );
        let root_process = self
            .world
            .process_at_rank(i32::try_from(root).expect("root rank fits in i32"));
        let mut len = buf.len() as u64;
        root_process.broadcast_into(&mut len);
        if self.rank != root {
            let len = usize::try_from(len).expect("broadcast length fits in usize");
            buf.clear();
            buf.resize(len, 0);
        }
        for chunk in buf.chunks_mut(MAX_CHUNK) {
            root_process.broadcast_into(chunk);
        }
    }

    fn all_equal_u64(&self, value: u64) -> Result<(), Vec<u64>> {
        let mut all = vec![0u64; self.size];
        self.world.all_gather_into(&value, &mut all[..]);
        if all.iter().all(|&v| v == value) {
            Ok(())
        } else {
            Err(all)
        }
    }

    fn abort(&self, code: i32) -> ! {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        self.world.abort(code)
    }
}

impl Drop for Mpi {
    fn drop(&mut self) {
        // Unwinding out of main (e.g. a rayon worker's panic re-raised on the
        // main thread, which does not run the panic hook again). Calling
        // MPI_Finalize now would wait for ranks that are blocked in a
        // collective we will never join, so end the whole job instead.
        if thread::panicking() {
            let _ = std::io::stderr().flush();
            self.world.abort(PANIC_EXIT_CODE);
        }
        // Otherwise `_universe` drops after this and calls MPI_Finalize.
    }
}

/// After the default panic message is printed, a panic on the MPI thread
/// calls `MPI_Abort`, so mpirun tears the job down instead of the other ranks
/// waiting forever in their next allreduce. Panics on other threads (rayon
/// workers) only print; they reach the MPI thread through rayon and are
/// handled by `Drop for Mpi` (MPI may only be called from that thread).
fn install_abort_on_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        let on_mpi_thread = MPI_THREAD.get() == Some(&thread::current().id());
        if on_mpi_thread && mpi::is_initialized() && !mpi::is_finalized() {
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            SimpleCommunicator::world().abort(PANIC_EXIT_CODE);
        }
    }));
}
