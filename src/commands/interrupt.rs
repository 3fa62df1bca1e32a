//! Ctrl-C and SIGTERM: the first asks the run to stop after the current batch (it then saves
//! what it has); the second exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process) and returns the flag it raises.
pub fn install() -> &'static AtomicBool {
    let installed = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond interrupt: exiting now");
            // _exit, not exit: running atexit handlers (OpenBLAS shuts its thread pool down)
            // while other threads are mid-product can crash the process.
            // SAFETY: _exit ends the process at once and touches no Rust state.
            unsafe { libc::_exit(super::exit::INTERRUPTED) };
        }
        eprintln!(
            "\ninterrupt: stopping after the current batch and saving what there is \
             (interrupt again to quit at once)"
        );
    });
    if let Err(e) = installed {
        crate::output::console::warn(&format!("Ctrl-C will not stop training cleanly: {e}"));
    }
    &REQUESTED
}
