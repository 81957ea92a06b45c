//! From resources to desired state: the rules of both kinds, shared by the manifest
//! loader and the operator (which adds only what needs Kubernetes, such as `valueFrom`).

mod bucket_config;
pub mod entry_set;
mod operations;

use base64::Engine;
use bytes::Bytes;

pub use bucket_config::{FieldProblem, bucket_config};
pub use operations::{
    FLUX_REQUESTED_ANNOTATION, PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION, paused,
    reconcile_requested,
};

use crate::api::entry::VALUE_SOURCES;
use crate::api::{KeyValueBucket, KeyValueEntrySpec, ValueFrom};
use crate::desired::{DesiredBucket, ObjectRef, Origin};
use crate::names;

fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem::new(field, message)
}

/// The NATS bucket name of a resource and the field it comes from.
pub fn bucket_name<'a>(owner: &'a ObjectRef, bucket: Option<&'a str>) -> (&'a str, &'static str) {
    match bucket {
        Some(bucket) => (bucket, "spec.bucket"),
        None => (owner.name.as_str(), "metadata.name"),
    }
}

/// A bucket resource as desired state, or every problem of its spec.
pub fn desired_bucket(
    owner: ObjectRef,
    origin: Origin,
    resource: &KeyValueBucket,
) -> Result<DesiredBucket, Vec<FieldProblem>> {
    let spec = &resource.spec;
    let (name, name_field) = bucket_name(&owner, spec.bucket.as_deref());
    let name = name.to_string();
    let mut problems = Vec::new();
    if let Err(error) = names::check_bucket_name(&name) {
        problems.push(problem(name_field, error.to_string()));
    }
    if let Some(republish) = &spec.republish
        && republish.destination.starts_with(&format!("$KV.{name}."))
    {
        problems.push(problem(
            "spec.republish.destination",
            "republishing into the bucket's own subjects would form a cycle",
        ));
    }
    let adopt = adopt(resource.metadata.annotations.as_ref())
        .map_err(|problem| problems.push(problem))
        .unwrap_or(false);
    let config = bucket_config(spec)
        .map_err(|more| problems.extend(more))
        .ok();
    match config {
        Some(config) if problems.is_empty() => Ok(DesiredBucket {
            owner,
            origin,
            name,
            config,
            adopt,
            management: spec.management_policy,
            deletion: spec.deletion_policy,
        }),
        _ => Err(problems),
    }
}

/// The key of an entry resource (`spec.key`, else `metadata.name`), checked.
pub fn entry_key(owner: &ObjectRef, spec: &KeyValueEntrySpec) -> Result<String, FieldProblem> {
    let (key, field) = match &spec.key {
        Some(key) => (key.as_str(), "spec.key"),
        None => (owner.name.as_str(), "metadata.name"),
    };
    names::check_key(key).map_err(|error| problem(field, error.to_string()))?;
    Ok(key.to_string())
}

/// The annotation that lets a bucket resource take over a bucket that exists without a
/// claim and that kvop did not create (made by hand, by NACK, by an application): an
/// explicit decision, since managing it changes a configuration someone else chose.
pub const ADOPT_ANNOTATION: &str = "kvop.dev/adopt";

/// The annotation that lets `deletionPolicy: Delete` delete a bucket kvop did not create.
pub const DELETE_ADOPTED_ANNOTATION: &str = "kvop.dev/delete-adopted";

/// Whether a bucket's annotations say to adopt an unclaimed bucket.
pub fn adopt(
    annotations: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<bool, FieldProblem> {
    flag(annotations, ADOPT_ANNOTATION)
}

/// A `"true"`/`"false"` annotation (absent: false); anything else is a problem.
pub(crate) fn flag(
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    key: &str,
) -> Result<bool, FieldProblem> {
    match annotations
        .and_then(|annotations| annotations.get(key))
        .map(|value| value.trim())
    {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(value) => Err(problem(
            &format!("metadata.annotations[{key}]"),
            format!("must be \"true\" or \"false\", got {value:?}"),
        )),
    }
}

/// The annotation that lets kvop take an `IfUnchanged` key back once: its value is the
/// revision of the foreign write to overwrite (the one the `Conflict` condition names).
/// Naming the revision makes it a decision about that value only: a later foreign write
/// has a new revision and is a conflict again.
pub const TAKE_OVER_ANNOTATION: &str = "kvop.dev/take-over";

/// The revision an entry's take-over annotation names, if it has one.
pub fn take_over(
    annotations: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<Option<u64>, FieldProblem> {
    let Some(value) = annotations.and_then(|annotations| annotations.get(TAKE_OVER_ANNOTATION))
    else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(revision) if revision > 0 => Ok(Some(revision)),
        _ => Err(problem(
            &format!("metadata.annotations[{TAKE_OVER_ANNOTATION}]"),
            format!("must be the revision to overwrite (a positive integer), got {value:?}"),
        )),
    }
}

/// Where an entry's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSource<'a> {
    /// `value`, `binaryValue` or `jsonValue`, as the bytes to store.
    Inline(Bytes),
    /// `valueFrom`: a Secret or ConfigMap key, read by the operator.
    From(&'a ValueFrom),
}

/// Standard base64, line breaks and other ASCII whitespace ignored: the `base64` tool
/// wraps at 76 columns by default, and Kubernetes accepts wrapped base64 in the same
/// field (`format: byte`).
fn decode_base64(encoded: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(compact)
}

/// The value source of an entry: exactly one must be set; inline values are decoded.
pub fn entry_value(spec: &KeyValueEntrySpec) -> Result<ValueSource<'_>, FieldProblem> {
    value_source(
        ValueFields {
            value: spec.value.as_ref(),
            binary_value: spec.binary_value.as_ref(),
            json_value: spec.json_value.as_ref(),
            value_from: spec.value_from.as_ref(),
        },
        "spec",
        &VALUE_SOURCES,
    )
}

