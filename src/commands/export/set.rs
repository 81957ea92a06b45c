//! `kvop export --sets`: one bucket's keys as one `KeyValueEntrySet` document, every key
//! an inline item (relative to `--prefix`), each value written as `kvop export` writes an
//! entry's value. A set holds at most 10,000 items, so the whole document is rendered at
//! once (about 3 MB at most with short values), unlike entries, which are streamed.

use bytes::Bytes;

use super::ExportError;
use super::render::{Meta, ValueField, header, push_field};
use super::scalar::{push_inline, push_value};
use crate::api::entry_set::MAX_SET_ITEMS;
use crate::manifest::yaml::parse_documents;
use crate::spec::canonical_json;

/// One bucket's keys as a set.
pub struct SetKeys<'a> {
    /// The `KeyValueBucket`'s object name, for `bucketRef`.
    pub bucket_ref: &'a str,
    /// `keyPrefix`; the keys below are relative to it.
    pub prefix: Option<&'a str>,
    pub json_values: bool,
    /// The item keys (after the prefix) and values, in the order they are written.
    pub items: Vec<(&'a str, &'a Bytes)>,
}

/// A bucket's set, checked before anything is written.
pub struct PlannedSet<'a> {
    pub name: String,
    /// The keys after the prefix, in byte order.
    pub items: Vec<(&'a str, &'a Bytes)>,
}

impl<'a> PlannedSet<'a> {
    /// The set `name` of a bucket's `keys` (in byte order) under `prefix`, a note for a
    /// key it cannot hold pushed to `notes`; refused over the items a set may hold.
    pub fn new(
        bucket: &str,
        name: String,
        keys: &[(&'a str, &'a Bytes)],
        prefix: Option<&str>,
        notes: &mut Vec<String>,
    ) -> Result<PlannedSet<'a>, ExportError> {
        let (items, equal) = under_prefix(keys, prefix);
        if equal {
            notes.push(format!(
                "key {:?} (it equals --prefix, and a set item needs a key after its prefix)",
                prefix.unwrap_or_default()
            ));
        }
        if items.len() > MAX_SET_ITEMS as usize {
            return Err(ExportError::TooManyForSet {
                bucket: bucket.to_string(),
                keys: items.len(),
                prefix: prefix.map(str::to_string),
            });
        }
        Ok(PlannedSet { name, items })
    }

    /// Whether a document is written: a set of no keys would be a claim on nothing.
    pub fn is_written(&self) -> bool {
        !self.items.is_empty()
    }

    /// `---` and the set's document, or nothing when it is not written.
    pub fn render(
        self,
        bucket_ref: &str,
        prefix: Option<&str>,
        namespace: Option<&str>,
        json_values: bool,
    ) -> String {
        if !self.is_written() {
            return String::new();
        }
        let mut document = String::from("---\n");
        let meta = Meta {
            name: &self.name,
            namespace,
        };
        let keys = SetKeys {
            bucket_ref,
            prefix,
            json_values,
            items: self.items,
        };
        set_document(&mut document, &meta, &keys);
        document
    }
}

/// The items (with their prefix) of `keys`, which are in byte order: those that start
/// with `prefix`, less it, and whether a key equal to `prefix` was left out (a set item
/// needs a key after the prefix). Byte order of the keys is byte order of the items.
pub fn under_prefix<'a>(
    keys: &[(&'a str, &'a Bytes)],
    prefix: Option<&str>,
) -> (Vec<(&'a str, &'a Bytes)>, bool) {
    let Some(prefix) = prefix else {
        return (keys.to_vec(), false);
    };
    let mut equal = false;
    let items = keys
        .iter()
        .filter_map(|(key, value)| match key.strip_prefix(prefix) {
            Some("") => {
                equal = true;
                None
            }
            Some(rest) => Some((rest, *value)),
            None => None,
        })
        .collect();
    (items, equal)
}

/// A `KeyValueEntrySet` document (without the leading `---`), kept when its resource is
/// deleted (`deletionPolicy: Retain`) and pruning only what it wrote (the default
/// `prune: Owned`): exporting must never make kvop delete a key.
pub fn set_document(out: &mut String, meta: &Meta<'_>, keys: &SetKeys<'_>) {
    let mut fields: Vec<ValueField<'_>> = keys
        .items
        .iter()
        .map(|(_, value)| ValueField::of(value, keys.json_values))
        .collect();
    keep_exact_json(&keys.items, &mut fields);
    header(out, "KeyValueEntrySet", meta);
    out.push_str("spec:\n  bucketRef:\n    name: ");
    push_inline(out, keys.bucket_ref);
    out.push('\n');
    if let Some(prefix) = keys.prefix {
        out.push_str("  keyPrefix: ");
        push_inline(out, prefix);
        out.push('\n');
    }
    out.push_str("  entries:\n");
    for ((key, _), field) in keys.items.iter().zip(&fields) {
        push_item(out, key, field);
    }
    out.push_str("  deletionPolicy: Retain\n");
}

/// `- key: ...` and its value field, under `spec.entries`.
fn push_item(out: &mut String, key: &str, field: &ValueField<'_>) {
    out.push_str("  - key: ");
    push_inline(out, key);
    out.push('\n');
    match field {
        ValueField::Text(text) => {
            out.push_str("    value: ");
            push_value(out, 4, text);
        }
        ValueField::Binary(bytes) => {
            out.push_str("    binaryValue: ");
            push_value(out, 4, &base64_text(bytes));
        }
        ValueField::Json(json) => push_field(out, 4, "jsonValue", json, false),
    }
}

fn base64_text(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads the `jsonValue` items back, as they are written, with kvop's own YAML reader,
/// and turns any that would not store the same bytes (a number YAML reads differently)
/// into `value` or `binaryValue`, as entries do.
fn keep_exact_json<'a>(items: &[(&str, &'a Bytes)], fields: &mut [ValueField<'a>]) {
    let checked: Vec<usize> = (0..fields.len())
        .filter(|index| matches!(fields[*index], ValueField::Json(_)))
        .collect();
    if checked.is_empty() {
        return;
    }
    let mut text = String::from("spec:\n  entries:\n");
    for index in &checked {
        push_item(&mut text, items[*index].0, &fields[*index]);
    }
    let parsed = parse_documents(&text).ok();
    let read_back = |position: usize| {
        parsed
            .as_ref()
            .and_then(|parsed| parsed.first())
            .map(|document| document.value["spec"]["entries"][position]["jsonValue"].clone())
    };
    for (position, index) in checked.into_iter().enumerate() {
        let exact =
            read_back(position).is_some_and(|json| canonical_json(json) == items[index].1.as_ref());
        if !exact {
            fields[index] = ValueField::of(items[index].1, false);
        }
    }
}
