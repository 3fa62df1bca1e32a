//! Ctrl-C and SIGTERM, in each command's own terms. Training: the first asks the run to stop
//! after the current batch (it then keeps the last completed epoch); the second exits at
//! once. A benchmark stops the same way, without a result. `eval`, `predict` and
//! `gradcheck` have nothing to keep: they exit at once. Every interrupted command exits 130.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
/// Stop without saying so (every rank but rank 0 of a distributed run: one message).
static SILENT: AtomicBool = AtomicBool::new(false);

/// The first interrupt stops the run without a message from this process.
pub fn silence() {
    SILENT.store(true, Ordering::SeqCst);
}

/// How a command answers an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Bench,
    /// Nothing to save: stop now.
    Immediate,
}

fn exit_now(message: &str) -> ! {
    eprintln!("{message}");
    // _exit, not exit: running atexit handlers (OpenBLAS shuts its thread pool down)
    // while other threads are mid-product can crash the process.
    // SAFETY: _exit ends the process at once and touches no Rust state.
    unsafe { libc::_exit(super::exit::INTERRUPTED) }
}

/// Installs the handler (once per process) and returns the flag it raises.
pub fn install(mode: Mode) -> &'static AtomicBool {
    let installed = ctrlc::set_handler(move || {
        if mode == Mode::Immediate {
            exit_now("\ninterrupted");
        }
        if REQUESTED.swap(true, Ordering::SeqCst) {
            exit_now("\nsecond interrupt: exiting now");
        }
        let what = match mode {
            Mode::Bench => "stopping the benchmark after the current batch (no result)",
            _ => "stopping after the current batch; the last completed epoch is kept",
        };
        if !SILENT.load(Ordering::SeqCst) {
            eprintln!("\ninterrupt: {what} (interrupt again to quit at once)");
        }
    });
    if let Err(e) = installed {
        crate::output::console::warn(&format!("Ctrl-C will not stop training cleanly: {e}"));
    }
    &REQUESTED
}
