//! Noticing changes to the manifest files: kernel notifications (inotify through
//! `notify`) for every input, filtered to what the loader would read, debounced so that
//! an editor's save (write a temporary file, rename it over the original) is one reload.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::manifest::Input;

/// Why the files cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchFilesError {
    #[error("--watch cannot follow stdin (`-f -`): name files or directories")]
    Stdin,
    #[error("cannot watch {path} for changes: {source}")]
    Notify {
        path: String,
        #[source]
        source: notify::Error,
    },
}

/// Watches the inputs and tells when what they hold may have changed.
pub struct FileWatcher {
    roots: Vec<PathBuf>,
    debounce: Duration,
    events: mpsc::UnboundedReceiver<()>,
    sender: mpsc::UnboundedSender<()>,
    /// Replaced by [`FileWatcher::rearm`]; dropping it stops its notifications.
    watcher: Option<RecommendedWatcher>,
    /// The directories `watcher` was set on, to re-set it only when they changed.
    armed_on: Vec<Option<DirIdentity>>,
    /// A change came in and [`FileWatcher::changed`] is waiting for quiet: kept across a
    /// cancelled wait, so that a change is never lost.
    settling: bool,
}

impl FileWatcher {
    /// Watches every input; `-` (stdin) cannot be watched.
    pub fn new(inputs: &[Input], debounce: Duration) -> Result<FileWatcher, WatchFilesError> {
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
            debounce,
            events,
            sender,
            watcher: None,
            armed_on: Vec::new(),
            settling: false,
        };
        watcher.rearm()?;
        Ok(watcher)
    }

    /// Sets the watches up again if a directory they are on changed: after a reload, a
    /// directory named on the command line may have been created, removed, or swapped
    /// for another behind a link (as git-sync does), and a watch stays on the directory
    /// it was set on. Directories created below a watched one are followed without this.
    /// Re-setting costs a new notify thread and a walk of the tree, so an unchanged set
    /// of directories (every ordinary edit) keeps the watches it has.
    pub fn rearm(&mut self) -> Result<(), WatchFilesError> {
        let directories = watched_directories(&self.roots);
        if self.watcher.is_some() && directories == self.armed_on {
            return Ok(());
        }
        let roots = self.roots.clone();
        let sender = self.sender.clone();
        let handler = move |event: notify::Result<Event>| {
            let relevant = match &event {
                Ok(event) => matters(event, &roots),
                // The kernel's queue overflowed or a watch broke: reload to be sure.
                Err(_) => true,
            };
            if relevant {
                let _ = sender.send(());
            }
        };
        let mut watcher =
            notify::recommended_watcher(handler).map_err(|source| WatchFilesError::Notify {
                path: "the manifests".into(),
                source,
            })?;
        for root in &self.roots {
            if root.is_dir() {
                watcher
                    .watch(root, RecursiveMode::Recursive)
                    .map_err(|source| notify_error(root, source))?;
            }
            // The parent too, without recursion: a file replaced by a rename, a root
            // created or removed, a link swapped all show there.
            if let Some(parent) = root.parent().filter(|parent| parent.is_dir()) {
                watcher
                    .watch(parent, RecursiveMode::NonRecursive)
                    .map_err(|source| notify_error(parent, source))?;
            }
        }
        self.watcher = Some(watcher);
        self.armed_on = directories;
        Ok(())
    }

    /// Waits for a change, then for the files to be quiet for the debounce interval.
    /// Cancel-safe: a change seen by a cancelled call is returned by the next.
    pub async fn changed(&mut self) {
        if !self.settling {
            if self.events.recv().await.is_none() {
                return std::future::pending().await;
            }
            self.settling = true;
        }
        self.settle().await;
        self.settling = false;
    }

    /// Whether a change came in since the last call (taking it), without waiting: a
    /// change while the files were being read makes what was read suspect.
    pub fn take_pending(&mut self) -> bool {
        let settling = std::mem::take(&mut self.settling);
        self.drain() || settling
    }

    /// Takes every change that came in; whether there was one.
    fn drain(&mut self) -> bool {
        let mut any = false;
        while self.events.try_recv().is_ok() {
            any = true;
        }
        any
    }

    /// Waits until no change has come in for the debounce interval, counted from the
    /// last change. (Sleeping the interval and then looking for changes waited twice
    /// the interval for an editor's save: its later events, a few microseconds after
    /// the first, were only found after the first sleep.)
    pub async fn settle(&mut self) {
        let mut last_change = tokio::time::Instant::now();
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(_) => last_change = tokio::time::Instant::now(),
                    None => return,
                },
                () = tokio::time::sleep_until(last_change + self.debounce) => return,
            }
        }
    }
}

