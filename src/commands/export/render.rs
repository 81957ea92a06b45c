//! Manifests as YAML text: a bucket's `KeyValueBucket`, then one `KeyValueEntry` per key
//! (or one `KeyValueEntrySet`, in set.rs), in a fixed field order so that the same state always gives the same bytes.

use base64::Engine;
use serde_json::Value;

use super::scalar::{push_inline, push_value};
use crate::api::KeyValueBucketSpec;
use crate::spec::canonical_json;

const API_VERSION: &str = "kvop.dev/v1alpha1";

/// How an exported key's value is written.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueField<'a> {
    /// `value`: UTF-8 text.
    Text(&'a str),
    /// `binaryValue`: base64.
    Binary(&'a [u8]),
    /// `jsonValue`: the stored bytes are exactly kvop's canonical JSON of it.
    Json(Value),
}

impl<'a> ValueField<'a> {
    /// `jsonValue` when asked for and the bytes are canonical JSON other than `null`,
    /// `value` for text without control characters other than tab and line breaks,
    /// `binaryValue` else.
    pub fn of(bytes: &'a [u8], json_values: bool) -> ValueField<'a> {
        // `jsonValue: null` reads back as no value at all (in Kubernetes too, where a null
        // field is an absent one), so the text `null` goes out as `value: "null"`.
        if json_values
            && let Ok(json) = serde_json::from_slice::<Value>(bytes)
            && !json.is_null()
            && canonical_json(json.clone()) == bytes
        {
            return ValueField::Json(json);
        }
        match std::str::from_utf8(bytes) {
            Ok(text) if is_text(text) => ValueField::Text(text),
            _ => ValueField::Binary(bytes),
        }
    }
}

/// Text without control characters other than tab and line breaks. ASCII text (most
/// values) is checked byte by byte; other text needs chars, for the C1 controls.
fn is_text(text: &str) -> bool {
    let allowed = |c: char| !c.is_control() || matches!(c, '\t' | '\n' | '\r');
    if text.is_ascii() {
        text.bytes().all(|b| allowed(char::from(b)))
    } else {
        text.chars().all(allowed)
    }
}

/// The name and namespace of an object.
pub struct Meta<'a> {
    pub name: &'a str,
    pub namespace: Option<&'a str>,
}

/// A `KeyValueBucket` document (without the leading `---`).
pub fn bucket_document(out: &mut String, meta: &Meta<'_>, spec: &KeyValueBucketSpec) {
    let KeyValueBucketSpec {
        bucket,
        description,
        history,
        ttl,
        max_value_size,
        max_bytes,
        storage,
        replicas,
        compression,
        allow_msg_ttl,
        limit_marker_ttl,
        placement,
        republish,
        mirror,
        sources,
        metadata,
        // Never exported: a stream does not record how it is reached, so `bucket_spec`
        // leaves it out and the manifest uses kvop's default connection.
        connection: _not_exported,
        deletion_policy,
        management_policy,
    } = spec;
    header(out, "KeyValueBucket", meta);
    // The bucket exists already: the manifest takes it over explicitly, as kvop requires
    // for a bucket without a claim (a bucket another declaration holds stays refused).
    out.push_str("  annotations:\n    ");
    out.push_str(crate::spec::ADOPT_ANNOTATION);
    out.push_str(": \"true\"\n");
    out.push_str("spec:\n");
    let optional = [
        ("bucket", bucket.as_ref().map(|b| Value::from(b.as_str()))),
        (
            "description",
            description.as_ref().map(|d| Value::from(d.as_str())),
        ),
        ("history", Some(Value::from(*history))),
        ("ttl", ttl.as_ref().map(|t| Value::from(t.as_str()))),
        ("maxValueSize", max_value_size.as_ref().map(json)),
        ("maxBytes", max_bytes.as_ref().map(json)),
        ("storage", Some(json(storage))),
        ("replicas", Some(Value::from(*replicas))),
        ("compression", Some(Value::from(*compression))),
        ("allowMsgTtl", allow_msg_ttl.map(Value::from)),
        (
            "limitMarkerTtl",
            limit_marker_ttl.as_ref().map(|t| Value::from(t.as_str())),
        ),
        ("placement", placement.as_ref().map(json)),
        ("republish", republish.as_ref().map(json)),
        ("mirror", mirror.as_ref().map(json)),
        ("sources", (!sources.is_empty()).then(|| json(sources))),
        ("metadata", (!metadata.is_empty()).then(|| json(metadata))),
        ("managementPolicy", Some(json(management_policy))),
        ("deletionPolicy", Some(json(deletion_policy))),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            push_field(out, 2, field, &value, false);
        }
    }
}

