//! Noticing changes to the manifest files and waiting until they are settled: kernel
//! notifications (inotify through `notify`) for every input and every directory on the
//! way to it, a periodic look at the files as a safety net for what sends none (a mount
//! replaced, events lost), and before a read: quiet for the debounce, no file still open
//! for writing, no git operation in progress.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::change::{Change, classify};
use super::vcs;
use crate::manifest::{self, Input, TreeStamp};
use crate::metrics::Metrics;

/// How long a wait for a writer or for git goes on before the log says what it waits
/// for: a generator's pause is not news, a file left open for a minute is.
const SAY_WAITING_AFTER: Duration = Duration::from_secs(5);
/// How often a git operation in progress is looked at again: git's own files are not
/// watched (they change on every operation, most of which leave the tree alone).
const VCS_RECHECK: Duration = Duration::from_millis(100);

/// Why the files cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchFilesError {
    #[error("--watch cannot follow stdin (`-f -`): name files or directories")]
    Stdin,
    #[error("cannot watch {path} for changes: {reason}")]
    Notify { path: String, reason: String },
}

/// How the files are watched.
#[derive(Debug, Clone, Copy)]
pub struct Settling {
    /// Quiet time after the last change before the files are read.
    pub debounce: Duration,
    /// How often the files are looked at without a notification (zero: never).
    pub poll: Duration,
}

/// Watches the inputs and tells when what they hold changed and has settled.
pub struct FileWatcher {
    roots: Vec<PathBuf>,
    settling: Settling,
    events: mpsc::UnboundedReceiver<Change>,
    sender: mpsc::UnboundedSender<Change>,
    /// Replaced by [`FileWatcher::rearm`]; dropping it stops its notifications.
    watcher: Option<RecommendedWatcher>,
    /// The directories `watcher` was set on, to re-set it only when they changed.
    armed_on: Vec<Option<DirIdentity>>,
    /// A change came in and [`FileWatcher::changed`] is waiting for the files to settle:
    /// kept across a cancelled wait, so that a change is never lost.
    unsettled: bool,
    /// Files created or written and not closed since, with when that was first seen.
    writing: HashMap<PathBuf, Instant>,
    /// The files as last read, for the periodic look.
    last_read: Option<TreeStamp>,
    /// The periodic look's timer, kept across calls: [`FileWatcher::changed`] is
    /// cancelled whenever anything else wakes the watch, and a timer made per call
    /// would never fire under a steady stream of other events.
    look: tokio::time::Interval,
    metrics: Arc<Metrics>,
}

