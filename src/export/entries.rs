//! The `KeyValueEntry` documents of one bucket, rendered in parallel chunks (100,000
//! keys are about 30 MB of YAML) and concatenated in key order.

use bytes::Bytes;

use super::render::{Meta, ValueField, entry_document};
use crate::manifest::yaml::parse_documents;
use crate::spec::canonical_json;

/// Below this many keys one thread renders them all.
const PARALLEL_FROM: usize = 10_000;

/// One exported key: its object name, key and stored value.
pub struct Exported<'a> {
    pub name: &'a str,
    pub key: &'a str,
    pub value: &'a Bytes,
}

/// Each key as `---` and its document, in the order given, in pieces to be written one
/// after the other.
pub fn render_entries(
    keys: &[Exported<'_>],
    bucket_ref: &str,
    namespace: Option<&str>,
    json_values: bool,
) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if keys.len() < PARALLEL_FROM || threads < 2 {
        return vec![render_chunk(keys, bucket_ref, namespace, json_values)];
    }
    let chunk = keys.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .chunks(chunk)
            .map(|part| scope.spawn(move || render_chunk(part, bucket_ref, namespace, json_values)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_default())
            .collect()
    })
}

fn render_chunk(
    keys: &[Exported<'_>],
    bucket_ref: &str,
    namespace: Option<&str>,
    json_values: bool,
) -> String {
    let mut text = String::with_capacity(keys.len() * 320);
    let mut json_checks = Vec::new();
    for (index, exported) in keys.iter().enumerate() {
        let field = ValueField::of(exported.value, json_values);
        let start = text.len();
        push_entry(&mut text, exported, bucket_ref, namespace, &field);
        if matches!(field, ValueField::Json(_)) {
            json_checks.push((start, text.len(), index));
        }
    }
    if json_checks.is_empty() {
        text
    } else {
        keep_exact_json(text, &json_checks, keys, bucket_ref, namespace)
    }
}

fn push_entry(
    text: &mut String,
    exported: &Exported<'_>,
    bucket_ref: &str,
    namespace: Option<&str>,
    field: &ValueField<'_>,
) {
    text.push_str("---\n");
    let meta = Meta {
        name: exported.name,
        namespace,
    };
    entry_document(text, &meta, bucket_ref, exported.key, field);
}

/// Reads the `jsonValue` documents back with kvop's own YAML reader and writes any that
/// would not store the same bytes (a number YAML reads differently) as `value` instead.
fn keep_exact_json(
    text: String,
    checks: &[(usize, usize, usize)],
    keys: &[Exported<'_>],
    bucket_ref: &str,
    namespace: Option<&str>,
) -> String {
    let documents: String = checks
        .iter()
        .map(|(start, end, _)| &text[*start..*end])
        .collect();
    let parsed = parse_documents(&documents)
        .ok()
        .filter(|parsed| parsed.len() == checks.len());
    let exact = |check: usize| {
        parsed.as_ref().is_some_and(|parsed| {
            canonical_json(parsed[check].value["spec"]["jsonValue"].clone())
                == keys[checks[check].2].value.as_ref()
        })
    };
    let mut fixed = String::with_capacity(text.len());
    let mut copied = 0;
    for (check, (start, end, index)) in checks.iter().enumerate() {
        if exact(check) {
            continue;
        }
        fixed.push_str(&text[copied..*start]);
        let exported = &keys[*index];
        let field = ValueField::of(exported.value, false);
        push_entry(&mut fixed, exported, bucket_ref, namespace, &field);
        copied = *end;
    }
    fixed.push_str(&text[copied..]);
    fixed
}