/// A `KeyValueEntry` document (without the leading `---`), kept when its resource is
/// deleted (`deletionPolicy: Retain`).
pub fn entry_document(
    out: &mut String,
    meta: &Meta<'_>,
    bucket_ref: &str,
    key: &str,
    value: &ValueField<'_>,
) {
    header(out, "KeyValueEntry", meta);
    out.push_str("spec:\n  bucketRef:\n    name: ");
    push_inline(out, bucket_ref);
    out.push_str("\n  key: ");
    push_inline(out, key);
    out.push('\n');
    match value {
        ValueField::Text(text) => {
            out.push_str("  value: ");
            push_value(out, 2, text);
        }
        ValueField::Binary(bytes) => {
            out.push_str("  binaryValue: ");
            push_value(
                out,
                2,
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            );
        }
        ValueField::Json(json) => push_field(out, 2, "jsonValue", json, false),
    }
    out.push_str("  deletionPolicy: Retain\n");
}

pub(super) fn header(out: &mut String, kind: &str, meta: &Meta<'_>) {
    out.push_str("apiVersion: ");
    out.push_str(API_VERSION);
    out.push_str("\nkind: ");
    out.push_str(kind);
    out.push_str("\nmetadata:\n  name: ");
    push_inline(out, meta.name);
    out.push('\n');
    if let Some(namespace) = meta.namespace {
        out.push_str("  namespace: ");
        push_inline(out, namespace);
        out.push('\n');
    }
}

/// `key: value` at `indent` spaces in block style, object keys sorted; with
/// `continued`, the line's indentation is already written (a sequence item's `- `).
pub(super) fn push_field(
    out: &mut String,
    indent: usize,
    key: &str,
    value: &Value,
    continued: bool,
) {
    if !continued {
        out.extend(std::iter::repeat_n(' ', indent));
    }
    push_inline(out, key);
    out.push(':');
    push_node(out, indent, value);
}

/// A node after `key:` or `-` at `indent`: nested collections on the next lines.
fn push_node(out: &mut String, indent: usize, value: &Value) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            for (key, value) in fields {
                push_field(out, indent + 2, key, value, false);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            for item in items {
                out.extend(std::iter::repeat_n(' ', indent + 2));
                out.push('-');
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        out.push(' ');
                        let mut fields: Vec<(&String, &Value)> = map.iter().collect();
                        fields.sort_by(|a, b| a.0.cmp(b.0));
                        for (index, (key, value)) in fields.into_iter().enumerate() {
                            push_field(out, indent + 4, key, value, index == 0);
                        }
                    }
                    item => push_node(out, indent + 2, item),
                }
            }
        }
        Value::Object(_) => out.push_str(" {}\n"),
        Value::Array(_) => out.push_str(" []\n"),
        Value::String(text) => {
            out.push(' ');
            push_value(out, indent, text);
        }
        Value::Null => out.push_str(" null\n"),
        Value::Bool(flag) => out.push_str(if *flag { " true\n" } else { " false\n" }),
        Value::Number(number) => {
            out.push(' ');
            out.push_str(&number.to_string());
            out.push('\n');
        }
    }
}

/// Serializing kvop's own API types cannot fail: their keys are strings, numbers finite.
fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}
