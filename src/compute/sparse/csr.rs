//! Compressed rows of a byte dataset: the sparse kernels' input, built once at load.

/// Widest row `CsrBytes` can hold: columns are stored as `u16`.
pub const MAX_WIDTH: usize = 1 << 16;

/// Compressed rows of a byte dataset (zeros dropped), built once at load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CsrBytes {
    width: usize,
    /// Row `i` holds entries `row_ptr[i]..row_ptr[i + 1]`.
    row_ptr: Vec<usize>,
    cols: Vec<u16>,
    vals: Vec<u8>,
    max_row_nnz: usize,
}

impl CsrBytes {
    /// Compresses dense rows of `width` bytes each. Fails on a row of another length, or when
    /// `width` exceeds [`MAX_WIDTH`] (columns are `u16`).
    pub fn from_rows<'a, R>(width: usize, rows: R) -> Result<Self, String>
    where
        R: IntoIterator<Item = &'a [u8]>,
    {
        if width > MAX_WIDTH {
            return Err(format!(
                "sparse rows hold at most {MAX_WIDTH} columns, got width {width}"
            ));
        }
        let mut csr = CsrBytes {
            width,
            row_ptr: vec![0],
            ..CsrBytes::default()
        };
        for (i, row) in rows.into_iter().enumerate() {
            if row.len() != width {
                return Err(format!("row {i} has {} bytes, expected {width}", row.len()));
            }
            let before = csr.cols.len();
            for (c, &v) in row.iter().enumerate() {
                if v != 0 {
                    // c < width <= 2^16, so it fits.
                    csr.cols.push(c as u16);
                    csr.vals.push(v);
                }
            }
            csr.max_row_nnz = csr.max_row_nnz.max(csr.cols.len() - before);
            csr.row_ptr.push(csr.cols.len());
        }
        csr.row_ptr.shrink_to_fit();
        csr.cols.shrink_to_fit();
        csr.vals.shrink_to_fit();
        Ok(csr)
    }

    /// Compresses `data`, a whole dataset of `data.len() / width` rows laid end to end.
    pub fn from_dense(width: usize, data: &[u8]) -> Result<Self, String> {
        if width == 0 {
            return if data.is_empty() {
                Self::from_rows(0, std::iter::empty())
            } else {
                Err("width 0 with non-empty data".into())
            };
        }
        if !data.len().is_multiple_of(width) {
            return Err(format!("{} bytes are not rows of {width}", data.len()));
        }
        Self::from_rows(width, data.chunks_exact(width))
    }

    pub fn rows(&self) -> usize {
        self.row_ptr.len() - 1
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// Stored (nonzero) entries.
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    /// Most nonzeros in one row: sizes a [`Transpose`](super::Transpose).
    pub fn max_row_nnz(&self) -> usize {
        self.max_row_nnz
    }

    /// Fraction of nonzero bytes (0 for an empty dataset).
    pub fn density(&self) -> f64 {
        let cells = self.rows() * self.width;
        if cells == 0 {
            0.0
        } else {
            self.nnz() as f64 / cells as f64
        }
    }

    /// Row `i`'s nonzeros: ascending columns and their bytes.
    pub fn row(&self, i: usize) -> (&[u16], &[u8]) {
        let (a, b) = (self.row_ptr[i], self.row_ptr[i + 1]);
        (&self.cols[a..b], &self.vals[a..b])
    }

    /// Hints the CPU to start loading row `i` (its columns and values) into cache.
    pub(super) fn prefetch_row(&self, i: usize) {
        let (cols, vals) = self.row(i);
        prefetch_lines(cols);
        prefetch_lines(vals);
    }

    pub(super) fn row_nnz(&self, i: usize) -> usize {
        self.row_ptr[i + 1] - self.row_ptr[i]
    }

    pub fn heap_bytes(&self) -> usize {
        self.row_ptr.capacity() * std::mem::size_of::<usize>()
            + self.cols.capacity() * std::mem::size_of::<u16>()
            + self.vals.capacity()
    }
}

/// Cache lines of a row's columns (and of its values) [`CsrBytes::prefetch_row`] asks for:
/// an MNIST row takes 5 and 3; the hardware's own prefetcher follows a longer one.
const PREFETCH_LINES: usize = 32;

/// Hints the CPU to bring the first [`PREFETCH_LINES`] cache lines of `data` towards L2.
#[inline]
fn prefetch_lines<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let bytes = std::mem::size_of_val(data).min(PREFETCH_LINES * 64);
        let p = data.as_ptr().cast::<i8>();
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch is a hint and never faults; `off` is within `data` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows × width` bytes, about a third nonzero in an irregular pattern; row 3 empty.
    fn dataset(rows: usize, width: usize) -> Vec<u8> {
        (0..rows * width)
            .map(|i| {
                let (r, c) = (i / width, i % width);
                let h = (r * 7919 + c * 104_729) % 251;
                if r == 3 || h % 3 != 0 {
                    0
                } else {
                    (h % 255 + 1) as u8
                }
            })
            .collect()
    }

    #[test]
    fn csr_round_trips_rows() {
        let (rows, width) = (40, 77);
        let data = dataset(rows, width);
        let csr = CsrBytes::from_rows(width, data.chunks_exact(width)).unwrap();
        assert_eq!((csr.rows(), csr.width()), (rows, width));
        let nonzero = data.iter().filter(|&&b| b != 0).count();
        assert_eq!(csr.nnz(), nonzero);
        assert!((csr.density() - nonzero as f64 / data.len() as f64).abs() < 1e-12);
        assert!(csr.heap_bytes() >= 3 * nonzero);
        let mut widest = 0;
        for (i, dense) in data.chunks_exact(width).enumerate() {
            let (cols, vals) = csr.row(i);
            assert!(
                cols.windows(2).all(|p| p[0] < p[1]),
                "row {i}: columns ascend"
            );
            let mut back = vec![0u8; width];
            for (&c, &v) in cols.iter().zip(vals) {
                assert_ne!(v, 0);
                back[c as usize] = v;
            }
            assert_eq!(back, dense, "row {i}");
            widest = widest.max(cols.len());
        }
        assert_eq!(csr.max_row_nnz(), widest);
    }

    #[test]
    fn widths_past_u16_columns_are_refused() {
        assert!(CsrBytes::from_rows(MAX_WIDTH + 1, std::iter::empty()).is_err());
        let mut row = vec![0u8; MAX_WIDTH];
        row[MAX_WIDTH - 1] = 9;
        let csr = CsrBytes::from_rows(MAX_WIDTH, [row.as_slice()]).unwrap();
        assert_eq!(csr.row(0), (&[(MAX_WIDTH - 1) as u16][..], &[9u8][..]));
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(CsrBytes::from_rows(4, [&[1u8, 2, 3][..]]).is_err());
        assert!(CsrBytes::from_dense(4, &[1, 2, 3, 4, 5]).is_err());
        let csr = CsrBytes::from_dense(0, &[]).unwrap();
        assert_eq!((csr.rows(), csr.nnz(), csr.density()), (0, 0, 0.0));
    }
}
