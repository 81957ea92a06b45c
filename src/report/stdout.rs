//! The CLI's report on stdout. A reader that goes away (`kvop reconcile ... | head`)
//! ends the report, not the run: the report describes the apply, it does not gate it,
//! and the exit code stays the run's.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout is found closed: the rest of the report is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout as it is (`print!`), without panicking on a closed pipe.
pub fn print(text: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(error) = written {
        CLOSED.store(true, Ordering::Relaxed);
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            tracing::debug!("stdout was closed; the rest of the report is not printed");
        } else {
            tracing::warn!(%error, "cannot write the report to stdout; the run goes on");
        }
    }
}

/// `println!`, as [`print`].
pub fn println(text: &str) {
    print(&format!("{text}\n"));
}
