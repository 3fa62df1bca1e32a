//! The lowest floor: the `sgemm` door to OpenBLAS ([`blas`]), elementwise passes split over
//! the rayon pool ([`elementwise`]), sparse-dense products for byte inputs ([`sparse`]),
//! seeded random streams ([`rng`]), and the memory budget checked before large allocations
//! ([`memory`]).

pub mod blas;
pub mod coretype;
pub mod elementwise;
pub mod memory;
pub mod rng;
pub mod sparse;
