//! The IDX layout: two zero bytes, a data-type byte, a rank byte, `rank` big-endian `u32`
//! sizes, then the items in row-major order.

use super::error::{IdxErrorKind, UNSIGNED_BYTE};

/// A validated IDX header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Sizes, outermost first: `dims[0]` is the item count.
    pub dims: Vec<usize>,
    /// Bytes before the data.
    pub len: usize,
}

impl Header {
    pub fn count(&self) -> usize {
        self.dims[0]
    }

    /// Elements per item: the product of the trailing dimensions (1 for a rank-1 file).
    pub fn item_len(&self) -> usize {
        self.dims[1..].iter().product()
    }
}

/// Validates the header and the payload length of a whole IDX file held in `bytes`.
///
/// Nothing is allocated from the header's numbers: the rank is one byte, and sizes are
/// multiplied with overflow checks and compared with the real length before any use.
pub fn parse(bytes: &[u8]) -> Result<Header, IdxErrorKind> {
    if bytes.is_empty() {
        return Err(IdxErrorKind::Empty);
    }
    if bytes.len() < 4 {
        return Err(IdxErrorKind::TooShort {
            len: bytes.len(),
            need: 4,
        });
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(IdxErrorKind::BadMagic {
            found: [bytes[0], bytes[1]],
        });
    }
    if bytes[2] != UNSIGNED_BYTE {
        return Err(IdxErrorKind::UnsupportedType { code: bytes[2] });
    }
    let rank = usize::from(bytes[3]);
    if rank == 0 {
        return Err(IdxErrorKind::ZeroRank);
    }
    let len = 4 + 4 * rank;
    if bytes.len() < len {
        return Err(IdxErrorKind::TooShort {
            len: bytes.len(),
            need: len,
        });
    }
    let raw: Vec<u64> = bytes[4..len]
        .chunks_exact(4)
        .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    if let Some(axis) = raw.iter().position(|&d| d == 0) {
        return Err(IdxErrorKind::ZeroDim { axis });
    }
    // Up to 255 sizes of 32 bits: even a u128 product can overflow (found by fuzzing).
    let expected = raw
        .iter()
        .try_fold(1u128, |acc, &d| acc.checked_mul(u128::from(d)));
    let Some(expected) = expected else {
        return Err(IdxErrorKind::Overflow { dims: raw });
    };
    let actual = bytes.len() - len;
    if expected != actual as u128 {
        return Err(IdxErrorKind::LengthMismatch {
            dims: raw,
            expected,
            actual,
        });
    }
    // The product equals a real length, so every size and the product fit a usize.
    let dims = raw.iter().map(|&d| d as usize).collect();
    Ok(Header { dims, len })
}

/// Serialises an IDX file of unsigned bytes (used by tests and data generators).
pub fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let rank = u8::try_from(dims.len()).expect("IDX rank fits a byte");
    let mut out = vec![0, 0, UNSIGNED_BYTE, rank];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::IdxError;
    use std::path::Path;

    #[test]
    fn parses_a_valid_rank3_header() {
        let bytes = encode(&[2, 3, 4], &[7; 24]);
        let h = parse(&bytes).unwrap();
        assert_eq!(h.dims, vec![2, 3, 4]);
        assert_eq!(h.len, 16);
        assert_eq!(h.count(), 2);
        assert_eq!(h.item_len(), 12);
    }

    #[test]
    fn rank1_items_are_single_bytes() {
        let h = parse(&encode(&[5], &[0, 1, 2, 3, 4])).unwrap();
        assert_eq!(h.item_len(), 1);
    }

    #[test]
    fn rejects_each_malformation_with_its_own_kind() {
        use IdxErrorKind::*;
        assert!(matches!(parse(&[]), Err(Empty)));
        assert!(matches!(parse(&[0, 0, 8]), Err(TooShort { need: 4, .. })));
        assert!(matches!(
            parse(&[1, 2, 8, 1, 0, 0, 0, 1, 9]),
            Err(BadMagic { found: [1, 2] })
        ));
        assert!(matches!(
            parse(&[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(UnsupportedType { code: 0x0D })
        ));
        assert!(matches!(parse(&[0, 0, 8, 0]), Err(ZeroRank)));
        assert!(matches!(
            parse(&[0, 0, 8, 2, 0, 0, 0, 1]),
            Err(TooShort { need: 12, .. })
        ));
        assert!(matches!(
            parse(&encode(&[3, 0], &[])),
            Err(ZeroDim { axis: 1 })
        ));
        assert!(matches!(
            parse(&encode(&[2, 2], &[1, 2, 3])),
            Err(LengthMismatch {
                expected: 4,
                actual: 3,
                ..
            })
        ));
        assert!(matches!(
            parse(&encode(&[2, 2], &[1, 2, 3, 4, 5])),
            Err(LengthMismatch { actual: 5, .. })
        ));
    }

    #[test]
    fn a_header_claiming_billions_is_a_length_error_not_an_allocation() {
        let bytes = encode(&[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]);
        match parse(&bytes) {
            Err(IdxErrorKind::LengthMismatch { expected, .. }) => {
                assert_eq!(expected, u128::from(u32::MAX).pow(3))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn messages_name_what_was_expected() {
        let e = IdxError::new(
            Path::new("x.idx"),
            parse(&[0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap_err(),
        );
        let text = e.to_string();
        assert!(text.starts_with("x.idx: "), "{text}");
        assert!(text.contains("0x0C (i32, a valid IDX type)"), "{text}");
        assert!(text.contains("only 0x08 unsigned byte"), "{text}");
    }
}
