//! The only YAML code in kvop: multi-document parsing with the line of every field,
//! and YAML rendering of generated files.
//!
//! Documents are parsed into plain values first, by a restricted line reader for the
//! plain block subset manifests are written in (`block`), else with serde_yaml_ng where
//! it reads a document exactly as serde-saphyr does (`route` decides, `scan` and `fast`
//! tell): tracking spans costs serde-saphyr about as much again as parsing,
//! serde_yaml_ng parses 2.4–2.7× faster still, the line reader about ten times faster
//! again, and only a document with a problem needs the line of a field. A document's field lines are found when first asked for, by parsing that
//! document's text once more with spans (serde-saphyr, the reference reading).

#[cfg(test)]
mod agreement;
mod block;
#[cfg(test)]
mod block_agreement;
mod fast;
mod messages;
mod read;
mod route;
mod scan;
mod slices;
mod spanned;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use self::messages::syntax_error;
pub use self::read::{Sink, read_files};
pub use self::route::Paths;
use self::spanned::parse_spanned;

/// One YAML document of a file: its JSON value, the line it starts on and, on demand,
/// the line of each field.
#[derive(Debug, Clone)]
pub struct Document {
    /// 1-based line where the document's content starts.
    pub line: u64,
    pub value: serde_json::Value,
    fields: FieldLines,
}

/// Where a document's fields are, without its value: what a check keeps to name a
/// field's line later, so the document itself can be dropped once it is checked.
#[derive(Debug, Clone)]
pub struct FieldLines {
    /// The document's line: the answer for a path it does not hold.
    line: u64,
    /// Line of each node by dotted path (`spec.history`, `spec.sources[0].name`).
    /// Shared (`Arc`) with the items of a `List`.
    lines: OnceLock<Arc<BTreeMap<String, u64>>>,
    /// The document's text, to find field lines when they are first asked for.
    source: Option<DocumentText>,
    /// For an item of a `kind: List` document: its path there (`items[2]`), which
    /// prefixes every field path asked for.
    prefix: Option<Box<str>>,
}

/// Where a document's text is: a range of its file's text, which starts on line
/// `offset + 1`.
#[derive(Debug, Clone)]
struct DocumentText {
    file: Arc<str>,
    range: Range<usize>,
    offset: u64,
}

impl Document {
    /// The line of `path`, or of its nearest ancestor that exists in the document.
    pub fn line_of(&self, path: &str) -> u64 {
        self.fields.line_of(path)
    }

    /// The line of every node by dotted path.
    pub fn lines(&self) -> &BTreeMap<String, u64> {
        self.fields.lines()
    }

    /// What finds this document's field lines once the document is gone.
    pub fn field_lines(&self) -> FieldLines {
        self.fields.clone()
    }

    /// The items of a `v1 List` (what `kubectl get -o yaml` prints for several objects),
    /// each a document of its own that finds its fields' lines in this one; `None` for
    /// any other document.
    pub fn list_items(&self) -> Option<Vec<Document>> {
        let object = self.value.as_object()?;
        let is_list = object.get("apiVersion").and_then(|v| v.as_str()) == Some("v1")
            && object.get("kind").and_then(|v| v.as_str()) == Some("List");
        let items = object.get("items")?.as_array().filter(|_| is_list)?;
        Some(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let path = format!("items[{index}]");
                    let line = self.line_of(&path);
                    Document {
                        line,
                        value: item.clone(),
                        fields: FieldLines {
                            line,
                            lines: self.fields.lines.clone(),
                            source: self.fields.source.clone(),
                            prefix: Some(path.into()),
                        },
                    }
                })
                .collect(),
        )
    }
}

impl FieldLines {
    /// The line of `path`, or of its nearest ancestor that exists in the document.
    pub fn line_of(&self, path: &str) -> u64 {
        let lines = self.lines();
        let prefixed;
        let mut candidate = match &self.prefix {
            Some(prefix) if path.is_empty() => prefix,
            Some(prefix) => {
                prefixed = format!("{prefix}.{path}");
                prefixed.as_str()
            }
            None => path,
        };
        loop {
            if let Some(line) = lines.get(candidate) {
                return *line;
            }
            match candidate.rfind(['.', '[']) {
                Some(cut) => candidate = &candidate[..cut],
                None => return self.line,
            }
        }
    }

