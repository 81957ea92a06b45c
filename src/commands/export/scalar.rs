//! YAML scalars that read back as exactly the same string in kvop's loader (and in
//! kubectl's YAML 1.1 reader): plain when that cannot be mistaken for anything else, a
//! literal block for multi-line text, double-quoted with escapes otherwise.

use std::fmt::Write;

/// Words YAML 1.1 or 1.2 reads as booleans or null when plain.
const RESERVED_WORDS: [&str; 11] = [
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "",
];

/// Appends `text` as a scalar value after `key: ` at `indent` spaces (a literal block's
/// lines go at `indent + 2`). Ends with a line break.
pub fn push_value(out: &mut String, indent: usize, text: &str) {
    if is_plain(text) {
        out.push_str(text);
        out.push('\n');
    } else if fits_literal_block(text) {
        out.push_str(if text.ends_with('\n') { "|\n" } else { "|-\n" });
        for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
            if !line.is_empty() {
                out.extend(std::iter::repeat_n(' ', indent + 2));
                out.push_str(line);
            }
            out.push('\n');
        }
    } else {
        push_quoted(out, text);
        out.push('\n');
    }
}

/// Appends `text` as a key or a one-line value: plain or double-quoted.
pub fn push_inline(out: &mut String, text: &str) {
    if is_plain(text) {
        out.push_str(text);
    } else {
        push_quoted(out, text);
    }
}

/// A plain scalar is only used for text of key and name characters that starts with a
/// letter, `_` or `/` (never a number, date or `.inf`) and is not a reserved word.
fn is_plain(text: &str) -> bool {
    // Bytes, not chars: every allowed character is ASCII, and a multi-byte character's
    // bytes are all non-ASCII, so none of them passes.
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'/')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'))
        && !RESERVED_WORDS
            .iter()
            .any(|word| text.eq_ignore_ascii_case(word))
}

/// Multi-line text that a literal block keeps byte for byte: every character printable
/// without escapes, no carriage return, the first line starting with a visible character
/// (the block's indentation is read from it), no line of only blanks (a reader may take
/// it for indentation) and at most one final line break (`|` keeps one, `|-` none).
fn fits_literal_block(text: &str) -> bool {
    text.contains('\n')
        && !text.ends_with("\n\n")
        && text
            .chars()
            .next()
            .is_some_and(|c| c != ' ' && c != '\t' && c != '\n')
        && text
            .chars()
            .all(|c| c == '\n' || c == '\t' || !needs_escape(c))
        && text
            .split('\n')
            .all(|line| line.is_empty() || !line.chars().all(|c| c == ' ' || c == '\t'))
}

/// Characters a double-quoted scalar must escape: the quote and backslash, anything
/// YAML does not count as printable, and what YAML 1.1 takes for a line break (NEL,
/// U+2028, U+2029) or a byte order mark.
fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
    ) || c.is_control()
}

fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> String {
        let mut out = String::new();
        push_value(&mut out, 2, text);
        out
    }

    #[test]
    fn plain_only_where_nothing_else_can_be_read() {
        assert_eq!(value("app.config"), "app.config\n");
        assert_eq!(value("a/b=c"), "a/b=c\n");
        for quoted in [
            "yes",
            "No",
            "on",
            "null",
            "017",
            "1e3",
            ".inf",
            "2026-01-01",
            "-a",
            "=",
            "a b",
            "",
        ] {
            assert!(value(quoted).starts_with('"'), "{quoted:?}");
        }
    }

    #[test]
    fn multi_line_text_is_a_literal_block_when_that_keeps_every_byte() {
        assert_eq!(value("a\n  b\n"), "|\n    a\n      b\n");
        assert_eq!(value("a\n\nb"), "|-\n    a\n\n    b\n");
        for quoted in ["a\n\n", " a\nb", "\na", "a\r\nb", "a\n  \nb", "a\u{85}\nb"] {
            assert!(value(quoted).starts_with('"'), "{quoted:?}");
        }
    }

    #[test]
    fn escapes_cover_what_yaml_does_not_print() {
        assert_eq!(
            value("q\"\\\t\r\u{0}\u{7f}\u{2028}é"),
            "\"q\\\"\\\\\\t\\r\\u0000\\u007F\\u2028é\"\n"
        );
    }
}
