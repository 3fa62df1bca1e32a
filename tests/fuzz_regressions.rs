//! Inputs found by the `cargo fuzz` targets in `fuzz/` (see `fuzz/README.md`), pinned so
//! they stay fixed: each must give an error, never a panic.

use backprop::data::idx::{self, IdxError, IdxErrorKind, IdxFile};
use std::path::Path;

/// Checks the in-memory and the file path on `bytes`, which must be rejected as a header
/// whose sizes cannot match the (empty) payload; returns the message.
fn rejected_as_oversized(bytes: &[u8]) -> String {
    let kind = idx::parse(bytes).expect_err("header sizes far beyond the file length");
    assert!(
        matches!(
            kind,
            IdxErrorKind::LengthMismatch { actual: 0, .. } | IdxErrorKind::Overflow { .. }
        ),
        "{kind:?}"
    );
    let text = IdxError::new(Path::new("fuzz.idx"), kind).to_string();
    assert!(text.starts_with("fuzz.idx: "), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.idx");
    std::fs::write(&path, bytes).unwrap();
    let err = IdxFile::map_plain(&path).expect_err("the file path rejects it too");
    assert!(
        matches!(
            err.kind,
            IdxErrorKind::LengthMismatch { actual: 0, .. } | IdxErrorKind::Overflow { .. }
        ),
        "{err}"
    );
    err.to_string()
}

/// `fuzz/artifacts/idx_parse/minimized-from-fea97288...` (idx_parse): rank 8, sizes around
/// 2^28 each, no data. The product of the sizes (about 2^226) overflowed the `u128`
/// `Iterator::product` in `idx::parse`: "attempt to multiply with overflow" with overflow
/// checks on (debug builds, `cargo fuzz`), a silently wrapped `expected` in release.
#[test]
fn rank8_sizes_past_u128_are_an_error_not_a_panic() {
    let bytes: &[u8] = b"\x00\x00\x08\x08\x09\x16\x17\x0d\x12\x13\x14\x12\x13\x14\x15\x16\
                         \x17\x0d\x11\x12\x13\x14\x15\x16\x17\x11\x12\x13\x14\x15\x16\x17\
                         \x14\x15\x16\x17";
    assert_eq!(bytes.len(), 36);
    rejected_as_oversized(bytes);
}

/// The smallest form of the same bug: rank 5, every size `u32::MAX` ((2^32-1)^5 > 2^128).
#[test]
fn five_max_sizes_are_an_error_not_a_panic() {
    let bytes = idx::encode(&[u32::MAX; 5], &[]);
    rejected_as_oversized(&bytes);
}

/// The boundary that must keep working: (2^32-1)^4 still fits a `u128`, so the message can
/// give the exact byte count the header claims.
#[test]
fn four_max_sizes_report_the_exact_claimed_length() {
    let bytes = idx::encode(&[u32::MAX; 4], &[]);
    match idx::parse(&bytes) {
        Err(IdxErrorKind::LengthMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, u128::from(u32::MAX).pow(4));
            assert_eq!(actual, 0);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = rejected_as_oversized(&bytes);
    assert!(text.contains("truncated"), "{text}");
}