impl FileWatcher {
    /// Watches every input; `-` (stdin) cannot be watched.
    pub fn new(
        inputs: &[Input],
        settling: Settling,
        metrics: Arc<Metrics>,
    ) -> Result<FileWatcher, WatchFilesError> {
        let roots = inputs
            .iter()
            .map(|input| match input {
                Input::Stdin => Err(WatchFilesError::Stdin),
                Input::Path(path) => Ok(std::path::absolute(path).unwrap_or_else(|_| path.clone())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (sender, events) = mpsc::unbounded_channel();
        let mut watcher = FileWatcher {
            roots,
            settling,
            events,
            sender,
            watcher: None,
            armed_on: Vec::new(),
            unsettled: false,
            writing: HashMap::new(),
            last_read: None,
            look: poll_timer(settling.poll),
            metrics,
        };
        watcher.rearm()?;
        Ok(watcher)
    }

    /// Sets the watches up again if a directory they are on changed: a directory named
    /// on the command line may have been created, removed, or swapped for another
    /// behind a link anywhere on its path (git-sync, a release link, a mount), and a
    /// watch stays on the directory it was set on. Directories created below a watched
    /// one are followed without this. Re-setting costs a new notify thread and a walk
    /// of the tree, so an unchanged set of directories (every ordinary edit) keeps the
    /// watches it has.
    pub fn rearm(&mut self) -> Result<(), WatchFilesError> {
        let directories = watched_directories(&self.roots);
        if self.watcher.is_some() && directories == self.armed_on {
            return Ok(());
        }
        let roots = self.roots.clone();
        let sender = self.sender.clone();
        let handler = move |event: notify::Result<Event>| {
            let changes = match &event {
                Ok(event) => classify(event, &roots),
                // The kernel's queue overflowed or a watch broke: read again to be sure.
                Err(_) => Some(vec![Change::Rescan]),
            };
            for change in changes.into_iter().flatten() {
                let _ = sender.send(change);
            }
        };
        let mut watcher =
            notify::recommended_watcher(handler).map_err(|source| WatchFilesError::Notify {
                path: "the manifests".into(),
                reason: describe(&source),
            })?;
        for root in &self.roots {
            if root.is_dir() {
                watcher
                    .watch(root, RecursiveMode::Recursive)
                    .map_err(|source| notify_error(root, &source))?;
            }
            // Every directory on the way, without recursion: a file replaced by a
            // rename, a root created or removed, a link swapped anywhere on the path
            // all show there. One that cannot be watched (no permission to read it)
            // is left to the periodic look.
            for ancestor in root.ancestors().skip(1).filter(|dir| dir.is_dir()) {
                if let Err(error) = watcher.watch(ancestor, RecursiveMode::NonRecursive) {
                    tracing::debug!("not watching {}: {}", ancestor.display(), describe(&error));
                }
            }
        }
        self.watcher = Some(watcher);
        self.armed_on = directories;
        Ok(())
    }

    /// Waits for a change (notified, or found by the periodic look), then for the files
    /// to settle. Cancel-safe: a change seen by a cancelled call is returned by the next.
    pub async fn changed(&mut self) {
        if !self.unsettled {
            self.next_change().await;
            self.unsettled = true;
            self.metrics
                .files_pending("waiting for the files to be quiet");
        }
        self.settle().await;
        self.unsettled = false;
    }

    /// The next change: a notification, or a look that finds the files other than they
    /// were read.
    async fn next_change(&mut self) {
        loop {
            tokio::select! {
                change = self.events.recv() => match change {
                    Some(change) => {
                        self.note(change);
                        return;
                    }
                    None => return std::future::pending().await,
                },
                _ = self.look.tick() => {
                    if self.looks_changed() {
                        tracing::info!("the files changed without a notification (a mount or link replaced?): reading them again");
                        return;
                    }
                }
            }
        }
    }

    /// Whether the files differ from what was last read, or a directory on their way is
    /// another one now.
    fn looks_changed(&self) -> bool {
        let read = self.last_read.as_ref();
        watched_directories(&self.roots) != self.armed_on
            || read.is_some_and(|read| *read != manifest::stamp(&self.inputs()))
    }

    /// Records what the files were when read, for the periodic look.
    pub fn record_read(&mut self, stamp: TreeStamp) {
        self.last_read = Some(stamp);
    }

    /// The stamp of the files now.
    pub fn stamp(&self) -> TreeStamp {
        manifest::stamp(&self.inputs())
    }

    /// A git operation in progress in or above the tree, if any.
    pub fn vcs_busy(&self) -> Option<vcs::Operation> {
        let nested = self
            .last_read
            .as_ref()
            .map_or(&[][..], |read| &read.repositories[..]);
        vcs::in_progress(&self.roots, nested)
    }

    fn inputs(&self) -> Vec<Input> {
        self.roots.iter().cloned().map(Input::Path).collect()
    }

    /// Whether a change came in since the last call (taking it), without waiting: a
    /// change while the files were being read makes what was read suspect.
    pub fn take_pending(&mut self) -> bool {
        let unsettled = std::mem::take(&mut self.unsettled);
        let mut any = false;
        while let Ok(change) = self.events.try_recv() {
            self.note(change);
            any = true;
        }
        any || unsettled
    }

    /// Keeps track of files being written.
    fn note(&mut self, change: Change) {
        match change {
            Change::Writing(path) => {
                self.writing.entry(path).or_insert_with(Instant::now);
            }
            Change::Closed(path) | Change::Gone(path) => {
                self.writing.remove(&path);
            }
            // Lost events may have been closes: start over from what the files say.
            Change::Rescan => self.writing.clear(),
            Change::Touched => {}
        }
    }

    /// Waits until the files are settled: no change for the debounce interval, counted
    /// from the last change; no file written and still open; no git operation in
    /// progress. (Sleeping the interval and then looking for changes waited twice the
    /// interval for an editor's save: its later events, a few microseconds after the
    /// first, were only found after the first sleep.)
    pub async fn settle(&mut self) {
        let waiting_since = Instant::now();
        let mut said = false;
        let mut last_change = Instant::now();
        loop {
            let now = Instant::now();
            let quiet_at = last_change + self.settling.debounce;
            let (blocker, wake_at) = if now < quiet_at {
                (None, quiet_at)
            } else if let Some(path) = self.oldest_open_file() {
                // A close is an event: no need to look before one comes.
                (Some(Blocker::Open(path)), now + SAY_WAITING_AFTER)
            } else if let Some(operation) = self.vcs_busy() {
                (Some(Blocker::Vcs(operation)), now + VCS_RECHECK)
            } else {
                return;
            };
            if let Some(blocker) = &blocker {
                self.metrics.files_pending(&blocker.to_string());
                if !said && waiting_since.elapsed() >= SAY_WAITING_AFTER {
                    tracing::warn!("not reading the files yet: {blocker}");
                    said = true;
                }
            }
            tokio::select! {
                change = self.events.recv() => match change {
                    Some(change) => {
                        self.note(change);
                        last_change = Instant::now();
                    }
                    None => return,
                },
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    /// The quiet time after a change.
    pub fn debounce(&self) -> Duration {
        self.settling.debounce
    }

    /// Forgets files still open for writing: SIGHUP reads the files as they are.
    pub fn forget_writers(&mut self) {
        self.writing.clear();
    }

    fn oldest_open_file(&self) -> Option<PathBuf> {
        self.writing
            .iter()
            .min_by_key(|(_, since)| **since)
            .map(|(path, _)| path.clone())
    }
}

/// What the files wait for before they are read.
enum Blocker {
    Open(PathBuf),
    Vcs(vcs::Operation),
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocker::Open(path) => write!(
                f,
                "{} is still open for writing (read once it is closed; SIGHUP reads it as it is)",
                path.display()
            ),
            Blocker::Vcs(operation) => write!(f, "{operation}"),
        }
    }
}

/// A timer for the periodic look; never fires when the look is off.
fn poll_timer(every: Duration) -> tokio::time::Interval {
    let every = if every.is_zero() {
        Duration::from_secs(60 * 60 * 24 * 365)
    } else {
        every
    };
    let mut timer = tokio::time::interval_at(Instant::now() + every, every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer
}

/// A directory as the kernel knows it, whatever path or link leads to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirIdentity {
    device: u64,
    inode: u64,
}

/// Each root and every directory on its way: the directory there now, if any.
fn watched_directories(roots: &[PathBuf]) -> Vec<Option<DirIdentity>> {
    roots
        .iter()
        .flat_map(|root| root.ancestors().map(dir_identity))
        .collect()
}

fn dir_identity(path: &Path) -> Option<DirIdentity> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    metadata.is_dir().then(|| DirIdentity {
        device: metadata.dev(),
        inode: metadata.ino(),
    })
}

fn notify_error(path: &Path, source: &notify::Error) -> WatchFilesError {
    WatchFilesError::Notify {
        path: path.display().to_string(),
        reason: describe(source),
    }
}

/// A notify error in words: its own `Display` shows the paths in debug form.
fn describe(error: &notify::Error) -> String {
    match &error.kind {
        notify::ErrorKind::Io(io) => io.to_string(),
        notify::ErrorKind::PathNotFound => "no such file or directory".into(),
        notify::ErrorKind::MaxFilesWatch => {
            "too many watches (raise fs.inotify.max_user_watches)".into()
        }
        notify::ErrorKind::Generic(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_swapped_behind_a_link_anywhere_on_the_path_is_a_different_directory() {
        let base = tempfile::tempdir().expect("tempdir");
        let (one, two, link) = (
            base.path().join("releases/one"),
            base.path().join("releases/two"),
            base.path().join("current"),
        );
        std::fs::create_dir_all(one.join("kv")).expect("one");
        std::fs::create_dir_all(two.join("kv")).expect("two");
        std::os::unix::fs::symlink(&one, &link).expect("link");
        let roots = vec![link.join("kv"), base.path().join("absent.yaml")];
        let before = watched_directories(&roots);
        std::fs::write(one.join("kv/a.yaml"), "x").expect("an edit");
        assert_eq!(
            watched_directories(&roots),
            before,
            "an edit changes nothing"
        );
        let swap = base.path().join("current.new");
        std::os::unix::fs::symlink(&two, &swap).expect("new link");
        std::fs::rename(&swap, &link).expect("swap");
        assert_ne!(
            watched_directories(&roots),
            before,
            "the link above the root now leads elsewhere"
        );
    }
}
