//! Load: manifest files, directories and stdin → validated [`Desired`] state.
//!
//! Every problem of every file is collected and reported at once, each with its file,
//! line and field, before anything talks to NATS.

mod resolve;
mod validate;
pub mod yaml;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::desired::{Desired, Origin};

pub use resolve::check_value_sizes;
pub use validate::LoadOptions;

/// Where manifests come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file, or a directory searched recursively for `*.yaml`, `*.yml` and `*.json`.
    Path(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Input {
    /// `-` means stdin, anything else a path.
    pub fn parse(text: &str) -> Input {
        if text == "-" {
            Input::Stdin
        } else {
            Input::Path(PathBuf::from(text))
        }
    }
}

/// The loaded state plus what was skipped.
#[derive(Debug, Default)]
pub struct Loaded {
    pub desired: Desired,
    /// Documents of other kinds, skipped (`file:line: skipped v1/ConfigMap default/x`).
    pub skipped: Vec<String>,
}

/// One problem in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub origin: Origin,
    /// The field path, e.g. `spec.history`, when the problem is in one field.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: {field}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

/// All problems found in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "{count} problem{} in the manifests:",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            writeln!(f, "  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// Reads and validates every input. Nothing is returned unless everything is valid.
pub fn load(inputs: &[Input], options: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let mut errors = Vec::new();
    let mut sources = Vec::new();
    for input in inputs {
        match read_input(input) {
            Ok(found) => sources.extend(found),
            Err(error) => errors.push(error),
        }
    }
    if sources.is_empty() && errors.is_empty() {
        errors.push(LoadError {
            origin: Origin {
                source: describe_inputs(inputs),
                line: 0,
            },
            field: None,
            message: "no manifest files found (looked for *.yaml, *.yml and *.json)".into(),
        });
    }
    let mut collector = validate::Collector::new(options);
    for (name, text) in &sources {
        match yaml::parse_documents(text) {
            Ok(documents) => {
                for document in documents {
                    collector.add_document(name, &document);
                }
            }
            Err(error) => errors.push(LoadError {
                origin: Origin {
                    source: name.clone(),
                    line: error.line.unwrap_or(0),
                },
                field: None,
                message: format!("invalid YAML: {}", error.message),
            }),
        }
    }
    let (loaded, more) = collector.finish();
    errors.extend(more);
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(LoadErrors(errors))
    }
}

/// Parses manifests from a string (used for tests and for stdin).
pub fn load_str(name: &str, text: &str, options: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let documents = yaml::parse_documents(text).map_err(|error| {
        LoadErrors(vec![LoadError {
            origin: Origin {
                source: name.into(),
                line: error.line.unwrap_or(0),
            },
            field: None,
            message: format!("invalid YAML: {}", error.message),
        }])
    })?;
    let mut collector = validate::Collector::new(options);
    for document in &documents {
        collector.add_document(name, document);
    }
    let (loaded, errors) = collector.finish();
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(LoadErrors(errors))
    }
}

fn describe_inputs(inputs: &[Input]) -> String {
    inputs
        .iter()
        .map(|input| match input {
            Input::Stdin => "-".to_string(),
            Input::Path(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads one input into (display name, text) pairs.
fn read_input(input: &Input) -> Result<Vec<(String, String)>, LoadError> {
    match input {
        Input::Stdin => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|error| io_error("<stdin>", &error))?;
            Ok(vec![("<stdin>".into(), text)])
        }
        Input::Path(path) if path.is_dir() => {
            let mut files = Vec::new();
            collect_manifest_files(path, &mut files)
                .map_err(|error| io_error(&path.display().to_string(), &error))?;
            files.sort();
            files.into_iter().map(|file| read_file(&file)).collect()
        }
        Input::Path(path) => Ok(vec![read_file(path)?]),
    }
}

fn read_file(path: &Path) -> Result<(String, String), LoadError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| io_error(&name, &error))?;
    Ok((name, text))
}

fn io_error(name: &str, error: &std::io::Error) -> LoadError {
    LoadError {
        origin: Origin {
            source: name.into(),
            line: 0,
        },
        field: None,
        message: format!("cannot read: {error}"),
    }
}

/// Finds manifest files below `dir`, skipping hidden entries such as `.git`.
fn collect_manifest_files(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_manifest_files(&path, files)?;
        } else if path
            .extension()
            .is_some_and(|ext| matches!(ext.to_str(), Some("yaml" | "yml" | "json")))
        {
            files.push(path);
        }
    }
    Ok(())
}