/// A directory as the kernel knows it, whatever path or link leads to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirIdentity {
    device: u64,
    inode: u64,
}

/// Each root and each root's parent: the directory there now, if any.
fn watched_directories(roots: &[PathBuf]) -> Vec<Option<DirIdentity>> {
    roots
        .iter()
        .flat_map(|root| [dir_identity(root), root.parent().and_then(dir_identity)])
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

fn notify_error(path: &Path, source: notify::Error) -> WatchFilesError {
    WatchFilesError::Notify {
        path: path.display().to_string(),
        source,
    }
}

/// Whether an event can change what the loader reads: a change to an input, to a
/// manifest or directory below a directory input, or to a directory on the way to an
/// input. Reads, hidden entries (`.git`, `.file.yaml.swp`) and editors' scratch files
/// are not.
fn matters(event: &Event, roots: &[PathBuf]) -> bool {
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    if event.need_rescan() {
        return true;
    }
    event.paths.iter().any(|path| {
        roots.iter().any(|root| {
            if path == root || root.starts_with(path) {
                return true;
            }
            match path.strip_prefix(root) {
                Ok(below) if !below.as_os_str().is_empty() => !below
                    .components()
                    .any(|part| is_scratch(&part.as_os_str().to_string_lossy())),
                _ => false,
            }
        })
    })
}

/// A name the loader never reads that editors and tools write while saving: hidden
/// files, backups (`file~`), vim's swap files and its `4913` probe, emacs' `#file#`.
fn is_scratch(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || (name.starts_with('#') && name.ends_with('#'))
        || (!name.is_empty() && name.bytes().all(|byte| byte.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_swapped_behind_a_link_is_a_different_directory() {
        let base = tempfile::tempdir().expect("tempdir");
        let (one, two, link) = (
            base.path().join("one"),
            base.path().join("two"),
            base.path().join("current"),
        );
        std::fs::create_dir(&one).expect("one");
        std::fs::create_dir(&two).expect("two");
        std::os::unix::fs::symlink(&one, &link).expect("link");
        let roots = vec![link.clone(), base.path().join("absent.yaml")];
        let before = watched_directories(&roots);
        assert_eq!(before.len(), 4);
        assert!(before[0].is_some() && before[1].is_some() && before[2].is_none());
        std::fs::write(one.join("a.yaml"), "x").expect("an edit");
        assert_eq!(
            watched_directories(&roots),
            before,
            "an edit changes nothing"
        );
        std::fs::remove_file(&link).expect("unlink");
        std::os::unix::fs::symlink(&two, &link).expect("relink");
        assert_ne!(
            watched_directories(&roots),
            before,
            "the link now leads elsewhere"
        );
    }

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn changes_that_matter() {
        let roots = vec![PathBuf::from("/m/dir"), PathBuf::from("/m/one.yaml")];
        let modify = EventKind::Modify(notify::event::ModifyKind::Any);
        let matter = |path| matters(&event(modify, path), &roots);
        assert!(matter("/m/dir/a.yaml"));
        assert!(matter("/m/dir/sub/b.yml"));
        assert!(matter("/m/dir/sub"), "a directory moved or removed");
        assert!(matter("/m/one.yaml"));
        assert!(matter("/m"), "a parent replaced");
        assert!(matter("/m/dir"));
        assert!(!matter("/m/other.yaml"), "a sibling of a file input");
        assert!(!matter("/m/dir/.a.yaml.swp"));
        assert!(!matter("/m/dir/.git/index"));
        assert!(!matter("/m/dir/a.yaml~"));
        assert!(!matter("/m/dir/4913"));
        assert!(!matter("/m/dir/#a.yaml#"));
        let read = EventKind::Access(notify::event::AccessKind::Any);
        assert!(!matters(&event(read, "/m/dir/a.yaml"), &roots));
    }
}
