//! The only YAML code in kvop: multi-document parsing that keeps the line of every node,
//! and YAML rendering of generated files.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// One YAML document of a file: its JSON value and the line of each field path.
#[derive(Debug, Clone)]
pub struct Document {
    /// 1-based line where the document's root node starts.
    pub line: u64,
    pub value: serde_json::Value,
    /// Line of each node by dotted path (`spec.history`, `spec.sources[0].name`).
    pub lines: BTreeMap<String, u64>,
}

impl Document {
    /// The line of `path`, or of its nearest ancestor that exists in the document.
    pub fn line_of(&self, path: &str) -> u64 {
        let mut candidate = path;
        loop {
            if let Some(line) = self.lines.get(candidate) {
                return *line;
            }
            match candidate.rfind(['.', '[']) {
                Some(cut) => candidate = &candidate[..cut],
                None => return self.line,
            }
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: Option<u64>,
    pub message: String,
}

/// Below this size a file is parsed on one thread.
const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// Parses every document of `text`; empty documents are skipped.
///
/// Large multi-document files are cut at document markers and the pieces parsed on
/// every core: YAML parsing dominates loading (about 15 MB/s here), and documents are
/// independent (anchors and aliases never cross a `---`).
pub fn parse_documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let threads = std::thread::available_parallelism().map_or(1, |count| count.get());
    let pieces = split_at_document_markers(text, threads);
    if pieces.len() <= 1 {
        return parse_piece(text, 0);
    }
    let results: Vec<Result<Vec<Document>, SyntaxError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = pieces
            .iter()
            .map(|(offset, piece)| scope.spawn(move || parse_piece(piece, *offset)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    Err(SyntaxError {
                        line: None,
                        message: "the YAML parser failed".into(),
                    })
                })
            })
            .collect()
    });
    let mut documents = Vec::new();
    for result in results {
        documents.extend(result?);
    }
    Ok(documents)
}

/// Cuts `text` into about `count` pieces at lines that start a document (`---`), with
/// the number of lines before each piece. Text with directives (`%YAML`) stays whole.
fn split_at_document_markers(text: &str, count: usize) -> Vec<(u64, &str)> {
    if count <= 1
        || text.len() < PARALLEL_MIN_BYTES
        || text.lines().any(|line| line.starts_with('%'))
    {
        return vec![(0, text)];
    }
    let target = text.len() / count;
    let mut pieces = Vec::new();
    let (mut start, mut start_line, mut line_number, mut offset) = (0usize, 0u64, 0u64, 0usize);
    for line in text.split_inclusive('\n') {
        let marker =
            line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace);
        if marker && offset - start >= target && pieces.len() + 1 < count {
            pieces.push((start_line, &text[start..offset]));
            start = offset;
            start_line = line_number;
        }
        offset += line.len();
        line_number += 1;
    }
    pieces.push((start_line, &text[start..]));
    pieces
}

/// Parses one piece whose first line is line `offset + 1` of the file.
fn parse_piece(text: &str, offset: u64) -> Result<Vec<Document>, SyntaxError> {
    // The default budget (1,024 documents, 250k nodes) protects against hostile input;
    // a GitOps repository may hold 100k entries in one file. Alias limits stay.
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 10_000_000,
            max_events: 500_000_000,
            max_nodes: 200_000_000,
            max_total_scalar_bytes: 4 << 30,
        },
    };
    let nodes: Vec<Node> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|error| SyntaxError {
            line: error.location().map(|location| location.line() + offset),
            message: first_line(&error.without_snippet().to_string()),
        })?;
    Ok(nodes
        .into_iter()
        .map(|node| {
            let mut lines = BTreeMap::new();
            let line = node.line + offset;
            let value = node.into_json(String::new(), &mut lines);
            lines.values_mut().for_each(|line| *line += offset);
            Document { line, value, lines }
        })
        .collect())
}

/// Renders `value` as YAML (used for the generated CRD files).
pub fn to_string<T: Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(value)
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_recorded_for_every_field_of_every_document() {
        let text = "a: 1\nb:\n  c: x\n---\n\n# comment\nlist:\n  - name: y\n    v: |\n      text\n";
        let documents = parse_documents(text).expect("valid yaml");
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[0].lines["a"], 1);
        assert_eq!(documents[0].lines["b.c"], 3);
        assert_eq!(documents[1].lines["list"], 7);
        assert_eq!(documents[1].lines["list[0].name"], 8);
        assert_eq!(documents[1].value["list"][0]["v"], "text\n");
        assert_eq!(documents[1].line_of("list[0].missing"), 8);
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let error = parse_documents("a: 1\nb: [1, 2\nc: 3\n").expect_err("unclosed flow");
        assert!(error.line.is_some(), "{error:?}");
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        assert!(parse_documents("a: 1\na: 2\n").is_err());
    }

    #[test]
    fn a_large_file_parsed_in_pieces_keeps_every_document_and_line() {
        let document =
            |i: usize| format!("---\nname: doc{i}\nvalue: |\n  ---not a marker\n  text {i}\n");
        let text: String = (0..20_000).map(document).collect();
        assert!(text.len() >= PARALLEL_MIN_BYTES);
        assert!(split_at_document_markers(&text, 2).len() == 2);
        let documents = parse_documents(&text).expect("valid yaml");
        assert_eq!(documents.len(), 20_000);
        for i in [0, 9_999, 10_000, 19_999] {
            assert_eq!(documents[i].value["name"], format!("doc{i}"));
            assert_eq!(
                documents[i].lines["name"],
                (i * 5 + 2) as u64,
                "line of doc{i}"
            );
        }
        let broken = format!("{text}---\nname: [unclosed\n");
        let error = parse_documents(&broken).expect_err("syntax error");
        assert!(error.line.is_some_and(|line| line >= 100_001), "{error:?}");
    }

    #[test]
    fn empty_documents_are_skipped() {
        let documents = parse_documents("---\n---\na: 1\n---\n").expect("valid yaml");
        assert_eq!(documents.len(), 1);
    }
}
