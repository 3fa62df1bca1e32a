//! Data-parallel collectives behind one small trait.
//!
//! The trainer only ever talks to [`Collective`]. [`Single`] (always compiled)
//! is the size-1 no-op used for ordinary runs; `Mpi` (cargo feature `mpi`)
//! wraps rsmpi. Another collective library can be added by implementing the
//! trait; nothing else in the trainer needs to change.
//!
//! # Why a trait object (`Box<dyn Collective>`)
//! Every method is called a handful of times per optimiser step on buffers of
//! ~1 MB, so a vtable call is noise next to the copy/communication, and a
//! trait object keeps the backend a *runtime* choice (`init()` picks it from
//! the environment) without making the trainer generic over a type parameter.
//! All methods take `&self`, have no generics and `abort` returns `!`, so the
//! trait is object-safe.
//!
//! # Threading contract
//! MPI is initialised with `Threading::Funneled`: rayon may run inside each
//! rank, but every `Collective` call must come from the thread that called
//! [`init`]. The MPI backend is deliberately `!Send`/`!Sync`, so the compiler
//! stops it from being moved into a rayon closure.

#[cfg(feature = "mpi")]
mod mpi_backend;
#[cfg(feature = "mpi")]
pub use mpi_backend::Mpi;

use std::fmt;
use std::io::Write;

/// The collective operations data-parallel training needs.
pub trait Collective {
    /// Number of ranks (1 for [`Single`]).
    fn size(&self) -> usize;
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    /// Element-wise sum over all ranks, in place; every rank gets the result.
    fn allreduce_sum_f32(&self, buf: &mut [f32]);
    /// Element-wise sum over all ranks, in place; every rank gets the result.
    fn allreduce_sum_f64(&self, buf: &mut [f64]);
    /// After the call every rank's `buf` equals `root`'s (length included).
    fn broadcast_bytes(&self, root: usize, buf: &mut Vec<u8>);
    /// `Ok(())` when every rank passed the same value, otherwise every
    /// rank gets `Err(values)` with one entry per rank (index = rank).
    fn all_equal_u64(&self, value: u64) -> Result<(), Vec<u64>>;
    /// Terminate every rank of the job with exit code `code`.
    /// Use this (not `std::process::exit` or `return Err`) on any error path
    /// that may be reached while other ranks are inside a collective.
    fn abort(&self, code: i32) -> !;

    /// `true` on rank 0: the one that logs, writes checkpoints, etc.
    fn is_root(&self) -> bool {
        self.rank() == 0
    }
}

/// The single-process "collective": size 1, rank 0, every operation a no-op.
#[derive(Debug, Default, Clone, Copy)]
pub struct Single;

impl Collective for Single {
    fn size(&self) -> usize {
        1
    }
    fn rank(&self) -> usize {
        0
    }
    fn allreduce_sum_f32(&self, _buf: &mut [f32]) {}
    fn allreduce_sum_f64(&self, _buf: &mut [f64]) {}
    fn broadcast_bytes(&self, root: usize, _buf: &mut Vec<u8>) {
        assert_eq!(root, 0, "broadcast root {root} out of range for size 1");
    }
    fn all_equal_u64(&self, _value: u64) -> Result<(), Vec<u64>> {
        Ok(())
    }
    fn abort(&self, code: i32) -> ! {
        let _ = std::io::stdout().flush();
        std::process::exit(code)
    }
}

/// Why [`init`] refused to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistError {
    /// Started by an MPI launcher with more than one rank, but this binary was
    /// built without the `mpi` feature: every rank would silently train alone.
    MpiNotCompiled { launcher_var: &'static str },
    /// `MPI_Init_thread` was already called (init() called twice).
    AlreadyInitialized,
    /// The MPI library cannot give `MPI_THREAD_FUNNELED`.
    ThreadingTooLow { provided: String },
    /// `BACKPROP_DIST` has an unknown value.
    BadOverride(String),
}

impl fmt::Display for DistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DistError::MpiNotCompiled { launcher_var } => write!(
                f,
                "launched by an MPI launcher ({launcher_var} is set) but this binary was \
                 built without the `mpi` feature; rebuild with `--features mpi`"
            ),
            DistError::AlreadyInitialized => write!(f, "MPI is already initialised"),
            DistError::ThreadingTooLow { provided } => write!(
                f,
                "MPI library provides thread level {provided}, need at least Funneled"
            ),
            DistError::BadOverride(v) => {
                write!(f, "BACKPROP_DIST={v:?}: expected `single`, `mpi` or `auto`")
            }
        }
    }
}

