//! CSV tables: arbitrary bytes as the training file (and, from the second half of the input,
//! as the test file) through `data::csv::load`, for regression and classification.
//!
//! Checks: no panic; on success both sets have the same width, at least one row, finite
//! features and targets, and class labels below the class count.
#![no_main]

use backprop::data::csv::{load, CsvConfig};
use backprop::data::settle_classes;
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn scratch(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("backprop-fuzz-csv-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    dir.join(name)
}

fuzz_target!(|bytes: &[u8]| {
    let cut = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let (train_bytes, test_bytes) = bytes.split_at(cut);
    let train = scratch("train.csv");
    let test = scratch("test.csv");
    std::fs::write(&train, train_bytes).unwrap();
    std::fs::write(&test, test_bytes.get(1..).unwrap_or(&[])).unwrap();
    for classification in [false, true] {
        for test_file in [None, Some(test.clone())] {
            let cfg = CsvConfig {
                train: train.clone(),
                test: test_file,
                test_fraction: 0.3,
                target: vec!["y".to_string()],
                classification,
            };
            match load(&cfg, Path::to_path_buf, 7) {
                Ok((mut a, mut b)) => {
                    assert_eq!(a.width(), b.width());
                    let mut row = vec![0.0f32; a.width()];
                    for ds in [&a, &b] {
                        for i in 0..ds.len() {
                            ds.raw_features(i, &mut row);
                            assert!(row.iter().all(|v| v.is_finite()));
                            if !classification {
                                assert!(ds.values(i).iter().all(|v| v.is_finite()));
                            }
                        }
                    }
                    if classification && !a.is_empty() && !b.is_empty() {
                        if let Ok(Some(k)) = settle_classes(&mut a, &mut b, None) {
                            for ds in [&a, &b] {
                                assert!((0..ds.len()).all(|i| (ds.label(i) as usize) < k));
                            }
                        }
                    }
                }
                Err(e) => {
                    let _ = format!("{e:#}");
                }
            }
        }
    }
});
