//! How raw features become network inputs.

use serde::{Deserialize, Serialize};

/// How raw features become network inputs; stored in checkpoints so that evaluation and
/// prediction see inputs exactly as training did.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputScaling {
    pub byte_scale: f32,
    pub mean: f32,
    pub std: f32,
}

impl InputScaling {
    pub fn transform(&self) -> InputTransform {
        InputTransform::new(self.byte_scale, self.mean, self.std)
    }
}

/// Maps bytes and floats to network inputs: `((x * scale) - mean) / std`, folded into one
/// multiply-add per value so the conversion loop vectorises.
#[derive(Clone, Debug)]
pub struct InputTransform {
    byte_mul: f32,
    float_mul: f32,
    add: f32,
    /// `b · byte_mul` for every byte value, for the sparse kernels.
    byte_table: [f32; 256],
}

impl InputTransform {
    /// `byte_scale` multiplies byte features only (1/255 maps them to [0, 1]).
    pub fn new(byte_scale: f32, mean: f32, std: f32) -> Self {
        let inv_std = 1.0 / std;
        let byte_mul = byte_scale * inv_std;
        InputTransform {
            byte_mul,
            float_mul: inv_std,
            add: -mean * inv_std,
            byte_table: std::array::from_fn(|b| b as f32 * byte_mul),
        }
    }

    pub fn identity() -> Self {
        Self::new(1.0, 0.0, 1.0)
    }

    /// `byte · mul` for every byte value: with [`InputTransform::add`], what a sparse input's
    /// kernels apply (`x = table[b] + add`).
    pub fn byte_table(&self) -> &[f32; 256] {
        &self.byte_table
    }

    /// The constant added to every scaled value (`-mean / std`).
    pub fn add(&self) -> f32 {
        self.add
    }

    /// `(mul, add)` of the byte path: an input is `byte * mul + add` (for exporters).
    pub fn byte_coefficients(&self) -> (f32, f32) {
        (self.byte_mul, self.add)
    }

    /// `(mul, add)` of the float path: an input is `value * mul + add`.
    pub fn float_coefficients(&self) -> (f32, f32) {
        (self.float_mul, self.add)
    }

    #[inline]
    pub fn bytes(&self, out: &mut [f32], src: &[u8]) {
        let (mul, add) = (self.byte_mul, self.add);
        for (o, &b) in out.iter_mut().zip(src) {
            *o = f32::from(b) * mul + add;
        }
    }

    #[inline]
    pub fn floats(&self, out: &mut [f32], src: &[f32]) {
        let (mul, add) = (self.float_mul, self.add);
        for (o, &v) in out.iter_mut().zip(src) {
            *o = v * mul + add;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transform_scales_and_standardises_bytes() {
        let t = InputTransform::new(1.0 / 255.0, 0.5, 0.25);
        let mut out = [0.0; 3];
        t.bytes(&mut out, &[0, 255, 51]);
        assert!((out[0] + 2.0).abs() < 1e-6);
        assert!((out[1] - 2.0).abs() < 1e-6);
        assert!((out[2] - (0.2 - 0.5) * 4.0).abs() < 1e-6);
        let mut f = [0.0; 2];
        t.floats(&mut f, &[0.5, 1.0]);
        assert_eq!(f, [0.0, 2.0]);
    }
}
