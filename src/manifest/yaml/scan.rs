//! A look at a document's text, without parsing it, for the constructs that
//! serde_yaml_ng and serde-saphyr may read differently: the fast path is only for text
//! that has none of them (see `super::route`).
//!
//! The look is lexical and errs on the side of the spanned parse: it does not know
//! whether a word is inside a quoted string or a comment, so `"yes"` or `# &x` also
//! send a document the spanned way. That costs time, never a different reading.

/// Whether `text` is free of everything the two parsers are known to read differently
/// (each case is in the table test of `super::agreement` and checked by the differential
/// fuzz target):
/// - anchors, aliases, tags, merge keys (`&`, `*`, `!`, `<<`) and complex keys (`?`):
///   serde-saphyr drops unknown tags, applies merge keys and has its own alias limits;
/// - text that does not end with a line break (the last document of a file): libyaml
///   ends a block scalar cut off by the end of the input without its line break,
///   serde-saphyr with it;
/// - `-` or `:` right before a flow indicator (`{-}`), a plain scalar to libyaml and an
///   error to serde-saphyr;
/// - a block scalar indicator (`|`, `>`) first on its line;
/// - a `#` right after anything but a space or a letter or digit (`{a: 1}#c`, `|#c`),
///   which libyaml reads as a comment and serde-saphyr refuses;
/// - tabs, carriage returns not followed by a line feed, a byte order mark, control
///   characters and the YAML 1.1 line breaks (NEL, LS, PS), which libyaml breaks lines
///   at and serde-saphyr does not;
/// - plain scalars that serde-saphyr reads as YAML 1.1 (`yes`, `on`, `017`, `1_000`,
///   `0x1F`, `1e3`, `.inf`) unless both are known to read them alike (`true`, `~`,
///   `12`, `-1.5`).
pub(super) fn fast_path_reads_alike(text: &str) -> bool {
    if !text.ends_with('\n') {
        return false;
    }
    let bytes = text.as_bytes();
    let mut at = 0;
    // A scalar, key or indicator may start here: after a space, a line break, a flow
    // indicator, or a `:` right after a quoted or flow key (`{"a":yes}`).
    let mut token_start = true;
    // Only spaces so far on this line.
    let mut line_start = true;
    while at < bytes.len() {
        let byte = bytes[at];
        // A block scalar indicator first on its line (`a:\n|`): where its indentation
        // is too small, libyaml takes it and serde-saphyr refuses it.
        if line_start && matches!(byte, b'|' | b'>') {
            return false;
        }
        line_start = match byte {
            b'\n' => true,
            b' ' => line_start,
            _ => false,
        };
        // Right after a quoted scalar or a flow collection.
        let after_closing = at > 0 && matches!(bytes[at - 1], b'"' | b'\'' | b']' | b'}');
        let after_key = byte == b':' && after_closing;
        match byte {
            // A comment not separated by a space (`{a: 1}#c`, `|#c`): libyaml takes it,
            // serde-saphyr refuses it. Inside a plain scalar (`x#c`) both read a `#`.
            b'#' if at > 0
                && !matches!(bytes[at - 1], b' ' | b'\n' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z') =>
            {
                return false;
            }
            b'\n' | b' ' | b'[' | b']' | b'{' | b'}' | b',' => {
                token_start = true;
                at += 1;
                continue;
            }
            b':' if after_key => {
                token_start = true;
                at += 1;
                continue;
            }
            b'\r' if bytes.get(at + 1) == Some(&b'\n') => {
                token_start = true;
                at += 1;
                continue;
            }
            0x00..=0x1f | 0x7f => return false,
            0x80.. if !ordinary_non_ascii(&bytes[at..]) => return false,
            _ => {}
        }
        if token_start && !token_reads_alike(&bytes[at..]) {
            return false;
        }
        // Byte by byte, not token by token: a `:` inside the word may start the next
        // one (`"a":yes`).
        token_start = false;
        at += 1;
    }
    true
}

/// Whether the non-ASCII character at the start of `rest` reads alike in both parsers:
/// not a C1 control (U+0080–U+009F, with NEL), a line or paragraph separator
/// (U+2028/9), a byte order mark (U+FEFF) or a non-character (U+FFFE/F).
pub(super) fn ordinary_non_ascii(rest: &[u8]) -> bool {
    !matches!(
        rest,
        [0xc2, 0x80..=0x9f, ..]
            | [0xe2, 0x80, 0xa8 | 0xa9, ..]
            | [0xef, 0xbb, 0xbf, ..]
            | [0xef, 0xbf, 0xbe | 0xbf, ..]
    )
}

/// The word that starts `rest`, up to a space, a line break or a flow indicator, and
/// whether it is a block mapping key (`word: `), which both parsers read as its text
/// when serde_yaml_ng reads it as a string (see `super::fast::Key`).
fn word_at(rest: &[u8]) -> (&[u8], bool) {
    let end = rest
        .iter()
        .position(|byte| {
            matches!(
                byte,
                b' ' | b'\n' | b'\r' | b'\t' | b',' | b'[' | b']' | b'{' | b'}'
            )
        })
        .unwrap_or(rest.len());
    match rest[..end].strip_suffix(b":") {
        Some(key) => (key, true),
        None => (&rest[..end], false),
    }
}

/// Plain words that serde-saphyr reads as booleans in any letter case (YAML 1.1), or
/// that may be numbers' names; serde_yaml_ng reads most of them as strings.
pub(super) const WORDS: [&[u8]; 12] = [
    b"y",
    b"n",
    b"yes",
    b"no",
    b"on",
    b"off",
    b"true",
    b"false",
    b"null",
    b"inf",
    b"nan",
    b"infinity",
];

/// Spellings both parsers read as the same boolean or null.
const AGREED: [&[u8]; 10] = [
    b"true", b"True", b"TRUE", b"false", b"False", b"FALSE", b"null", b"Null", b"NULL", b"~",
];

/// Whether the token that starts `rest` reads alike in both parsers.
fn token_reads_alike(rest: &[u8]) -> bool {
    let (token, key) = word_at(rest);
    let Some(&first) = rest.first() else {
        return true;
    };
    if matches!(first, b'&' | b'*' | b'!' | b'?') || token.starts_with(b"<<") {
        return false;
    }
    // `{-}`, `[:]`: libyaml reads a plain scalar, serde-saphyr refuses it.
    if matches!(rest, [b'-' | b':', b',' | b'[' | b']' | b'{' | b'}', ..]) {
        return false;
    }
    if key {
        return true;
    }
    // A digit, or `.5`, `.inf`, `.nan`, after any signs.
    let number_like = match trim_signs(token) {
        [digit, ..] if digit.is_ascii_digit() => true,
        [b'.', next, ..] => next.is_ascii_digit() || matches!(next, b'i' | b'I' | b'n' | b'N'),
        _ => false,
    };
    let word = WORDS.iter().any(|word| token.eq_ignore_ascii_case(word));
    !(number_like || word) || AGREED.contains(&token) || plain_decimal(token)
}

pub(super) fn trim_signs(token: &[u8]) -> &[u8] {
    let start = token
        .iter()
        .position(|byte| !matches!(byte, b'+' | b'-'))
        .unwrap_or(token.len());
    &token[start..]
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with at most 18 digits on either side: both parsers
/// read it as the same i64, u64 or (through Rust's own float parsing) f64. Longer
/// integers are floats to serde-saphyr and exact to serde_yaml_ng.
pub(super) fn plain_decimal(token: &[u8]) -> bool {
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    let (whole, fraction) = match digits.iter().position(|byte| *byte == b'.') {
        Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
        None => (digits, None),
    };
    let decimal = |part: &[u8]| {
        (1..=18).contains(&part.len()) && part.iter().all(|byte| byte.is_ascii_digit())
    };
    decimal(whole) && (whole == b"0" || whole[0] != b'0') && fraction.is_none_or(decimal)
}
