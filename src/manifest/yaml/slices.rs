//! Cutting a file into its documents without parsing it: a line that starts with a
//! document marker always ends the document before it, even inside a scalar (YAML's
//! "c-forbidden" lines).

use std::ops::Range;

/// One document's text: its byte range and the number of lines before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Slice {
    pub range: Range<usize>,
    pub offset: u64,
    /// Holds a `...` end marker, after which another document may start unmarked.
    pub ended: bool,
}

/// Cuts `text` at every line that starts a document (`---`). A marker at the start of
/// a line always ends the document before it, even inside a scalar (YAML's
/// "c-forbidden" lines), so this needs no parsing. `None` for text with directives, and
/// for text that breaks lines with a lone `\r`, which YAML counts as a line and this
/// cut does not.
pub(super) fn document_slices(text: &str) -> Option<Vec<Slice>> {
    if text
        .match_indices('\r')
        .any(|(at, _)| text.as_bytes().get(at + 1) != Some(&b'\n'))
    {
        return None;
    }
    let mut slices = Vec::new();
    let (mut start, mut start_line, mut line_number, mut offset) = (0usize, 0u64, 0u64, 0usize);
    let mut ended = false;
    for line in text.split_inclusive('\n') {
        if line.starts_with('%') {
            return None;
        }
        if is_document_marker(line) && offset > start {
            slices.push(Slice {
                range: start..offset,
                offset: start_line,
                ended,
            });
            start = offset;
            start_line = line_number;
            ended = false;
        }
        ended |= is_end_marker(line);
        offset += line.len();
        line_number += 1;
    }
    if offset > start {
        slices.push(Slice {
            range: start..offset,
            offset: start_line,
            ended,
        });
    }
    Some(slices)
}

/// A line that starts a document: `---`, then the end of the line, a space or a tab
/// (YAML's separators; other Unicode spaces would make it a key like `---\u{a0}x`).
pub(super) fn is_document_marker(line: &str) -> bool {
    is_marker(line, "---")
}

/// A line that ends a document (`...`).
fn is_end_marker(line: &str) -> bool {
    is_marker(line, "...")
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker).is_some_and(|rest| {
        matches!(
            rest.bytes().next(),
            None | Some(b' ' | b'\t' | b'\r' | b'\n')
        )
    })
}

/// The 1-based line, within `text`, of the first content of a document that starts
/// with an optional `---` marker: what follows the marker on its line, or else the
/// first line that is neither blank nor a comment.
pub(super) fn first_content_line(text: &str) -> u64 {
    let mut number = 0;
    for line in text.lines() {
        number += 1;
        // A byte order mark may start the file.
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        let content = if number == 1 && is_document_marker(line) {
            &line[3..]
        } else {
            line
        };
        let content = content.trim_start();
        if !content.is_empty() && !content.starts_with('#') {
            return number;
        }
    }
    1
}
