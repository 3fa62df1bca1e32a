//! A user's data file truncated while it is memory-mapped makes the next read of a lost
//! page raise SIGBUS, which would kill the process without a word. Reads of the mapping are
//! everywhere (gather, evaluation), so they cannot each check the file; instead a SIGBUS
//! handler prints which files are mapped and what happened, and exits with status 1.
//! Nothing can be saved from a signal handler, but every checkpoint and metrics file is
//! written atomically, so the last one written is intact.

use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, Once};

/// The message the handler writes, rebuilt (and the old one leaked) on each new mapping.
static MESSAGE: AtomicPtr<Vec<u8>> = AtomicPtr::new(std::ptr::null_mut());
static PATHS: Mutex<Vec<String>> = Mutex::new(Vec::new());

extern "C" fn on_sigbus(_: libc::c_int) {
    let msg = MESSAGE.load(Ordering::Acquire);
    if !msg.is_null() {
        // SAFETY: the message is leaked, never freed or changed once published; write(2)
        // and _exit(2) are async-signal-safe.
        unsafe {
            let m = &*msg;
            libc::write(2, m.as_ptr().cast(), m.len());
        }
    }
    // SAFETY: ends the process at once.
    unsafe { libc::_exit(1) };
}

/// Records `path` as mapped, installing the handler on first use. (A path already watched
/// costs nothing, so re-mapping one file in a loop leaks nothing.)
pub fn watch(path: &Path) {
    static INSTALL: Once = Once::new();
    let shown = std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    let mut paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    if paths.contains(&shown) {
        return;
    }
    paths.push(shown);
    let text = format!(
        "\nerror: a memory-mapped data file was truncated while this run was reading it \
         (SIGBUS); mapped: {}. The run stopped; checkpoints and metrics files already written \
         are intact. Replace data files by renaming a new file over them, never in place.\n",
        paths.join(", ")
    );
    let old = MESSAGE.swap(Box::into_raw(Box::new(text.into_bytes())), Ordering::AcqRel);
    // The old message is leaked on purpose: a handler may be reading it right now.
    let _ = old;
    INSTALL.call_once(|| {
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    });
}