    /// The line of every node by dotted path.
    fn lines(&self) -> &BTreeMap<String, u64> {
        self.lines.get_or_init(|| {
            let Some(text) = &self.source else {
                return Arc::default();
            };
            // The text parsed once already; parsed again it gives the same document.
            parse_spanned(&text.file[text.range.clone()], text.offset)
                .ok()
                .and_then(|documents| documents.into_iter().next())
                .and_then(|document| document.fields.lines.into_inner())
                .unwrap_or_default()
        })
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: Option<u64>,
    pub message: String,
}

/// Parses every document of `text`; empty documents are skipped.
///
/// Documents are independent (anchors and aliases never cross a `---`), so each is
/// parsed on its own, and large files on every core.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    parse_documents_by(text, Paths::All)
}

/// [`parse_documents`] with every document parsed with spans: the reference the fast
/// path must agree with (for the differential fuzz target).
#[doc(hidden)]
pub fn parse_documents_spanned(text: &str) -> Result<Vec<Document>, SyntaxError> {
    parse_documents_by(text, Paths::SpannedOnly)
}

/// [`parse_documents`] with only the readers `paths` names (for the differential fuzz
/// target).
#[doc(hidden)]
pub fn parse_documents_by(text: &str, paths: Paths) -> Result<Vec<Document>, SyntaxError> {
    let Parsed { documents, errors } = parse_each_document_by(text, paths);
    match errors.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(documents),
    }
}

/// Every document of a file that parses, and a syntax error for each one that does not.
#[derive(Debug, Default)]
pub struct Parsed {
    pub documents: Vec<Document>,
    /// In file order; a document with an error yields no value, the next `---` starts
    /// afresh.
    pub errors: Vec<SyntaxError>,
}

impl Sink for Parsed {
    fn document(&mut self, _file: usize, document: Document) {
        self.documents.push(document);
    }

    fn syntax_error(&mut self, _file: usize, error: SyntaxError) {
        self.errors.push(error);
    }
}

/// Parses every document of `text` on its own, so that a syntax error costs only its
/// document: the loader reports every problem of a file at once.
pub fn parse_each_document(text: &str) -> Parsed {
    parse_each_document_by(text, Paths::All)
}

fn parse_each_document_by(text: &str, paths: Paths) -> Parsed {
    let mut parsed = Parsed::default();
    read_files(
        &[Arc::from(text)],
        paths,
        &Parsed::default,
        &mut |_| {},
        &mut |part| {
            parsed.documents.extend(part.documents);
            parsed.errors.extend(part.errors);
        },
    );
    parsed
}

/// Stack for a thread that parses or reads documents: as deep as the parser's nesting
/// limit (64 levels) takes with room to spare, also unoptimized. A thread's default
/// 2 MiB overflows there in a debug build, which aborts the process (a 63-level list in
/// a file large enough to be parsed on several threads did); the main thread has 8.
const DEEP_STACK: usize = 16 << 20;

/// Spawns `work` on a scoped thread with a stack for deeply nested documents.
pub(crate) fn spawn_deep<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    work: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    std::thread::Builder::new()
        .stack_size(DEEP_STACK)
        .spawn_scoped(scope, work)
        .expect("a parsing thread (out of memory or threads)")
}

/// The parser's limits. The default budget (1,024 documents, 250k nodes) protects
/// against hostile input; a GitOps repository may hold 100k entries in one file.
/// Alias limits stay. A tag kvop does not know (`!secret x`) is refused rather than
/// dropped: it would otherwise store a value its author meant to mean something else.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        reject_unsupported_tags: true,
        // YAML 1.1, as kubectl reads it: `017` is 15, not 17.0.
        legacy_octal_numbers: true,
        budget: serde_saphyr::budget! {
            max_documents: 10_000_000,
            max_events: 500_000_000,
            max_nodes: 200_000_000,
            max_total_scalar_bytes: 4 << 30,
        },
    }
}

/// Renders `value` as YAML (used for the generated CRD files).
pub fn to_string<T: Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(value)
}

#[cfg(test)]
mod tests;
