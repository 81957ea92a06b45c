//! The restricted reader: the plain block YAML manifests are written in, read line by
//! line into the value the other paths produce, or `None` for anything else.
//!
//! serde_yaml_ng (libyaml) reads manifests at about 25–30 MB/s: an event per token, an
//! owned string per scalar, through serde. Nearly every manifest uses only block
//! mappings and sequences of plain or single-line quoted scalars, and text that small
//! can be read directly, a line at a time, about ten times faster (BENCHMARKS.md).
//!
//! What this reader takes (anything else is `None`, and the document goes to the other
//! readers, see `super::route`):
//! - block mappings with plain keys (`[A-Za-z0-9_][A-Za-z0-9_./-]*`, not a null),
//!   block sequences (`- item`, `- key: value`, and under a key at the key's own
//!   indentation), an empty value as null;
//! - single-line scalars: plain ones that read as a string, `true`/`false`, a null, or
//!   a short decimal (the same reading `super::scan` lets the fast path take), single
//!   quoted, and double quoted with the escapes `\\ \" \/ \n \t`;
//! - comments, blank lines, and a leading `---` line with nothing but a comment on it;
//! - spaces, printable ASCII and ordinary non-ASCII characters (no tab, no carriage
//!   return, no control character, none of the line breaks or marks `scan` refuses).
//!
//! Like the fast path it never reports an error: a duplicate key, a multi-line plain
//! scalar or anything odd is `None`, and the spanned parse words the error.

use serde_json::{Map, Number, Value};

use super::scan::{WORDS, ordinary_non_ascii, plain_decimal, trim_signs};
use super::slices::is_document_marker;

/// The same bound as the fast path's: serde-saphyr refuses more than 64 levels.
const MAX_DEPTH: usize = 48;

/// The one document of `text` (which holds no other `---` than on its first line), or
/// `None` to have another reader take it.
pub(super) fn parse(text: &str) -> Option<Value> {
    let mut reader = Reader {
        lines: content_lines(text)?,
        at: 0,
    };
    // Manifests are mappings, at the left margin: anything else is for the others.
    let first = reader.peek()?;
    if first.indent != 0 || is_entry(first.content) {
        return None;
    }
    // A mapping at indent 0 ends only with the text.
    reader.mapping(0, 1)
}

/// A line with content: not blank, not only a comment.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    /// Leading spaces.
    indent: usize,
    /// The rest, without trailing spaces.
    content: &'a str,
}

/// The lines of `text` that hold content, or `None` if any character is outside the
/// subset (checked here once, for every line, comments included).
fn content_lines(text: &str) -> Option<Vec<Line<'_>>> {
    if !plain_characters(text.as_bytes()) {
        return None;
    }
    let mut lines = Vec::with_capacity(16);
    for (number, raw) in text.split('\n').enumerate() {
        if number == 0 && is_document_marker(raw) {
            let rest = raw[3..].trim_start_matches(' ');
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            // A document that starts on its marker's line (`--- a: 1`, `--- |`).
            return None;
        }
        let trimmed = raw.trim_end_matches(' ');
        let content = trimmed.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        lines.push(Line {
            indent: trimmed.len() - content.len(),
            content,
        });
    }
    Some(lines)
}

/// Line feeds, and otherwise no tab, carriage return or other control character, and
/// only non-ASCII characters both YAML crates read alike.
fn plain_characters(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(at, &byte)| match byte {
        b'\n' | 0x20..=0x7e => true,
        0x80.. => ordinary_non_ascii(&bytes[at..]),
        _ => false,
    })
}

/// A block sequence entry: `-` alone or before a space.
fn is_entry(content: &str) -> bool {
    content == "-" || content.starts_with("- ")
}

