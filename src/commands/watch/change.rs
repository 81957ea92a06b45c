//! What a file-system event means for the watch: which events can change what the
//! loader reads, and which say that a file is being written and is not complete yet.

use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind};

/// One event, as the watch needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Something the loader reads changed and is complete: a rename into place, a
    /// removal, a directory or link created, a link swapped on the way to an input.
    Touched,
    /// A file was created or written and is still open: not complete until closed.
    Writing(PathBuf),
    /// A file opened for writing was closed: complete.
    Closed(PathBuf),
    /// A file went away (removed, renamed elsewhere): no longer being written.
    Gone(PathBuf),
    /// Events were lost (the kernel's queue overflowed): only a full read can tell.
    Rescan,
}

/// What `event` means, or `None` when it cannot change what the loader reads: reads,
/// editors' scratch files, anything outside the inputs and the paths leading to them.
pub fn classify(event: &Event, roots: &[PathBuf]) -> Option<Vec<Change>> {
    if event.need_rescan() {
        return Some(vec![Change::Rescan]);
    }
    let changes: Vec<Change> = event
        .paths
        .iter()
        .filter(|path| matters(path, roots))
        .filter_map(|path| meaning(&event.kind, path))
        .collect();
    (!changes.is_empty()).then_some(changes)
}

fn meaning(kind: &EventKind, path: &Path) -> Option<Change> {
    let path = path.to_path_buf();
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Change::Closed(path)),
        // Opening and reading change nothing (the loader's own reads are such events).
        EventKind::Access(_) => None,
        // A regular file just created is about to be written; a link or a directory
        // is complete as it is (neither is ever closed after writing).
        EventKind::Create(CreateKind::Folder) => Some(Change::Touched),
        // Only manifests are waited for: a log or an asset kept open in the tree must
        // not hold the manifests back.
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_)) if is_regular_file(&path) => {
            is_manifest(&path).then_some(Change::Writing(path))
        }
        EventKind::Create(_) => Some(Change::Touched),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => Some(Change::Gone(path)),
        EventKind::Remove(_) => Some(Change::Gone(path)),
        _ => Some(Change::Touched),
    }
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| matches!(ext.to_str(), Some("yaml" | "yml" | "json")))
}

/// A regular file, not a link: `std::fs::symlink_metadata` does not follow the link,
/// which is never written through by anyone creating it.
fn is_regular_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.file_type().is_file())
}

/// Whether a path is read by the loader or leads to what it reads: an input, a manifest
/// or directory below a directory input, a directory or link on the way to an input,
/// or the `..data` link that kubelet swaps to update a ConfigMap, Secret or projected
/// volume (hidden, but every file of the volume is a link through it).
fn matters(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|root| {
        if path == root || root.starts_with(path) {
            return true;
        }
        match path.strip_prefix(root) {
            Ok(below) if !below.as_os_str().is_empty() => {
                let mut parts = below
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy());
                let first = parts.next().unwrap_or_default();
                if first == "..data" && parts.next().is_none() {
                    return true;
                }
                !below
                    .components()
                    .any(|part| is_scratch(&part.as_os_str().to_string_lossy()))
            }
            _ => false,
        }
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
    use notify::event::{DataChange, RemoveKind};

    fn event(kind: EventKind, path: &Path) -> Event {
        Event::new(kind).add_path(path.to_path_buf())
    }

    #[test]
    fn paths_that_matter() {
        let roots = vec![PathBuf::from("/m/dir"), PathBuf::from("/m/one.yaml")];
        let matter = |path: &str| matters(Path::new(path), &roots);
        assert!(matter("/m/dir/a.yaml"));
        assert!(matter("/m/dir/sub/b.yml"));
        assert!(matter("/m/dir/sub"), "a directory moved or removed");
        assert!(matter("/m/one.yaml"));
        assert!(matter("/m"), "a parent replaced");
        assert!(matter("/"), "a link swapped anywhere on the way");
        assert!(matter("/m/dir"));
        assert!(matter("/m/dir/..data"), "kubelet's volume update");
        assert!(!matter("/m/dir/..data/a.yaml"), "read through its own link");
        assert!(!matter("/m/dir/..2026_12_07_10_00_00.1234"));
        assert!(!matter("/m/dir/..data_tmp"));
        assert!(!matter("/m/other.yaml"), "a sibling of a file input");
        assert!(!matter("/m/dir/.a.yaml.swp"));
        assert!(!matter("/m/dir/.git/index"));
        assert!(!matter("/m/dir/a.yaml~"));
        assert!(!matter("/m/dir/4913"));
        assert!(!matter("/m/dir/#a.yaml#"));
    }

    #[test]
    fn a_file_is_being_written_from_its_creation_or_first_write_until_it_is_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("m.yaml");
        std::fs::write(&file, "x").expect("write");
        let link = dir.path().join("l.yaml");
        std::os::unix::fs::symlink(&file, &link).expect("link");
        let roots = vec![dir.path().to_path_buf()];
        let one = |kind, path: &Path| classify(&event(kind, path), &roots);
        let writing = Some(vec![Change::Writing(file.clone())]);
        assert_eq!(one(EventKind::Create(CreateKind::File), &file), writing);
        assert_eq!(
            one(EventKind::Modify(ModifyKind::Data(DataChange::Any)), &file),
            writing
        );
        assert_eq!(
            one(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                &file
            ),
            Some(vec![Change::Closed(file.clone())])
        );
        assert_eq!(
            one(EventKind::Create(CreateKind::File), &link),
            Some(vec![Change::Touched]),
            "a link is never closed after writing"
        );
        assert_eq!(
            one(EventKind::Modify(ModifyKind::Name(RenameMode::To)), &file),
            Some(vec![Change::Touched]),
            "renamed into place: complete"
        );
        assert_eq!(
            one(EventKind::Remove(RemoveKind::File), &file),
            Some(vec![Change::Gone(file.clone())])
        );
        assert_eq!(
            one(EventKind::Access(AccessKind::Open(AccessMode::Any)), &file),
            None
        );
        let scratch = dir.path().join(".m.yaml.swp");
        assert_eq!(one(EventKind::Create(CreateKind::File), &scratch), None);
        let asset = dir.path().join("logo.png");
        std::fs::write(&asset, "png").expect("asset");
        assert_eq!(
            one(EventKind::Modify(ModifyKind::Data(DataChange::Any)), &asset),
            None,
            "an asset being written holds nothing back"
        );
    }
}
