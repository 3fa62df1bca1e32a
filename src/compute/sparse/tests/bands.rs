//! The banded forward product against itself in one band.

use super::*;
use crate::compute::sparse::kernels::{self, Args};

/// Bands change only the order of work, never a row's terms: a banded forward gives the same
/// bits as one band on every ISA, over tiles of up to `TILE_GROUPS` samples, with rows empty,
/// sparse, or with ink in some bands only.
#[test]
fn forward_bands_give_the_bits_of_one_band() {
    let mut rng = Rng(17);
    let (rows, batch) = (90, 150);
    let table = kernels::zero_byte_table(&table());
    // Two bands at MNIST's width (AVX2), the most bands at 3000.
    for (width, density) in [(784, 0.02), (784, 0.19), (784, 0.9), (3000, 0.1)] {
        let data = dataset(&mut rng, rows, width, density);
        let csr = CsrBytes::from_dense(width, &data).unwrap();
        let samples = samples(&mut rng, rows, batch);
        for n in [300, 17] {
            let w = rng.floats(width * n);
            for &isa in Isa::available() {
                let product = |banded| {
                    let args = Args {
                        table: &table,
                        dense: &w,
                        ld: n,
                        n,
                        offset: None,
                        alpha: 1.0,
                        beta: 0.0,
                        banded,
                    };
                    let mut out = vec![f32::NAN; batch * n];
                    let rows = Batch {
                        csr: &csr,
                        samples: &samples,
                    };
                    kernels::run(isa, &rows, 0, &args, &mut out);
                    out.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                };
                assert!(
                    product(true) == product(false),
                    "{isa:?} width {width} density {density} n {n}: bands changed the result"
                );
            }
        }
    }
}
