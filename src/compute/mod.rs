//! The lowest floor: the `sgemm` door to OpenBLAS ([`blas`]), elementwise passes split over
//! the rayon pool ([`elementwise`]), sparse-dense products for byte inputs ([`sparse`]), and
//! seeded random streams ([`rng`]).

pub mod blas;
pub mod elementwise;
pub mod rng;
pub mod sparse;
