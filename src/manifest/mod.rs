//! Load: manifest files, directories and stdin → validated [`Desired`] state.
//!
//! Every problem of every file is collected and reported at once, each with its file,
//! line and field, before anything talks to NATS. Value sizes are the exception: they
//! are checked once the buckets are observed (`pass::check_against_server`), since only a
//! value that will be written can be too large.

mod entry_sets;
mod files;
mod resolve;
mod validate;
mod value_blocks;
mod value_sources;
mod wording;
mod writable;
pub mod yaml;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::desired::{Desired, Origin};
use crate::problem::Problem;

pub use files::{FileStamp, TreeStamp, stamp};
pub use validate::LoadOptions;
pub use writable::{Known, Limits, Unwritable, check_writable};

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

impl From<&LoadError> for Problem {
    fn from(error: &LoadError) -> Problem {
        Problem {
            file: Some(error.origin.source.to_string()),
            // Line 0 is how an origin says "the whole file".
            line: Some(error.origin.line).filter(|line| *line > 0),
            field: error.field.clone(),
            ..Problem::general(error.message.clone())
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

/// How far loading has come, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStep {
    /// Every file is read: how many, and their size.
    Read { files: usize, bytes: usize },
    /// Parsing and checking the documents: `parsed` of `bytes` bytes are done.
    Parsing { parsed: usize, bytes: usize },
}

/// Reads and validates every input. Nothing is returned unless everything is valid.
pub fn load(inputs: &[Input], options: &LoadOptions) -> Result<Loaded, LoadErrors> {
    load_with_progress(inputs, options, &|_| {})
}

/// [`load`], telling `progress` each step.
pub fn load_with_progress(
    inputs: &[Input],
    options: &LoadOptions,
    progress: &dyn Fn(LoadStep),
) -> Result<Loaded, LoadErrors> {
    let mut errors = Vec::new();
    let mut reader = files::Reader::default();
    for input in inputs {
        reader.read_input(input, &mut errors);
    }
    let files::Reader {
        sources, notices, ..
    } = reader;
    let bytes = sources.iter().map(|(_, text)| text.len()).sum();
    progress(LoadStep::Read {
        files: sources.len(),
        bytes,
    });
    if sources.is_empty() && errors.is_empty() {
        errors.push(LoadError {
            origin: Origin {
                source: describe_inputs(inputs).into(),
                line: 0,
            },
            field: None,
            message: "no manifest files found (looked for *.yaml, *.yml and *.json)".into(),
        });
    }
    // Each text is copied into the `Arc` its documents share, and the read one freed.
    let (names, texts): (Vec<Arc<str>>, Vec<Arc<str>>) = sources
        .into_iter()
        .map(|(name, text)| (Arc::from(name), Arc::from(text)))
        .unzip();
    let (mut loaded, more) = read_and_check(&names, texts, options, &mut |parsed| {
        progress(LoadStep::Parsing { parsed, bytes });
    });
    errors.extend(more);
    in_reading_order(&mut errors, &names);
    if errors.is_empty() {
        loaded.skipped.splice(0..0, notices);
        Ok(loaded)
    } else {
        Err(LoadErrors(errors))
    }
}

/// Parses manifests from a string (used for tests and for stdin).
pub fn load_str(name: &str, text: &str, options: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let (loaded, mut errors) = read_and_check(
        &[Arc::from(name)],
        vec![Arc::from(text)],
        options,
        &mut |_| {},
    );
    errors.sort_by_key(|error| error.origin.line);
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(LoadErrors(errors))
    }
}

/// Parses and checks every document of `texts` (named `names`), on every core for a
/// large input. Each document is checked as soon as it is parsed and then dropped: the
/// load holds the texts and the desired state, never every parsed document at once.
fn read_and_check(
    names: &[Arc<str>],
    texts: Vec<Arc<str>>,
    options: &LoadOptions,
    progress: &mut dyn FnMut(usize),
) -> (Loaded, Vec<LoadError>) {
    let new_checker = || Checker {
        names,
        collector: validate::Collector::new(),
    };
    // Each run's collector is moved into one as soon as the runs before it are in: its
    // lists go back to the arena of the thread that read it (glibc gives each thread
    // its own), which reuses the memory for its next run. Joined at the end instead,
    // they held 17 MB at 100,000 entries that no later step could reuse.
    let mut all = validate::Collector::new();
    yaml::read_files(
        &texts,
        yaml::Paths::All,
        &new_checker,
        progress,
        &mut |checker| all.merge(checker.collector),
    );
    // What the checks kept of the texts (to find a field's line) goes with the checks.
    drop(texts);
    all.finish(options)
}

/// Checks the documents of one run of a file as they are parsed.
struct Checker<'a> {
    /// Shared by every origin in its file.
    names: &'a [Arc<str>],
    collector: validate::Collector,
}

impl yaml::Sink for Checker<'_> {
    fn document(&mut self, file: usize, document: yaml::Document) {
        let name = &self.names[file];
        // A `v1 List` document (`kubectl get kvb,kve -o yaml`) stands for its items.
        match document.list_items() {
            Some(items) => items
                .iter()
                .for_each(|item| self.collector.add_document(name, item)),
            None => self.collector.add_document(name, &document),
        }
    }

    fn syntax_error(&mut self, file: usize, error: yaml::SyntaxError) {
        self.collector
            .add_error(invalid_yaml(&self.names[file], &error));
    }
}

/// Sorts problems as a reader meets them: file by file in the order they were read, by
/// line within a file; problems of inputs that are not a file read (a directory that
/// cannot be listed) first. The sort is stable: problems of one line keep their order.
fn in_reading_order(errors: &mut [LoadError], names: &[Arc<str>]) {
    let order: std::collections::HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(index, name)| (name.as_ref(), index + 1))
        .collect();
    errors.sort_by_key(|error| {
        (
            order
                .get(error.origin.source.as_ref())
                .copied()
                .unwrap_or(0),
            error.origin.line,
        )
    });
}

fn invalid_yaml(source: &str, error: &yaml::SyntaxError) -> LoadError {
    LoadError {
        origin: Origin {
            source: source.into(),
            line: error.line.unwrap_or(0),
        },
        field: None,
        message: format!("invalid YAML: {}", error.message),
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

#[cfg(test)]
mod tests;
