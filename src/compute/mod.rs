//! The lowest floor: the `sgemm` door to OpenBLAS ([`blas`]) and the loop for products too
//! small for it ([`small`]), elementwise passes split over
//! the rayon pool ([`elementwise`]), the pool's workers kept polling through a loop of short
//! products ([`awake`]), sparse-dense products for byte inputs ([`sparse`]),
//! seeded random streams ([`rng`]), the memory budget checked before large allocations
//! ([`memory`]), and the collectives of data-parallel training ([`dist`]: one process, or MPI).

pub mod awake;
pub mod blas;
pub mod coretype;
pub mod dist;
pub mod elementwise;
pub mod memory;
pub mod rng;
pub mod small;
pub mod sparse;

/// The machine's hardware threads (logical CPUs) this process may run on.
pub fn hardware_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
