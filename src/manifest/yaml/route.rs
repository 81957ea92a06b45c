//! Which parser reads a document: the one place that decides between the fast path
//! (serde_yaml_ng, no spans) and the spanned serde-saphyr parse.

use std::sync::{Arc, OnceLock};

use super::slices::{Slice, first_content_line};
use super::spanned::parse_spanned;
use super::{Document, DocumentText, SyntaxError, fast, scan};

/// Whether the fast path may be taken at all: the differential fuzz target and the
/// agreement tests compare a load with it against one without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Paths {
    FastWhereAlike,
    SpannedOnly,
}

/// Parses one slice of a file into its documents (none, one, or several after a `...`).
///
/// The spanned parse is the reference: the fast path reads a slice only when it holds
/// one document whose text has nothing the two parsers read differently, and gives it
/// up (`None`) at the first sign of a difference or an error. So a document reads the
/// same either way, and every error, with its line, comes from the spanned parse.
pub(super) fn parse_slice(
    file: &Arc<str>,
    slice: &Slice,
    paths: Paths,
) -> Result<Vec<Document>, SyntaxError> {
    let text = &file[slice.range.clone()];
    // A `...` end marker may be followed by another document, or end an empty one:
    // only the spanned parse tells where each starts.
    let fast = paths == Paths::FastWhereAlike && !slice.ended && scan::fast_path_reads_alike(text);
    if let Some(value) = fast.then(|| fast::parse(text)).flatten() {
        return Ok(vec![Document {
            prefix: None,
            line: first_content_line(text) + slice.offset,
            value,
            lines: OnceLock::new(),
            source: Some(DocumentText {
                file: file.clone(),
                range: slice.range.clone(),
                offset: slice.offset,
            }),
        }]);
    }
    parse_spanned(text, slice.offset)
}
