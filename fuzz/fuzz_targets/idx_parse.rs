//! IDX header and payload validation: `idx::parse` on arbitrary bytes, then the same bytes
//! through a real file with `IdxFile::map_plain` (on tmpfs), reading every item.
//!
//! Checks: no panic anywhere (parse, accessors, error Display, mapping, item slicing);
//! on success the header accounts for every byte of the input; the in-memory and the
//! file path agree.
#![no_main]

use backprop::data::idx::{self, IdxError, IdxFile};
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Inputs above this size skip the file half (it must stay fast).
const FILE_LIMIT: usize = 1 << 20;

/// One scratch file per process on tmpfs, rewritten for every input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("backprop-fuzz-idx-{}.idx", std::process::id()))
    })
}

fuzz_target!(|bytes: &[u8]| {
    let parsed = idx::parse(bytes);
    match &parsed {
        Ok(h) => {
            assert!(!h.dims.is_empty() && h.dims.len() <= 255);
            assert_eq!(h.len, 4 + 4 * h.dims.len());
            assert!(h.dims.iter().all(|&d| d > 0));
            assert_eq!(h.len + h.dims.iter().product::<usize>(), bytes.len());
            assert_eq!(h.count() * h.item_len(), bytes.len() - h.len);
            assert_eq!(bytes[2], idx::UNSIGNED_BYTE);
        }
        Err(_) => {}
    }

    if bytes.len() > FILE_LIMIT {
        if let Err(kind) = parsed {
            let _ = IdxError::new(Path::new("fuzz.idx"), kind).to_string();
        }
        return;
    }
    let path = scratch();
    {
        let mut f = std::fs::File::create(path).expect("create scratch file");
        f.write_all(bytes).expect("write scratch file");
    }
    match (IdxFile::map_plain(path), parsed) {
        (Ok(file), Ok(h)) => {
            assert_eq!(file.header(), &h);
            assert_eq!(file.dims(), &h.dims[..]);
            assert_eq!(file.data().len(), bytes.len() - h.len);
            let n = file.item_len();
            let mut total = 0usize;
            for i in 0..file.count() {
                let item = file.item(i);
                assert_eq!(item.len(), n);
                assert_eq!(item, &bytes[h.len + i * n..h.len + (i + 1) * n]);
                total += item.len();
            }
            assert_eq!(total, file.data().len());
        }
        (Err(e), Err(kind)) => {
            // Same verdict both ways (the file path has no other reason to fail here).
            assert_eq!(
                std::mem::discriminant(&e.kind),
                std::mem::discriminant(&kind),
                "map_plain: {e}; parse: {kind}"
            );
            let _ = e.to_string();
            let _ = IdxError::new(Path::new("fuzz.idx"), kind).to_string();
        }
        (Ok(_), Err(kind)) => panic!("map_plain accepted what parse rejects: {kind}"),
        (Err(e), Ok(h)) => panic!("map_plain rejected what parse accepts ({h:?}): {e}"),
    }
});
