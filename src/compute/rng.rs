//! Seeded random streams. Every consumer (initialisation, the validation split, each epoch's
//! shuffle, generated data) gets its own stream derived from the config's seed, so a stream
//! never depends on how much another one was used, and a resumed run needs only the epoch.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub type Rng = ChaCha8Rng;

#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Init = 1,
    Split = 2,
    Shuffle = 3,
    Data = 4,
    Dropout = 5,
}

/// SplitMix64's output for state `z` (its next state is `z + 0x9E37_79B9_7F4A_7C15`).
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of item `index` (an epoch, a layer, a step) of `purpose` under `seed`.
pub fn key(seed: u64, purpose: Stream, index: u64) -> u64 {
    splitmix64(splitmix64(seed ^ splitmix64(purpose as u64)) ^ index)
}

/// The random stream for `purpose`, item `index` (an epoch, a layer), under `seed`.
pub fn stream(seed: u64, purpose: Stream, index: u64) -> Rng {
    Rng::seed_from_u64(key(seed, purpose, index))
}

/// Draw `i` of the counter-based stream `key` (SplitMix64 at position `i`): a pure function
/// of its arguments, so draws can be made in any order, on any thread.
pub fn counter_u32(key: u64, i: u64) -> u32 {
    (splitmix64(key.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_are_repeatable_and_distinct() {
        let a: u64 = stream(7, Stream::Shuffle, 3).random();
        let b: u64 = stream(7, Stream::Shuffle, 3).random();
        let c: u64 = stream(7, Stream::Shuffle, 4).random();
        let d: u64 = stream(7, Stream::Init, 3).random();
        let e: u64 = stream(8, Stream::Shuffle, 3).random();
        assert_eq!(a, b);
        assert!(a != c && a != d && a != e);
    }

    #[test]
    fn counter_draws_are_uniform_enough() {
        let k = key(1, Stream::Dropout, 0);
        let below = (0..100_000u64)
            .filter(|&i| counter_u32(k, i) < u32::MAX / 4)
            .count();
        assert!((24_000..26_000).contains(&below), "{below}");
        assert_ne!(
            counter_u32(k, 5),
            counter_u32(key(1, Stream::Dropout, 1), 5)
        );
    }
}
