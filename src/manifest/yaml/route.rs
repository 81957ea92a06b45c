//! Which parser reads a document: the one place that decides between the restricted
//! line reader (`block`), the fast path (serde_yaml_ng, no spans) and the spanned
//! serde-saphyr parse.

use std::sync::{Arc, OnceLock};

use super::slices::{Slice, first_content_line};
use super::spanned::parse_spanned;
use super::{Document, DocumentText, FieldLines, SyntaxError, block, fast, scan};

/// Which readers may take a document before the spanned parse: the differential fuzz
/// target and the agreement tests compare a load with each against one without any.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paths {
    /// The line reader, then the fast path, then the spanned parse (what kvop uses).
    All,
    /// The fast path, then the spanned parse.
    FastAndSpanned,
    /// The line reader, then the spanned parse.
    BlockAndSpanned,
    /// The spanned parse alone: the reference.
    SpannedOnly,
}

impl Paths {
    fn block(self) -> bool {
        matches!(self, Paths::All | Paths::BlockAndSpanned)
    }

    fn fast(self) -> bool {
        matches!(self, Paths::All | Paths::FastAndSpanned)
    }
}

/// Parses one slice of a file into its documents (none, one, or several after a `...`).
///
/// The spanned parse is the reference: the line reader, then the fast path, read a
/// slice only when it holds one document they read exactly as the spanned parse does,
/// and give it up (`None`) at the first sign of a difference or an error, always to the
/// next reader (never the reverse). So a document reads the same whichever reader takes
/// it, and every error, with its line, comes from the spanned parse.
pub(super) fn parse_slice(
    file: &Arc<str>,
    slice: &Slice,
    paths: Paths,
) -> Result<Vec<Document>, SyntaxError> {
    let text = &file[slice.range.clone()];
    // A `...` end marker may be followed by another document, or end an empty one:
    // only the spanned parse tells where each starts.
    if !slice.ended
        && let Some(value) = read_without_spans(text, paths)
    {
        let line = first_content_line(text) + slice.offset;
        return Ok(vec![Document {
            line,
            value,
            fields: FieldLines {
                line,
                lines: OnceLock::new(),
                source: Some(DocumentText {
                    file: file.clone(),
                    range: slice.range.clone(),
                    offset: slice.offset,
                }),
                prefix: None,
            },
        }]);
    }
    parse_spanned(text, slice.offset)
}

/// The value of the one document of `text` from the first reader without spans that
/// takes it, or `None` for the spanned parse.
fn read_without_spans(text: &str, paths: Paths) -> Option<serde_json::Value> {
    // The line reader first: about ten times the fast path on what it takes, and it
    // gives up on the rest sooner than the fast path's scan reads them.
    if paths.block()
        && let Some(value) = block::parse(text)
    {
        return Some(value);
    }
    if paths.fast() && scan::fast_path_reads_alike(text) {
        return fast::parse(text);
    }
    None
}
