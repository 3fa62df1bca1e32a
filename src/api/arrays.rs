//! In-memory training data: what the library's users hand over as `ndarray` views, checked
//! and turned into a [`Dataset`].

use crate::data::{float_dataset, Dataset, Labels, TargetData};
use crate::error::ShapeError;
use anyhow::{bail, Result};
use ndarray::ArrayView2;

/// What a network learns to output for each row of `x`: class labels `0..k` (for the
/// cross-entropy losses) or rows of values (for mean squared error).
#[derive(Clone, Copy, Debug)]
pub enum ArrayTargets<'a> {
    Labels(&'a [u32]),
    Values(ArrayView2<'a, f32>),
}

impl<'a> From<&'a [u32]> for ArrayTargets<'a> {
    fn from(labels: &'a [u32]) -> Self {
        ArrayTargets::Labels(labels)
    }
}

impl<'a> From<&'a Vec<u32>> for ArrayTargets<'a> {
    fn from(labels: &'a Vec<u32>) -> Self {
        ArrayTargets::Labels(labels)
    }
}

impl<'a> From<ArrayView2<'a, f32>> for ArrayTargets<'a> {
    fn from(values: ArrayView2<'a, f32>) -> Self {
        ArrayTargets::Values(values)
    }
}

/// A dataset of the rows of `x` (copied in row-major order, whatever the view's layout).
pub(super) fn array_dataset(name: &str, x: ArrayView2<f32>, y: ArrayTargets) -> Result<Dataset> {
    let rows = x.nrows();
    if x.ncols() == 0 {
        bail!("{name}: x has no columns (features)");
    }
    if let Some(((r, c), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        bail!("{name}: x[{r}, {c}] is {v}; inputs must be finite");
    }
    let targets = match y {
        ArrayTargets::Labels(labels) => {
            if labels.len() != rows {
                let what = format!("{name}: labels (one per row of x)");
                return Err(ShapeError::new(what, rows, labels.len()).into());
            }
            TargetData::Classes {
                labels: Labels::Owned(labels.to_vec()),
                classes: 0,
            }
        }
        ArrayTargets::Values(v) => {
            if v.nrows() != rows {
                let what = format!("{name}: rows of y (one per row of x)");
                return Err(ShapeError::new(what, rows, v.nrows()).into());
            }
            if let Some(((r, c), e)) = v.indexed_iter().find(|(_, e)| !e.is_finite()) {
                bail!("{name}: y[{r}, {c}] is {e}; targets must be finite");
            }
            TargetData::Values {
                values: v.iter().copied().collect(),
                width: v.ncols(),
            }
        }
    };
    if rows == 0 {
        bail!("{name}: x has no rows (samples)");
    }
    let values = x.iter().copied().collect();
    Ok(float_dataset(name, values, x.ncols(), targets))
}