/// The four ways a value may be declared, by a KeyValueEntry or a set's item.
pub struct ValueFields<'a> {
    pub value: Option<&'a String>,
    pub binary_value: Option<&'a String>,
    pub json_value: Option<&'a serde_json::Value>,
    pub value_from: Option<&'a ValueFrom>,
}

/// The value source of `fields`, found at `at` (`spec`, `spec.entries[3]`) and named in
/// messages as `names` says: exactly one must be set; inline values are decoded.
pub fn value_source<'a>(
    fields: ValueFields<'a>,
    at: &str,
    names: &[&str; 4],
) -> Result<ValueSource<'a>, FieldProblem> {
    let field = |name: &str| format!("{at}.{}", name.rsplit('.').next().unwrap_or(name));
    match (
        fields.value,
        fields.binary_value,
        fields.json_value,
        fields.value_from,
    ) {
        (Some(text), None, None, None) => Ok(ValueSource::Inline(Bytes::from(text.clone()))),
        (None, Some(encoded), None, None) => decode_base64(encoded)
            .map(|raw| ValueSource::Inline(Bytes::from(raw)))
            .map_err(|error| problem(&field("binaryValue"), format!("invalid base64: {error}"))),
        (None, None, Some(json), None) => Ok(ValueSource::Inline(Bytes::from(canonical_json(
            json.clone(),
        )))),
        (None, None, None, Some(from))
            if from.secret_key_ref.is_some() != from.config_map_key_ref.is_some() =>
        {
            Ok(ValueSource::From(from))
        }
        (None, None, None, Some(_)) => Err(problem(
            &field("valueFrom"),
            "exactly one of secretKeyRef and configMapKeyRef must be set",
        )),
        (value, binary, json, from) => {
            let given: Vec<&str> = [
                value.is_some(),
                binary.is_some(),
                json.is_some(),
                from.is_some(),
            ]
            .into_iter()
            .zip(names)
            .filter_map(|(set, name)| set.then_some(*name))
            .collect();
            let found = if given.is_empty() {
                "none".to_string()
            } else {
                given.join(", ")
            };
            Err(problem(
                at,
                format!(
                    "exactly one of {} must be set, found {found}",
                    names.join(", ")
                ),
            ))
        }
    }
}

/// Compact JSON with object keys sorted at every level, so the stored bytes do not
/// depend on the order keys were written in.
pub fn canonical_json(mut value: serde_json::Value) -> Vec<u8> {
    fn sort(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.sort_keys();
                map.values_mut().for_each(sort);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(sort),
            _ => {}
        }
    }
    sort(&mut value);
    // Serializing a Value cannot fail: its keys are strings and its numbers finite.
    serde_json::to_vec(&value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_base64_as_the_base64_tool_writes_it_decodes() {
        let raw: Vec<u8> = (0..=255u8).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
        // `base64` wraps at 76 columns; YAML block scalars keep the line breaks.
        let wrapped: String = encoded
            .as_bytes()
            .chunks(76)
            .map(|line| format!("{}\n", String::from_utf8_lossy(line)))
            .collect();
        assert_eq!(decode_base64(&wrapped).expect("wrapped"), raw);
        assert_eq!(
            decode_base64(&format!("  {encoded}\r\n")).expect("padded"),
            raw
        );
        assert!(decode_base64("not base64!").is_err());
    }

    /// The apiserver checks `binaryValue` with the CRD's pattern, kvop with its decoder:
    /// a value one accepts and the other refuses would apply in one mode and not the
    /// other. Every string of up to 6 symbols over an alphabet that reaches each rule
    /// (alphabet, padding, canonical last symbol, whitespace, foreign bytes) must get
    /// the same verdict from both.
    #[test]
    fn the_crd_base64_pattern_accepts_exactly_what_kvop_decodes() {
        let pattern = regex::Regex::new(crate::api::entry::BASE64_PATTERN).expect("pattern");
        let symbols = ['A', 'Q', 'B', '/', '+', '=', '\n', ' ', '-'];
        let mut checked = 0;
        let mut candidate = String::new();
        for length in 0..=6u32 {
            for mut index in 0..symbols.len().pow(length) {
                candidate.clear();
                for _ in 0..length {
                    candidate.push(symbols[index % symbols.len()]);
                    index /= symbols.len();
                }
                assert_eq!(
                    pattern.is_match(&candidate),
                    decode_base64(&candidate).is_ok(),
                    "{candidate:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 500_000);
        // Every byte value at every position of the last group, wrapped as `base64` does.
        for length in 0..=80usize {
            let raw: Vec<u8> = (0..length).map(|i| (i * 37 + length) as u8).collect();
            let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
            let wrapped = encoded
                .as_bytes()
                .chunks(76)
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .collect::<Vec<_>>()
                .join("\r\n");
            assert!(pattern.is_match(&wrapped), "{wrapped:?}");
            assert!(decode_base64(&wrapped).is_ok(), "{wrapped:?}");
        }
    }
}
