//! Where exported manifests go: stdout, or one file per bucket in a directory, written
//! only after every file is known to be writable.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::ExportError;
use super::entries::Entries;

/// One bucket's manifests.
pub struct BucketFile<'a> {
    /// The file name in an output directory (`<bucket object name>.yaml`).
    pub file_name: String,
    /// The comments and the `KeyValueBucket` document.
    pub head: String,
    /// The keys.
    pub keys: Keys<'a>,
}

/// A bucket's keys as they are written.
pub enum Keys<'a> {
    /// One `KeyValueEntry` each, rendered as they are written.
    Entries(Entries<'a>),
    /// One `KeyValueEntrySet` document (`---` and all), or nothing for no keys.
    Set(String),
}

impl BucketFile<'_> {
    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(self.head.as_bytes())?;
        match &self.keys {
            Keys::Entries(entries) => entries.write_to(out),
            Keys::Set(document) => out.write_all(document.as_bytes()),
        }
    }
}

/// Writes every file to stdout, one YAML stream.
pub fn to_stdout(files: &[BucketFile<'_>]) -> Result<(), ExportError> {
    let mut stdout = std::io::stdout().lock();
    for (index, file) in files.iter().enumerate() {
        let separator = if index == 0 { "" } else { "---\n" };
        stdout
            .write_all(separator.as_bytes())
            .and_then(|()| file.write_to(&mut stdout))
            .map_err(|error| ExportError::Output {
                path: "stdout".into(),
                error,
            })?;
    }
    stdout.flush().map_err(|error| ExportError::Output {
        path: "stdout".into(),
        error,
    })
}

/// Writes each file into `dir` (created if missing). An existing file is an error unless
/// `force`, checked for every file before the first is written; each file is written
/// whole or not at all (a temporary file renamed over it).
pub fn to_dir(
    dir: &Path,
    files: &[BucketFile<'_>],
    force: bool,
) -> Result<Vec<PathBuf>, ExportError> {
    let paths: Vec<PathBuf> = files.iter().map(|file| dir.join(&file.file_name)).collect();
    if !force {
        let existing: Vec<String> = paths
            .iter()
            .filter(|path| path.exists())
            .map(|path| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(ExportError::Exists(existing));
        }
    }
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |error| ExportError::Output { path, error }
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    for (file, path) in files.iter().zip(&paths) {
        let temporary = dir.join(format!(".{}.kvop-export", file.file_name));
        std::fs::File::create(&temporary)
            .map(std::io::BufWriter::new)
            .and_then(|mut out| {
                file.write_to(&mut out)?;
                out.into_inner()
                    .map(drop)
                    .map_err(|error| error.into_error())
            })
            .map_err(failed(&temporary))?;
        std::fs::rename(&temporary, path).map_err(|error| {
            let _ = std::fs::remove_file(&temporary);
            failed(path)(error)
        })?;
    }
    Ok(paths)
}
