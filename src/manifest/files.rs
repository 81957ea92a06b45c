//! Finding and reading manifest files: the inputs named on the command line, the
//! manifests below a directory, stdin.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Input, LoadError};
use crate::desired::Origin;

/// A file or directory as the filesystem knows it, whatever path or link led to it.
type FileId = (u64, u64);

fn file_id(metadata: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

/// Reads inputs into (display name, text) pairs. Each real directory is walked once and
/// each real file read once, however many paths or links lead to them: a link to an
/// ancestor would otherwise be followed forever.
#[derive(Default)]
pub(super) struct Reader {
    pub(super) sources: Vec<(String, String)>,
    /// What was left out on purpose (`path: skipped ...`), reported with the result.
    pub(super) notices: Vec<String>,
    /// The `.git` entries met (and skipped) on the walk: the repositories in the tree.
    repositories: Vec<PathBuf>,
    seen: std::collections::HashMap<FileId, PathBuf>,
}

impl Reader {
    pub(super) fn read_input(&mut self, input: &Input, errors: &mut Vec<LoadError>) {
        match input {
            Input::Stdin => {
                let mut text = String::new();
                match std::io::stdin().read_to_string(&mut text) {
                    Ok(_) => self.sources.push(("<stdin>".into(), text)),
                    Err(error) => errors.push(io_error(Path::new("<stdin>"), &error)),
                }
            }
            Input::Path(path) => match std::fs::metadata(path) {
                Ok(metadata) if metadata.is_dir() => {
                    for (file, _) in self.list(path, &metadata, errors) {
                        self.read_file(&file, errors);
                    }
                }
                Ok(metadata) => {
                    if self.first_visit(path, &metadata) {
                        self.read_file(path, errors);
                    }
                }
                Err(error) => errors.push(io_error(path, &error)),
            },
        }
    }

    /// Records a visit; false (with a notice) when another path already led there.
    fn first_visit(&mut self, path: &Path, metadata: &std::fs::Metadata) -> bool {
        match self.seen.entry(file_id(metadata)) {
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(path.to_path_buf());
                true
            }
            std::collections::hash_map::Entry::Occupied(first) => {
                self.notices.push(format!(
                    "{}: skipped: the same {} as {}, read once",
                    path.display(),
                    if metadata.is_dir() {
                        "directory"
                    } else {
                        "file"
                    },
                    first.get().display()
                ));
                false
            }
        }
    }

    /// The manifest files below `dir`, sorted by path, each with what `stat` said.
    fn list(
        &mut self,
        dir: &Path,
        metadata: &std::fs::Metadata,
        errors: &mut Vec<LoadError>,
    ) -> Vec<(PathBuf, std::fs::Metadata)> {
        let mut files = Vec::new();
        self.walk(dir, metadata, &mut files, errors);
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files
    }

    /// Finds manifest files below `dir`, skipping hidden entries such as `.git`. A
    /// problem with one entry is reported under that entry's own path and the walk goes
    /// on, so that every other file's problems are reported too.
    fn walk(
        &mut self,
        dir: &Path,
        metadata: &std::fs::Metadata,
        files: &mut Vec<(PathBuf, std::fs::Metadata)>,
        errors: &mut Vec<LoadError>,
    ) {
        if !self.first_visit(dir, metadata) {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) => return errors.push(io_error(dir, &error)),
        };
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(error) => {
                    errors.push(io_error(dir, &error));
                    continue;
                }
            };
            let hidden = path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'));
            if hidden {
                if path.file_name().is_some_and(|name| name == ".git") {
                    self.repositories.push(path);
                }
                continue;
            }
            let is_manifest = path
                .extension()
                .is_some_and(|ext| matches!(ext.to_str(), Some("yaml" | "yml" | "json")));
            // Through links, like the inputs named on the command line.
            match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_dir() => self.walk(&path, &metadata, files, errors),
                Ok(metadata) if is_manifest => {
                    if self.first_visit(&path, &metadata) {
                        files.push((path, metadata));
                    }
                }
                Ok(_) => {}
                // A dangling link or an entry gone meanwhile: a problem only where a
                // manifest was expected.
                Err(error) if is_manifest => errors.push(io_error(&path, &error)),
                Err(_) => {}
            }
        }
    }

    fn read_file(&mut self, path: &Path, errors: &mut Vec<LoadError>) {
        match std::fs::read(path).map(String::from_utf8) {
            Ok(Ok(text)) => self.sources.push((path.display().to_string(), text)),
            Ok(Err(not_text)) => errors.push(not_utf8(path, &not_text)),
            Err(error) => errors.push(io_error(path, &error)),
        }
    }
}

