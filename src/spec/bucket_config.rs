//! The rules of a `KeyValueBucket` spec's settings, normalized into a [`BucketConfig`].

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use time::format_description::well_known::Rfc3339;

use crate::api::KeyValueBucketSpec;
use crate::api::bucket::{MIN_LIMIT_MARKER_TTL, MIN_TTL};
use crate::api::stream::{ExternalSource, StreamSource};
use crate::desired::BucketConfig;
use crate::{names, units};

/// A problem in one field of a spec: (field path, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field's path, e.g. `spec.ttl`; `spec` for a rule over several fields.
    pub field: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: &str, message: impl Into<String>) -> FieldProblem {
        FieldProblem {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Checks every field of `spec` and returns the normalized configuration, or every
/// problem found.
pub fn bucket_config(spec: &KeyValueBucketSpec) -> Result<BucketConfig, Vec<FieldProblem>> {
    let KeyValueBucketSpec {
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
        // Not settings of the stream, so not part of its config: `desired_bucket` reads
        // the name and both policies, the operator's operator/connection.rs the
        // connection (the manifest loader refuses one).
        bucket: _name,
        connection: _connection,
        deletion_policy: _deletion,
        management_policy: _management,
    } = spec;
    let mut problems = Vec::new();
    let mut fail = |field: &str, message: String| problems.push(FieldProblem::new(field, message));
    if !(1..=64).contains(history) {
        fail(
            "spec.history",
            format!("history must be between 1 and 64, got {history}"),
        );
    }
    if !(1..=5).contains(replicas) {
        fail(
            "spec.replicas",
            format!("replicas must be between 1 and 5, got {replicas}"),
        );
    }
    let ttl = duration(ttl.as_deref(), MIN_TTL).unwrap_or_else(|error| {
        fail("spec.ttl", error.to_string());
        None
    });
    // The server writes limit markers as messages with a TTL, so it turns per-message TTL
    // on with them even when told `false`: declaring both would never read back.
    if *allow_msg_ttl == Some(false) && limit_marker_ttl.is_some() {
        fail(
            "spec.allowMsgTtl",
            "cannot be false with limitMarkerTtl: limit markers need per-message TTL (leave allowMsgTtl out or set it true)".into(),
        );
    }
    let limit_marker_ttl = duration(limit_marker_ttl.as_deref(), MIN_LIMIT_MARKER_TTL)
        .unwrap_or_else(|error| {
            fail("spec.limitMarkerTtl", error.to_string());
            None
        });
    let max_value_size = size(max_value_size.as_ref()).unwrap_or_else(|error| {
        fail("spec.maxValueSize", error.to_string());
        -1
    });
    let max_bytes = size(max_bytes.as_ref()).unwrap_or_else(|error| {
        fail("spec.maxBytes", error.to_string());
        -1
    });
    // The stream's max_msg_size is a 32-bit integer on the server.
    if max_value_size > i64::from(i32::MAX) {
        fail(
            "spec.maxValueSize",
            format!(
                "{max_value_size} bytes is over the server's limit of {}",
                i32::MAX
            ),
        );
    }
    if mirror.is_some() && !sources.is_empty() {
        fail(
            "spec.mirror",
            "a bucket cannot have both a mirror and sources".into(),
        );
    }
    let mirror = mirror
        .as_ref()
        .map(|mirror| normalize_source(mirror, "spec.mirror", &mut fail));
    let sources: Vec<StreamSource> = sources
        .iter()
        .enumerate()
        .map(|(index, source)| {
            normalize_source(source, &format!("spec.sources[{index}]"), &mut fail)
        })
        .collect();
    if mirror.is_some() && limit_marker_ttl.is_some() {
        fail(
            "spec.limitMarkerTtl",
            "a mirror cannot have limit markers (the server forbids them)".into(),
        );
    }
    // An empty placement is no placement: the server stores none.
    let placement = placement
        .clone()
        .filter(|placement| placement.cluster.is_some() || !placement.tags.is_empty());
    if let Some(reserved) = metadata.keys().find(|key| key.starts_with("_nats.")) {
        fail(
            "spec.metadata",
            format!("metadata key {reserved:?} is reserved for the server"),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(BucketConfig {
        description: description.clone().unwrap_or_default(),
        history: i64::from(*history),
        ttl: ttl.unwrap_or_default(),
        max_value_size,
        max_bytes,
        storage: *storage,
        replicas: i64::from(*replicas),
        compression: *compression,
        allow_msg_ttl: if limit_marker_ttl.is_some() {
            Some(true)
        } else {
            *allow_msg_ttl
        },
        limit_marker_ttl,
        placement,
        republish: republish.clone(),
        mirror,
        sources,
        metadata: metadata.clone(),
    })
}

/// A duration or size setting that is not a valid value for its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SettingError {
    #[error(transparent)]
    Duration(#[from] units::DurationError),
    /// Shorter than the server takes for this setting.
    #[error("{}", units::too_short_message(.text, *.minimum))]
    TooShort { text: String, minimum: Duration },
    #[error(transparent)]
    Size(#[from] units::SizeError),
    /// A size of 0 would make a bucket that holds nothing: no limit is left out.
    #[error("must be at least 1 byte (leave it out for no limit)")]
    ZeroSize,
}

/// An optional duration of at least `minimum`.
fn duration(text: Option<&str>, minimum: Duration) -> Result<Option<Duration>, SettingError> {
    let Some(text) = text else { return Ok(None) };
    let value = units::parse_duration(text)?;
    if value < minimum {
        return Err(SettingError::TooShort {
            text: text.to_string(),
            minimum,
        });
    }
    Ok(Some(value))
}

/// An optional size in bytes, -1 when absent (unlimited).
fn size(value: Option<&IntOrString>) -> Result<i64, SettingError> {
    match value.map(units::parse_size).transpose()? {
        None => Ok(-1),
        Some(0) => Err(SettingError::ZeroSize),
        Some(bytes) => Ok(bytes),
    }
}

/// Checks a mirror or source and writes it the way the server stores it: a `domain`
/// becomes the `external` API prefix it stands for, `startTime` canonical RFC 3339.
fn normalize_source(
    source: &StreamSource,
    field: &str,
    fail: &mut impl FnMut(&str, String),
) -> StreamSource {
    let mut normalized = source.clone();
    if let Err(error) = names::check_bucket_name(&source.name) {
        fail(&format!("{field}.name"), error.to_string());
    }
    if let Some(domain) = &source.domain {
        if source.external.is_some() {
            fail(
                &format!("{field}.domain"),
                "set either domain or external, not both".into(),
            );
        }
        normalized.external = Some(ExternalSource {
            api_prefix: format!("$JS.{domain}.API"),
            deliver_prefix: None,
        });
        normalized.domain = None;
    }
    if let Some(text) = &source.start_time {
        match time::OffsetDateTime::parse(text, &Rfc3339) {
            Ok(time) => {
                normalized.start_time = time.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok()
            }
            Err(error) => fail(
                &format!("{field}.startTime"),
                format!("{text:?} is not an RFC 3339 time: {error}"),
            ),
        }
    }
    if let Some(filter) = &source.filter_subject
        && !filter.starts_with(&format!("$KV.{}.", source.name))
    {
        fail(
            &format!("{field}.filterSubject"),
            format!(
                "{filter:?} must select keys of bucket {:?} (start with \"$KV.{}.\")",
                source.name, source.name
            ),
        );
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> KeyValueBucketSpec {
        serde_yaml_ng::from_str(yaml).expect("a spec")
    }

    #[test]
    fn per_message_ttl_is_kept_as_declared_and_turned_on_by_limit_markers() {
        for (yaml, expected) in [
            ("{}", None),
            ("allowMsgTtl: false", Some(false)),
            ("allowMsgTtl: true", Some(true)),
            ("limitMarkerTtl: 5s", Some(true)),
            ("{allowMsgTtl: true, limitMarkerTtl: 5s}", Some(true)),
        ] {
            let config = bucket_config(&spec(yaml)).expect("valid");
            assert_eq!(config.allow_msg_ttl, expected, "{yaml}");
        }
    }

    #[test]
    fn per_message_ttl_off_with_limit_markers_is_refused_with_the_field() {
        let problems = bucket_config(&spec("{allowMsgTtl: false, limitMarkerTtl: 5s}"))
            .expect_err("markers need per-message TTL");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "spec.allowMsgTtl");
        assert!(
            problems[0].message.contains("limitMarkerTtl"),
            "{problems:?}"
        );
    }
}