struct Reader<'a> {
    lines: Vec<Line<'a>>,
    /// The next line to read.
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.at).copied()
    }

    /// The block collection whose first line is the next one, at `indent`.
    fn collection(&mut self, indent: usize, depth: usize) -> Option<Value> {
        match self.peek() {
            Some(line) if is_entry(line.content) => self.sequence(indent, depth),
            _ => self.mapping(indent, depth),
        }
    }

    /// A block mapping whose keys are at `indent`, up to the first line left of it.
    fn mapping(&mut self, indent: usize, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut object = Map::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            // Deeper than the keys, or an entry after a value: an error, or a
            // construct this reader does not take.
            if line.indent > indent || is_entry(line.content) {
                return None;
            }
            let (key, rest) = split_key(line.content)?;
            self.at += 1;
            let value = self.value(rest, indent, depth, true)?;
            // serde-saphyr refuses a duplicate key, with its line.
            if object.insert(key.to_owned(), value).is_some() {
                return None;
            }
        }
        Some(Value::Object(object))
    }

    /// A block sequence whose dashes are at `indent`, up to the first line left of it
    /// or at it without a dash (the next key of a mapping it is the value of).
    fn sequence(&mut self, indent: usize, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent || (line.indent == indent && !is_entry(line.content)) {
                break;
            }
            if line.indent > indent {
                return None;
            }
            let item = line.content[1..].trim_start_matches(' ');
            if is_entry(item) {
                // `- - x`: a compact nested sequence.
                return None;
            }
            let item_indent = indent + (line.content.len() - item.len());
            if split_key(item).is_some() {
                // `- key: value`: a mapping whose first key is on the dash's line, and
                // whose other keys line up with it.
                self.lines[self.at] = Line {
                    indent: item_indent,
                    content: item,
                };
                items.push(self.mapping(item_indent, depth + 1)?);
            } else {
                self.at += 1;
                items.push(self.value(item, indent, depth, false)?);
            }
        }
        Some(Value::Array(items))
    }

    /// The value after a key or a dash at `indent`: `rest` of its line, or else the
    /// block collection on the lines below it. Under a key (`in_mapping`) a sequence
    /// may start at the key's own indentation.
    fn value(
        &mut self,
        rest: &str,
        indent: usize,
        depth: usize,
        in_mapping: bool,
    ) -> Option<Value> {
        if rest.is_empty() || rest.starts_with('#') {
            return match self.peek() {
                Some(next) if next.indent > indent => self.collection(next.indent, depth + 1),
                Some(next) if in_mapping && next.indent == indent && is_entry(next.content) => {
                    self.sequence(indent, depth + 1)
                }
                _ => Some(Value::Null),
            };
        }
        let value = scalar(rest)?;
        // A deeper line after a scalar continues it (a multi-line plain scalar) or is an
        // error.
        if self.peek().is_some_and(|next| next.indent > indent) {
            return None;
        }
        Some(value)
    }
}

