//! The lowest floor: the `sgemm` door to OpenBLAS ([`blas`]), elementwise passes split over
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
pub mod sparse;
