//! Load: manifest files, directories and stdin → validated [`Desired`] state.
//!
//! Every problem of every file is collected and reported at once, each with its file,
//! line and field, before anything talks to NATS.

mod files;
mod resolve;
mod validate;
mod wording;
pub mod yaml;

use std::fmt;
use std::path::PathBuf;

use crate::desired::{Desired, Origin};

pub use resolve::check_against_server;
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

/// How far loading has come, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStep {
    /// Every file is read: how many, and their size.
    Read { files: usize, bytes: usize },
    /// Parsing file `file` (1-based) of `files`, after `parsed` of `bytes` bytes.
    Parsing {
        file: usize,
        files: usize,
        parsed: usize,
        bytes: usize,
    },
    /// Checking every document.
    Checking { documents: usize },
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
    let mut parsed = 0;
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
    let mut documents: Vec<(&str, yaml::Document)> = Vec::new();
    for (index, (name, text)) in sources.iter().enumerate() {
        progress(LoadStep::Parsing {
            file: index + 1,
            files: sources.len(),
            parsed,
            bytes,
        });
        parsed += text.len();
        let yaml::Parsed {
            documents: parsed_documents,
            errors: syntax_errors,
        } = yaml::parse_each_document(text);
        documents.extend(
            expand_lists(parsed_documents)
                .into_iter()
                .map(|document| (name.as_str(), document)),
        );
        errors.extend(syntax_errors.iter().map(|error| invalid_yaml(name, error)));
    }
    progress(LoadStep::Checking {
        documents: documents.len(),
    });
    let (mut loaded, more) = check_documents(&documents, options).finish();
    errors.extend(more);
    in_reading_order(&mut errors, &sources);
    if errors.is_empty() {
        loaded.skipped.splice(0..0, notices);
        Ok(loaded)
    } else {
        Err(LoadErrors(errors))
    }
}

/// Parses manifests from a string (used for tests and for stdin).
pub fn load_str(name: &str, text: &str, options: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let parsed = yaml::parse_each_document(text);
    let mut errors: Vec<LoadError> = parsed
        .errors
        .iter()
        .map(|error| invalid_yaml(name, error))
        .collect();
    let documents: Vec<(&str, yaml::Document)> = expand_lists(parsed.documents)
        .into_iter()
        .map(|document| (name, document))
        .collect();
    let (loaded, more) = check_documents(&documents, options).finish();
    errors.extend(more);
    errors.sort_by_key(|error| error.origin.line);
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(LoadErrors(errors))
    }
}

/// Sorts problems as a reader meets them: file by file in the order they were read, by
/// line within a file; problems of inputs that are not a file read (a directory that
/// cannot be listed) first. The sort is stable: problems of one line keep their order.
fn in_reading_order(errors: &mut [LoadError], sources: &[(String, String)]) {
    let order: std::collections::HashMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(index, (name, _))| (name.as_str(), index + 1))
        .collect();
    errors.sort_by_key(|error| {
        (
            order
                .get(error.origin.source.as_str())
                .copied()
                .unwrap_or(0),
            error.origin.line,
        )
    });
}

fn invalid_yaml(source: &str, error: &yaml::SyntaxError) -> LoadError {
    LoadError {
        origin: Origin {
            source: source.to_string(),
            line: error.line.unwrap_or(0),
        },
        field: None,
        message: format!("invalid YAML: {}", error.message),
    }
}

/// A `v1 List` document (`kubectl get kvb,kve -o yaml`) stands for its items.
fn expand_lists(documents: Vec<yaml::Document>) -> Vec<yaml::Document> {
    let mut expanded = Vec::with_capacity(documents.len());
    for document in documents {
        match document.list_items() {
            Some(items) => expanded.extend(items),
            None => expanded.push(document),
        }
    }
    expanded
}

/// Below this many documents they are checked on one thread.
const PARALLEL_MIN_DOCUMENTS: usize = 2_000;

/// Checks every document, on every core for large inputs: each thread checks a slice
/// with its own collector, and the collectors are merged in document order, so errors
/// and declarations keep their order.
fn check_documents<'a>(
    documents: &'a [(&'a str, yaml::Document)],
    options: &'a LoadOptions,
) -> validate::Collector<'a> {
    let threads = std::thread::available_parallelism().map_or(1, |count| count.get());
    if threads <= 1 || documents.len() < PARALLEL_MIN_DOCUMENTS {
        let mut collector = validate::Collector::new(options);
        for (name, document) in documents {
            collector.add_document(name, document);
        }
        return collector;
    }
    let slice = documents.len().div_ceil(threads);
    let parts: Vec<validate::Collector<'a>> = std::thread::scope(|scope| {
        let handles: Vec<_> = documents
            .chunks(slice)
            .map(|chunk| {
                let check = move || {
                    let mut collector = validate::Collector::new(options);
                    for (name, document) in chunk {
                        collector.add_document(name, document);
                    }
                    collector
                };
                yaml::spawn_deep(scope, check)
            })
            .collect();
        // A panic is re-raised: an empty collector in its place would lose documents.
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut merged = validate::Collector::new(options);
    for part in parts {
        merged.merge(part);
    }
    merged
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