/// `key: rest` or `key:`: the key and the rest after its spaces, for a plain key this
/// reader takes. serde-saphyr reads every such key as its text (`1`, `true`, `yes`).
fn split_key(content: &str) -> Option<(&str, &str)> {
    let bytes = content.as_bytes();
    if !bytes
        .first()
        .is_some_and(|first| first.is_ascii_alphanumeric() || *first == b'_')
    {
        return None;
    }
    let end = bytes.iter().position(|byte| {
        !(byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-' | b'/'))
    })?;
    let rest = content[end..].strip_prefix(':')?;
    let key = &content[..end];
    // A null key is refused by serde-saphyr.
    if !(rest.is_empty() || rest.starts_with(' ')) || matches!(key, "null" | "Null" | "NULL") {
        return None;
    }
    Some((key, rest.trim_start_matches(' ')))
}

/// A scalar on one line (trailing spaces already cut), with an optional comment.
fn scalar(text: &str) -> Option<Value> {
    match text.as_bytes().first()? {
        b'"' => double_quoted(&text[1..]),
        b'\'' => single_quoted(&text[1..]),
        _ => plain(text),
    }
}

/// What may follow a closing quote: nothing, or a comment after a space.
fn ends_after_quote(rest: &str) -> bool {
    rest.is_empty() || (rest.starts_with(' ') && rest.trim_start_matches(' ').starts_with('#'))
}

/// A double-quoted scalar closed on its line; `text` starts after the opening quote.
fn double_quoted(text: &str) -> Option<Value> {
    let mut value = String::new();
    let mut rest = text;
    loop {
        let stop = rest.find(['"', '\\'])?;
        value.push_str(&rest[..stop]);
        if rest.as_bytes()[stop] == b'"' {
            return ends_after_quote(&rest[stop + 1..]).then_some(Value::String(value));
        }
        let escaped = match rest.as_bytes().get(stop + 1)? {
            b'\\' => '\\',
            b'"' => '"',
            b'/' => '/',
            b'n' => '\n',
            b't' => '\t',
            _ => return None,
        };
        value.push(escaped);
        rest = &rest[stop + 2..];
    }
}

/// A single-quoted scalar closed on its line (`''` is a quote); `text` starts after
/// the opening quote.
fn single_quoted(text: &str) -> Option<Value> {
    let mut value = String::new();
    let mut rest = text;
    loop {
        let stop = rest.find('\'')?;
        value.push_str(&rest[..stop]);
        match rest[stop + 1..].strip_prefix('\'') {
            Some(after) => {
                value.push('\'');
                rest = after;
            }
            None => {
                return ends_after_quote(&rest[stop + 1..]).then_some(Value::String(value));
            }
        }
    }
}

/// A plain scalar on one line, read as serde-saphyr reads it, for the readings both
/// YAML crates agree on; `None` for any other.
fn plain(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let first = bytes[0];
    // Indicators (`&`, `*`, `!`, `|`, `>`, `[`, `{`, `%`, `@`, `?`, `:`, `-` before a
    // space) start something else.
    let ordinary_start = first.is_ascii_alphanumeric()
        || matches!(first, b'_' | b'/' | b'~' | b'$' | b'+' | 0x80..)
        || (first == b'-' && bytes.get(1).is_some_and(|next| *next != b' '));
    if !ordinary_start {
        return None;
    }
    let content = match text.find(" #") {
        Some(comment) => text[..comment].trim_end_matches(' '),
        None => text,
    };
    if content.contains(": ") || content.ends_with(':') || !plain_characters_alike(content) {
        return None;
    }
    resolve(content)
}

/// Plain scalar characters both crates read alike in block context: no flow
/// indicators but `,`, no `#` after a character other than a space or an alphanumeric
/// (see `super::scan`), no Unicode space (a no-break space is not YAML white space,
/// which this reader need not find out about).
fn plain_characters_alike(content: &str) -> bool {
    let bytes = content.as_bytes();
    let ascii_alike = bytes.iter().enumerate().all(|(at, byte)| match byte {
        b'[' | b']' | b'{' | b'}' => false,
        b'#' => at > 0 && bytes[at - 1].is_ascii_alphanumeric(),
        _ => true,
    });
    ascii_alike && (content.is_ascii() || !content.chars().any(char::is_whitespace))
}

/// The value of a plain scalar: a null, a boolean, a short decimal, or a string, where
/// both crates agree; `None` for what else may be a number or a YAML 1.1 word.
fn resolve(content: &str) -> Option<Value> {
    match content {
        "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let bytes = content.as_bytes();
    if plain_decimal(bytes) {
        return if bytes.contains(&b'.') {
            Number::from_f64(content.parse().ok()?).map(Value::Number)
        } else {
            content.parse::<i64>().ok().map(Value::from)
        };
    }
    let unsigned = trim_signs(bytes);
    let number_like = unsigned
        .first()
        .is_none_or(|first| first.is_ascii_digit() || *first == b'.');
    let word = WORDS
        .iter()
        .any(|word| bytes.eq_ignore_ascii_case(word) || unsigned.eq_ignore_ascii_case(word));
    (!number_like && !word).then(|| Value::String(content.to_owned()))
}
