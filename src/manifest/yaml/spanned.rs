//! The spanned parse: every node with the line it starts on, for the field lines of a
//! document with a problem and for text the fast path does not cut (see `super`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::{Document, SyntaxError, options, syntax_error};

/// Parses `text`, whose first line is line `offset + 1` of its file, keeping the line
/// of every node.
pub(super) fn parse_spanned(text: &str, offset: u64) -> Result<Vec<Document>, SyntaxError> {
    let nodes: Vec<Node> = serde_saphyr::from_multiple_with_options(text, options())
        .map_err(|error| syntax_error(&error, offset))?;
    Ok(nodes
        .into_iter()
        .map(|node| {
            let mut lines = BTreeMap::new();
            let line = node.line + offset;
            let value = node.into_json(String::new(), &mut lines);
            lines.values_mut().for_each(|line| *line += offset);
            Document {
                prefix: None,
                line,
                value,
                lines: OnceLock::from(std::sync::Arc::new(lines)),
                source: None,
            }
        })
        .collect())
}

/// A YAML node with the line it starts on.
struct Node {
    line: u64,
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
        Ok(Node {
            line: spanned.referenced.line(),
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
