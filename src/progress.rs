//! Progress lines on stderr for long runs, only when stderr is a terminal: writes
//! counted, keys an export has read, and the step a long load or observe is in.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::manifest::LoadStep;

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

/// A bucket's key count is shown once it has read this many: a small bucket is read in
/// a blink, and a large one shows its first line without waiting for a clock.
pub const KEYS_SHOWN_FROM: usize = 1_000;

/// Keys read per bucket by `kvop export`, redrawn as `reading bucket "b": 12,000 keys`
/// at most every [`REDRAW_EVERY`] once a bucket has read [`KEYS_SHOWN_FROM`] keys.
pub struct KeysRead {
    enabled: bool,
    last_draw: Mutex<Option<Instant>>,
}

/// The count of one bucket.
pub struct BucketKeys<'a> {
    progress: &'a KeysRead,
    bucket: &'a str,
    read: AtomicUsize,
}

impl KeysRead {
    /// Draws only when stderr is a terminal: a CI log or a pipe gets no progress lines.
    pub fn new() -> KeysRead {
        KeysRead {
            enabled: std::io::stderr().is_terminal(),
            last_draw: Mutex::new(None),
        }
    }

    /// A counter for one bucket's keys.
    pub fn bucket<'a>(&'a self, bucket: &'a str) -> BucketKeys<'a> {
        BucketKeys {
            progress: self,
            bucket,
            read: AtomicUsize::new(0),
        }
    }

    /// Clears the line, if one was drawn, before the run prints anything else.
    pub fn finish(&self) {
        if let Ok(last) = self.last_draw.lock()
            && last.is_some()
        {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

impl Default for KeysRead {
    fn default() -> Self {
        KeysRead::new()
    }
}

impl BucketKeys<'_> {
    /// One more key read.
    pub fn tick(&self) {
        let read = self.read.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.progress.enabled || read < KEYS_SHOWN_FROM {
            return;
        }
        let Ok(mut last) = self.progress.last_draw.lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < REDRAW_EVERY) && read != KEYS_SHOWN_FROM {
            return;
        }
        *last = Some(Instant::now());
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[2K{}",
            keys_read_line(self.bucket, read)
        );
    }
}

/// `reading bucket "b": 12,000 keys`.
pub fn keys_read_line(bucket: &str, read: usize) -> String {
    let digits = read.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("reading bucket {bucket:?}: {grouped} keys")
}

/// Inputs from this size on show the loading line: smaller ones load in a blink.
pub const LOADING_SHOWN_FROM_BYTES: usize = 1024 * 1024;

/// A line on stderr naming the step a long run is in (loading, observing) and the time
/// spent, redrawn by a thread of its own: parsing one big file gives the caller no chance
/// to redraw. Drawn only when stderr is a terminal and only once [`Activity::reveal`]ed.
pub struct Activity {
    shared: Arc<Shared>,
    drawer: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    text: Mutex<String>,
    revealed: AtomicBool,
    finished: Mutex<bool>,
    wake: Condvar,
}

impl Activity {
    /// An activity line for this run, idle until revealed.
    pub fn new() -> Activity {
        let shared = Arc::new(Shared {
            text: Mutex::new(String::new()),
            revealed: AtomicBool::new(false),
            finished: Mutex::new(false),
            wake: Condvar::new(),
        });
        let drawer = std::io::stderr().is_terminal().then(|| {
            let shared = shared.clone();
            std::thread::spawn(move || shared.draw_until_finished())
        });
        Activity { shared, drawer }
    }

    /// What the run is doing now.
    pub fn set(&self, text: impl Into<String>) {
        if let Ok(mut current) = self.shared.text.lock() {
            *current = text.into();
        }
    }

    /// Prints a line of its own on stderr, above the activity line.
    pub fn note(&self, line: &str) {
        // Under the text lock, which the drawer holds while it draws: lines never mix.
        let _drawing = self.shared.text.lock();
        let clear = if self.drawer.is_some() {
            "\r\x1b[2K"
        } else {
            ""
        };
        let _ = writeln!(std::io::stderr(), "{clear}{line}");
    }

    /// Starts drawing: the work is large enough to take a while.
    pub fn reveal(&self) {
        self.shared.revealed.store(true, Ordering::Relaxed);
    }

    /// Stops drawing and clears the line, before the report is printed.
    pub fn finish(&mut self) {
        if let Ok(mut finished) = self.shared.finished.lock() {
            *finished = true;
        }
        self.shared.wake.notify_all();
        if let Some(drawer) = self.drawer.take() {
            let _ = drawer.join();
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Shared {
    fn draw_until_finished(&self) {
        let started = Instant::now();
        let mut drawn = false;
        let Ok(mut finished) = self.finished.lock() else {
            return;
        };
        while !*finished {
            if self.revealed.load(Ordering::Relaxed)
                && let Ok(text) = self.text.lock()
            {
                let line = activity_line(&text, started.elapsed());
                let _ = write!(std::io::stderr(), "\r\x1b[2K{line}");
                drawn = true;
            }
            finished = match self.wake.wait_timeout(finished, REDRAW_EVERY) {
                Ok((guard, _)) => guard,
                Err(_) => return,
            };
        }
        if drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// `observing 2 buckets (1.4s)`.
pub fn activity_line(text: &str, elapsed: Duration) -> String {
    format!("{text} ({:.1}s)", elapsed.as_secs_f64())
}

/// The activity text for a step of loading.
pub fn loading_text(step: LoadStep) -> String {
    match step {
        LoadStep::Read { files, bytes } => format!(
            "loading manifests: read {files} file{} ({:.1} MB)",
            if files == 1 { "" } else { "s" },
            bytes as f64 / 1e6
        ),
        LoadStep::Parsing { parsed, bytes } => format!(
            "loading manifests: parsing and checking ({:.1} of {:.1} MB done)",
            parsed as f64 / 1e6,
            bytes as f64 / 1e6
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_loading_step_says_how_far_it_is() {
        for (step, text) in [
            (
                LoadStep::Read {
                    files: 1,
                    bytes: 26_000_000,
                },
                "loading manifests: read 1 file (26.0 MB)",
            ),
            (
                LoadStep::Parsing {
                    parsed: 5_250_000,
                    bytes: 26_000_000,
                },
                "loading manifests: parsing and checking (5.2 of 26.0 MB done)",
            ),
        ] {
            assert_eq!(loading_text(step), text);
        }
        assert_eq!(
            activity_line("observing 2 buckets", Duration::from_millis(1440)),
            "observing 2 buckets (1.4s)"
        );
    }

    #[test]
    fn key_counts_are_grouped_by_thousands() {
        for (read, line) in [
            (999, "reading bucket \"b\": 999 keys"),
            (1_000, "reading bucket \"b\": 1,000 keys"),
            (12_000, "reading bucket \"b\": 12,000 keys"),
            (1_234_567, "reading bucket \"b\": 1,234,567 keys"),
        ] {
            assert_eq!(keys_read_line("b", read), line);
        }
    }
}