impl std::error::Error for DistError {}

/// Environment variables that MPI launchers set in every rank, checked
/// *before* `MPI_Init` so a plain `./backprop` never touches MPI.
///
/// Open MPI (mpirun/orterun, 4.x and 5.x): `OMPI_COMM_WORLD_SIZE`;
/// PMIx (Open MPI 5, Slurm `--mpi=pmix`): `PMIX_RANK`;
/// MPICH/Hydra, Intel MPI, Slurm PMI1/PMI2: `PMI_SIZE`, `PMI_RANK`;
/// MVAPICH2: `MV2_COMM_WORLD_SIZE`.
const LAUNCHER_VARS: &[&str] = &[
    "OMPI_COMM_WORLD_SIZE",
    "PMIX_RANK",
    "PMI_SIZE",
    "PMI_RANK",
    "MV2_COMM_WORLD_SIZE",
];

/// Size variables, used only to tell "-np 1" from a real multi-rank job when
/// the `mpi` feature is off.
#[cfg(not(feature = "mpi"))]
const SIZE_VARS: &[&str] = &["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"];

/// The first launcher variable present in the environment, if any.
pub fn launcher_var() -> Option<&'static str> {
    LAUNCHER_VARS
        .iter()
        .copied()
        .find(|v| std::env::var_os(v).is_some())
}

#[cfg(not(feature = "mpi"))]
fn launched_size() -> Option<usize> {
    SIZE_VARS
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
}

/// Pick the backend: [`Single`] unless started by an MPI launcher.
///
/// `BACKPROP_DIST=single|mpi|auto` overrides the detection (`mpi` without a
/// launcher gives an MPI "singleton" of size 1, useful for tests).
///
/// Call once, from the main thread, before spawning rayon work that might
/// panic; keep the returned box alive until the end of `main` (dropping it
/// calls `MPI_Finalize`).
pub fn init() -> Result<Box<dyn Collective>, DistError> {
    let choice = std::env::var("BACKPROP_DIST").unwrap_or_default();
    let want_mpi = match choice.trim() {
        "" | "auto" => launcher_var().is_some(),
        "single" => false,
        "mpi" => true,
        other => return Err(DistError::BadOverride(other.to_string())),
    };
    if !want_mpi {
        return Ok(Box::new(Single));
    }
    init_mpi()
}

#[cfg(feature = "mpi")]
fn init_mpi() -> Result<Box<dyn Collective>, DistError> {
    Ok(Box::new(Mpi::init()?))
}

#[cfg(not(feature = "mpi"))]
fn init_mpi() -> Result<Box<dyn Collective>, DistError> {
    match (launcher_var(), launched_size()) {
        // `mpirun -np 1` of a non-MPI build is harmless.
        (_, Some(1)) => Ok(Box::new(Single)),
        (Some(launcher_var), _) => Err(DistError::MpiNotCompiled { launcher_var }),
        (None, _) => Err(DistError::MpiNotCompiled {
            launcher_var: "BACKPROP_DIST",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_is_identity() {
        let c: Box<dyn Collective> = Box::new(Single);
        assert_eq!((c.size(), c.rank()), (1, 0));
        assert!(c.is_root());
        let mut v = vec![1.0f32, 2.0];
        c.allreduce_sum_f32(&mut v);
        assert_eq!(v, [1.0, 2.0]);
        let mut d = vec![1.5f64];
        c.allreduce_sum_f64(&mut d);
        assert_eq!(d, [1.5]);
        let mut b = b"hello".to_vec();
        c.broadcast_bytes(0, &mut b);
        assert_eq!(b, b"hello");
        assert_eq!(c.all_equal_u64(42), Ok(()));
    }

    #[test]
    fn error_messages_mention_the_fix() {
        let e = DistError::MpiNotCompiled {
            launcher_var: "OMPI_COMM_WORLD_SIZE",
        };
        assert!(e.to_string().contains("--features mpi"));
    }
}
