//! Inverted dropout on hidden layers: while training, each unit's output is kept with
//! probability `1 - p` and scaled by `1 / (1 - p)`, so evaluation needs nothing. A mask is a
//! pure function of (run seed, step, layer, element of the global batch), drawn from a
//! counter-based stream: the same step gets the same mask on any thread count, after a
//! resume, and on any number of data-parallel ranks.

use crate::compute::elementwise;
use crate::compute::rng::{self, Stream};
use ndarray::Array2;

/// One layer's dropout rate and the buffers of its last mask.
#[derive(Clone, Debug)]
pub struct DropoutLayer {
    pub rate: f32,
    /// The layer's output before the mask: its derivative is taken from it.
    pub unmasked: Array2<f32>,
    /// Per unit, 0 (dropped) or `1 / (1 - p)` (kept).
    pub scale: Array2<f32>,
}

/// Which masks a forward pass applies: those of a training step, from row `first_row` of
/// its global batch on (a data-parallel rank's share starts past row 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mask {
    pub key: u64,
    pub first_row: usize,
}

impl Mask {
    /// The masks of training step `step` of a run seeded with `seed`.
    pub fn of_step(seed: u64, step: u64, first_row: usize) -> Self {
        Mask {
            key: rng::key(seed, Stream::Dropout, step),
            first_row,
        }
    }
}

impl DropoutLayer {
    pub fn new(rate: f32, capacity: usize, width: usize) -> Self {
        assert!(
            (0.0..1.0).contains(&rate),
            "dropout rate {rate} outside [0, 1)"
        );
        DropoutLayer {
            rate,
            unmasked: Array2::zeros((capacity, width)),
            scale: Array2::zeros((capacity, width)),
        }
    }

    /// Masks `out` (the layer's first rows) with `mask` for layer `layer`, keeping the
    /// unmasked values and the scale for the backward pass.
    pub fn apply(&mut self, out: &mut [f32], mask: Mask, layer: usize) {
        let key = rng::key(mask.key, Stream::Dropout, layer as u64);
        let first = (mask.first_row * self.unmasked.ncols()) as u64;
        // Kept when the draw is at or above p·2³².
        let threshold = (f64::from(self.rate) * 4_294_967_296.0) as u64;
        let kept = 1.0 / (1.0 - self.rate);
        let n = out.len();
        let unmasked = &mut self.unmasked.as_slice_mut().expect("row-major buffer")[..n];
        let scale = &mut self.scale.as_slice_mut().expect("row-major buffer")[..n];
        elementwise::triples_indexed(out, unmasked, scale, |start, out, unmasked, scale| {
            for (i, ((o, u), s)) in out.iter_mut().zip(unmasked).zip(scale).enumerate() {
                let draw = u64::from(rng::counter_u32(key, first + (start + i) as u64));
                *s = if draw >= threshold { kept } else { 0.0 };
                *u = *o;
                *o *= *s;
            }
        });
    }

    /// The unmasked output and the scale of the last mask, over `len` elements.
    pub fn last_mask(&self, len: usize) -> (&[f32], &[f32]) {
        let unmasked = self.unmasked.as_slice().expect("row-major buffer");
        let scale = self.scale.as_slice().expect("row-major buffer");
        (&unmasked[..len], &scale[..len])
    }
}

/// One rate per hidden layer from a config value: a single rate for all, or one each.
pub fn rates_per_layer(rates: &[f32], hidden_layers: usize) -> Vec<f32> {
    match rates {
        [] => vec![0.0; hidden_layers],
        [one] => vec![*one; hidden_layers],
        each => each.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_expected_fraction_scaled_by_its_inverse() {
        let (rows, width) = (500, 200);
        let mut layer = DropoutLayer::new(0.3, rows, width);
        let mut out: Vec<f32> = (0..rows * width).map(|i| (i % 7) as f32 + 1.0).collect();
        let original = out.clone();
        layer.apply(&mut out, Mask::of_step(9, 4, 0), 1);
        let kept = out.iter().filter(|&&v| v != 0.0).count() as f64 / out.len() as f64;
        assert!((kept - 0.7).abs() < 0.005, "kept {kept}");
        for (o, x) in out.iter().zip(&original) {
            assert!(
                *o == 0.0 || (*o - x / 0.7).abs() <= 1e-6 * o.abs(),
                "{o} from {x}"
            );
        }
        // The mean survives the mask: that is what makes evaluation need nothing.
        let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        assert!((mean(&out) / mean(&original) - 1.0).abs() < 0.01);
        let (unmasked, _) = layer.last_mask(out.len());
        assert_eq!(unmasked, &original[..]);
    }

    #[test]
    fn a_mask_depends_on_step_layer_and_global_row_only() {
        let masked = |step, layer, threads, rows: std::ops::Range<usize>| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut d = DropoutLayer::new(0.5, 300, 256);
            let mut out = vec![1.0f32; rows.len() * 256];
            let mask = Mask::of_step(1, step, rows.start);
            pool.install(|| d.apply(&mut out, mask, layer));
            out
        };
        let all = masked(3, 0, 1, 0..300);
        assert_eq!(all, masked(3, 0, 2, 0..300));
        assert_ne!(all, masked(4, 0, 1, 0..300));
        assert_ne!(all, masked(3, 1, 1, 0..300));
        // Two shares of the batch get the rows' own masks, as one pass over all rows would.
        let (head, tail) = (masked(3, 0, 2, 0..120), masked(3, 0, 1, 120..300));
        assert_eq!([head, tail].concat(), all);
    }
}
