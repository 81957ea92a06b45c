//! A progress line on stderr for long runs, only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Redraw at most this often.
const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// Counts finished writes and redraws `writing N/M keys` now and then.
pub struct Progress {
    total: usize,
    done: AtomicUsize,
    last_draw: Mutex<Option<Instant>>,
    enabled: bool,
}

impl Progress {
    /// Shows progress for `total` writes when stderr is a terminal and the run is long
    /// enough to need it.
    pub fn new(total: usize) -> Progress {
        Progress {
            total,
            done: AtomicUsize::new(0),
            last_draw: Mutex::new(None),
            enabled: total >= 500 && std::io::stderr().is_terminal(),
        }
    }

    /// One more write finished.
    pub fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last_draw.lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < REDRAW_EVERY) && done < self.total {
            return;
        }
        *last = Some(Instant::now());
        let _ = write!(std::io::stderr(), "\rwriting {done}/{} keys", self.total);
    }

    /// Clears the progress line.
    pub fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
