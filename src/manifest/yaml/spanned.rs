//! The spanned parse: every node with the line it starts on, for the field lines of a
//! document with a problem and for text the fast path does not cut (see `super`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::{Document, FieldLines, SyntaxError, options, syntax_error};

/// Parses `text`, whose first line is line `offset + 1` of its file, keeping the line
/// of every node.
pub(super) fn parse_spanned(text: &str, offset: u64) -> Result<Vec<Document>, SyntaxError> {
    let nodes: Vec<Node> = serde_saphyr::from_multiple_with_options(text, options())
        .map_err(|error| syntax_error(&error, offset))?;
    for node in &nodes {
        node.check_integers(text, "", offset)?;
    }
    Ok(nodes
        .into_iter()
        .map(|node| {
            let mut lines = BTreeMap::new();
            let line = node.line + offset;
            let value = node.into_json(String::new(), &mut lines);
            lines.values_mut().for_each(|line| *line += offset);
            Document {
                line,
                value,
                fields: FieldLines {
                    line,
                    lines: OnceLock::from(std::sync::Arc::new(lines)),
                    source: None,
                    prefix: None,
                },
            }
        })
        .collect())
}

/// A YAML node with the line it starts on and, where known, its text's byte range.
struct Node {
    line: u64,
    bytes: Option<(usize, usize)>,
    kind: NodeKind,
}

enum NodeKind {
    Null,
    Bool(bool),
    Integer(i64),
    Unsigned(u64),
    Float(f64),
    String(String),
    Sequence(Vec<Node>),
    Mapping(Vec<(Spanned<String>, Node)>),
}

impl Node {
    /// Refuses an integer that serde-saphyr could only read as a float, past 64 bits:
    /// kept as a float it would silently change, and a `jsonValue` promises the number
    /// as written. (`09`, not octal, stays the float 9, as kubectl reads it.)
    fn check_integers(&self, text: &str, path: &str, offset: u64) -> Result<(), SyntaxError> {
        match &self.kind {
            NodeKind::Float(_) => {
                let raw = self
                    .bytes
                    .and_then(|(start, len)| text.get(start..start.checked_add(len)?))
                    .unwrap_or_default()
                    .trim();
                if integer_literal(raw) && !fits_in_64_bits(raw) {
                    let at = if path.is_empty() {
                        String::new()
                    } else {
                        format!("{path}: ")
                    };
                    return Err(SyntaxError {
                        line: Some(self.line + offset),
                        message: format!(
                            "{at}the integer {raw} cannot be kept exactly (it does not fit in \
                             64 bits): quote it to keep it as a string"
                        ),
                    });
                }
                Ok(())
            }
            NodeKind::Sequence(items) => items.iter().enumerate().try_for_each(|(index, item)| {
                item.check_integers(text, &format!("{path}[{index}]"), offset)
            }),
            NodeKind::Mapping(entries) => entries.iter().try_for_each(|(key, item)| {
                let child = if path.is_empty() {
                    key.value.clone()
                } else {
                    format!("{path}.{}", key.value)
                };
                item.check_integers(text, &child, offset)
            }),
            _ => Ok(()),
        }
    }

    fn into_json(self, path: String, lines: &mut BTreeMap<String, u64>) -> serde_json::Value {
        use serde_json::Value;
        if !path.is_empty() {
            lines.insert(path.clone(), self.line);
        }
        match self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(value) => Value::Bool(value),
            NodeKind::Integer(value) => Value::from(value),
            NodeKind::Unsigned(value) => Value::from(value),
            NodeKind::Float(value) => serde_json::Number::from_f64(value)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeKind::String(value) => Value::String(value),
            NodeKind::Sequence(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(index, item)| item.into_json(format!("{path}[{index}]"), lines))
                    .collect(),
            ),
            NodeKind::Mapping(entries) => Value::Object(
                entries
                    .into_iter()
                    .map(|(key, item)| {
                        let child = if path.is_empty() {
                            key.value.clone()
                        } else {
                            format!("{path}.{}", key.value)
                        };
                        // The key's line is where a reader looks for the field.
                        let key_line = key.referenced.line();
                        let value = item.into_json(child.clone(), lines);
                        lines.insert(child, key_line);
                        (key.value, value)
                    })
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeKind>::deserialize(deserializer)?;
        let span = spanned.referenced.span();
        let bytes = span
            .byte_offset()
            .zip(span.byte_len())
            .and_then(|(start, len)| {
                Some((usize::try_from(start).ok()?, usize::try_from(len).ok()?))
            });
        Ok(Node {
            line: spanned.referenced.line(),
            bytes,
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeKind;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Integer(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<NodeKind, E> {
        Ok(NodeKind::Unsigned(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<NodeKind, E> {
        Ok(NodeKind::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeKind::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeKind::Mapping(entries))
    }
}

/// Whether `raw` is written as an integer: an optional sign, then decimal digits or a
/// `0x`, `0o` or `0b` prefix and its digits, with `_` between them (YAML 1.1).
fn integer_literal(raw: &str) -> bool {
    let unsigned = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    let (digits, radix) = match unsigned.get(..2) {
        Some("0x") => (&unsigned[2..], 16),
        Some("0o") => (&unsigned[2..], 8),
        Some("0b") => (&unsigned[2..], 2),
        _ => (unsigned, 10),
    };
    digits.chars().any(|c| c.is_digit(radix))
        && digits.chars().all(|c| c == '_' || c.is_digit(radix))
}

/// Whether the integer literal `raw` fits in an i64 or a u64.
fn fits_in_64_bits(raw: &str) -> bool {
    let digits: String = raw.chars().filter(|c| *c != '_').collect();
    let (negative, unsigned) = match digits.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, digits.strip_prefix('+').unwrap_or(&digits)),
    };
    let (digits, radix) = match unsigned.get(..2) {
        Some("0x") => (&unsigned[2..], 16),
        Some("0o") => (&unsigned[2..], 8),
        Some("0b") => (&unsigned[2..], 2),
        _ => (unsigned, 10),
    };
    match u64::from_str_radix(digits, radix) {
        Ok(value) => !negative || value <= i64::MIN.unsigned_abs(),
        Err(_) => false,
    }
}
