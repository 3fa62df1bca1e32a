//! Checkpoint loading: arbitrary bytes as a `.safetensors` file through
//! `output::checkpoint::load` (the header, the metadata's architecture, optimizer and
//! history, every tensor's dtype, shape and values).
//!
//! Checks: no panic and no allocation from untrusted sizes (a checkpoint claiming huge
//! shapes must be refused, not abort); on success every tensor of the layout was read, the
//! parameter count matches the architecture, and every value is finite.
#![no_main]

use backprop::output::checkpoint;
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("backprop-fuzz-ck-{}.safetensors", std::process::id()))
    })
}

fuzz_target!(|bytes: &[u8]| {
    let path = scratch();
    std::fs::write(path, bytes).unwrap();
    match checkpoint::load(path) {
        Ok(ck) => {
            let net = &ck.state.net;
            assert_eq!(Some(net.params.len()), net.arch.param_count());
            assert!(net.params.iter().all(|v| v.is_finite()));
            for s in &ck.state.optimizer.state {
                assert_eq!(s.len(), net.params.len());
                assert!(s.iter().all(|v| v.is_finite()));
            }
            let _ = ck.loaded_config(path).map(|l| l.config.validate());
        }
        Err(e) => {
            let _ = format!("{e:#}");
        }
    }
});