/// What `stat` says of one file the loader reads: equal stamps mean the same content
/// (a write changes the change time, to the nanosecond on every file system kvop
/// watches; a file replaced or a mount swapped changes the identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    id: FileId,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            id: file_id(metadata),
            size: metadata.size(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// The files the loader would read now, by path, each with its stamp (`None`: an input
/// that cannot be read). Taken before and after a read, equal stamps say that what was
/// read is what the files hold: nothing was written meanwhile.
#[derive(Debug, Clone, Default)]
pub struct TreeStamp {
    pub files: Vec<(PathBuf, Option<FileStamp>)>,
    /// The `.git` entries inside the tree (repositories checked out below an input).
    pub repositories: Vec<PathBuf>,
}

impl PartialEq for TreeStamp {
    fn eq(&self, other: &TreeStamp) -> bool {
        self.files == other.files
    }
}

/// Stamps what [`super::load`] would read from `inputs`, reading no file. Stdin has
/// no stamp.
pub fn stamp(inputs: &[Input]) -> TreeStamp {
    let mut reader = Reader::default();
    let mut errors = Vec::new();
    let mut stamps = Vec::new();
    for input in inputs {
        let Input::Path(path) = input else { continue };
        match std::fs::metadata(path) {
            Ok(metadata) if metadata.is_dir() => {
                // The directory's identity too (not its times, which scratch files
                // change): a mount swapped over it is another tree.
                let identity = FileStamp {
                    id: file_id(&metadata),
                    size: 0,
                    modified: (0, 0),
                    changed: (0, 0),
                };
                stamps.push((path.clone(), Some(identity)));
                let files = reader.list(path, &metadata, &mut errors);
                stamps.extend(
                    files
                        .into_iter()
                        .map(|(file, metadata)| (file, Some(FileStamp::of(&metadata)))),
                );
            }
            Ok(metadata) => stamps.push((path.clone(), Some(FileStamp::of(&metadata)))),
            Err(_) => stamps.push((path.clone(), None)),
        }
    }
    TreeStamp {
        files: stamps,
        repositories: reader.repositories,
    }
}

/// Both YAML parsers read text: a file that is not UTF-8 (Latin-1, UTF-16) is refused
/// before either sees it, at the line of its first byte that is not.
fn not_utf8(path: &Path, error: &std::string::FromUtf8Error) -> LoadError {
    let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
    let line = valid.iter().filter(|byte| **byte == b'\n').count() as u64 + 1;
    let byte = error
        .as_bytes()
        .get(valid.len())
        .copied()
        .unwrap_or_default();
    LoadError {
        origin: Origin {
            source: path.display().to_string().into(),
            line,
        },
        field: None,
        message: format!("not UTF-8 text: byte 0x{byte:02x} is not valid UTF-8"),
    }
}

fn io_error(path: &Path, error: &std::io::Error) -> LoadError {
    LoadError {
        origin: Origin {
            source: path.display().to_string().into(),
            line: 0,
        },
        field: None,
        message: format!("cannot read: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const BUCKET: &str =
        "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueBucket\nmetadata:\n  name: b\nspec: {}\n";

    fn read(inputs: &[Input]) -> (Reader, Vec<LoadError>) {
        let mut reader = Reader::default();
        let mut errors = Vec::new();
        for input in inputs {
            reader.read_input(input, &mut errors);
        }
        (reader, errors)
    }

    #[test]
    fn links_to_the_directory_itself_are_walked_once() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("bucket.yaml"), BUCKET).expect("write");
        for link in ["l1", "l2", "l3", "l4", "l5"] {
            symlink(".", dir.path().join(link)).expect("symlink");
        }
        let (reader, errors) = read(&[Input::Path(dir.path().to_path_buf())]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(reader.sources.len(), 1, "the one file, once");
        assert_eq!(reader.notices.len(), 5, "{:?}", reader.notices);
        assert!(reader.notices[0].contains("skipped: the same directory as"));
    }

    #[test]
    fn a_link_to_an_ancestor_loads_each_file_once() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("bucket.yaml"), BUCKET).expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/entry.yml"), BUCKET).expect("write");
        symlink("..", dir.path().join("sub/loop")).expect("symlink");
        let (reader, errors) = read(&[Input::Path(dir.path().to_path_buf())]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(reader.sources.len(), 2);
    }

    #[test]
    fn the_same_file_named_twice_or_linked_is_read_once() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("bucket.yaml");
        std::fs::write(&file, BUCKET).expect("write");
        symlink(&file, dir.path().join("alias.yaml")).expect("symlink");
        let (reader, errors) = read(&[
            Input::Path(dir.path().to_path_buf()),
            Input::Path(file.clone()),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(reader.sources.len(), 1);
        assert_eq!(reader.notices.len(), 2, "{:?}", reader.notices);
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_at_the_line_of_its_first_bad_byte() {
        let dir = tempfile::tempdir().expect("dir");
        let mut latin1 = BUCKET.as_bytes().to_vec();
        latin1.extend_from_slice(b"  description: caf\xe9\n");
        std::fs::write(dir.path().join("latin1.yaml"), latin1).expect("write");
        std::fs::write(dir.path().join("good.yaml"), BUCKET).expect("write");
        let (reader, errors) = read(&[Input::Path(dir.path().to_path_buf())]);
        assert_eq!(reader.sources.len(), 1, "the other file is still read");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].origin.source.ends_with("latin1.yaml"));
        assert_eq!(errors[0].origin.line, 6, "{errors:?}");
        assert!(
            errors[0].message.contains("not UTF-8 text: byte 0xe9"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn an_unreadable_manifest_is_reported_under_its_own_path_and_the_rest_is_read() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/good.yaml"), BUCKET).expect("write");
        symlink("/nonexistent/kvop", dir.path().join("sub/gone.yaml")).expect("symlink");
        // A dangling link that is not a manifest is not a problem.
        symlink("/nonexistent/kvop", dir.path().join("sub/README")).expect("symlink");
        let (reader, errors) = read(&[Input::Path(dir.path().to_path_buf())]);
        assert_eq!(reader.sources.len(), 1, "the readable file is still read");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].origin.source.ends_with("sub/gone.yaml"),
            "named by its own path: {}",
            errors[0].origin.source
        );
    }
}
