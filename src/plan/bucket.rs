//! The decision for a bucket's configuration: a field-by-field diff of projections.

use serde::Serialize;

use crate::api::ManagementPolicy;
use crate::desired::{BucketConfig, DesiredBucket};
use crate::observed::ObservedBucket;
use crate::units::{format_duration, format_size};

use super::BucketAction;

/// One changed field, rendered for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The manifest field, e.g. `ttl`.
    pub field: &'static str,
    pub from: String,
    pub to: String,
    /// The server refuses this change on an existing bucket.
    pub immutable: bool,
}

pub fn decide_bucket(desired: &DesiredBucket, observed: &ObservedBucket) -> BucketAction {
    let Some(stream) = &observed.stream else {
        return match desired.management {
            ManagementPolicy::Manage => BucketAction::Create {
                config: desired.config.clone(),
            },
            ManagementPolicy::Observe => BucketAction::Missing,
        };
    };
    if desired.management == ManagementPolicy::Observe {
        return BucketAction::Observe;
    }
    let changes = diff_config(&stream.config, &desired.config);
    let blocked: Vec<FieldChange> = changes
        .iter()
        .filter(|change| change.immutable)
        .cloned()
        .collect();
    if !blocked.is_empty() {
        BucketAction::Blocked { changes: blocked }
    } else if changes.is_empty() {
        BucketAction::Unchanged
    } else {
        BucketAction::Update {
            config: desired.config.clone(),
            changes,
        }
    }
}

/// Every field that differs between what the server has and what is declared.
pub fn diff_config(current: &BucketConfig, desired: &BucketConfig) -> Vec<FieldChange> {
    let BucketConfig {
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
    } = desired;
    let mut changes = Vec::new();
    let mut compare = |field: &'static str, from: String, to: String, immutable: bool| {
        if from != to {
            changes.push(FieldChange {
                field,
                from,
                to,
                immutable,
            });
        }
    };
    let size = |bytes: i64| {
        if bytes < 0 {
            "unlimited".to_string()
        } else {
            format_size(bytes)
        }
    };
    let duration = |value: std::time::Duration| {
        if value.is_zero() {
            "none".to_string()
        } else {
            format_duration(value)
        }
    };
    compare(
        "description",
        format!("{:?}", current.description),
        format!("{description:?}"),
        false,
    );
    compare(
        "history",
        current.history.to_string(),
        history.to_string(),
        false,
    );
    compare("ttl", duration(current.ttl), duration(*ttl), false);
    compare(
        "maxValueSize",
        size(current.max_value_size),
        size(*max_value_size),
        false,
    );
    compare("maxBytes", size(current.max_bytes), size(*max_bytes), false);
    compare(
        "storage",
        format!("{:?}", current.storage).to_lowercase(),
        format!("{storage:?}").to_lowercase(),
        true,
    );
    compare(
        "replicas",
        current.replicas.to_string(),
        replicas.to_string(),
        false,
    );
    compare(
        "compression",
        current.compression.to_string(),
        compression.to_string(),
        false,
    );
    // Removing limit markers would turn per-message TTL off, which the server refuses
    // (10052). Per-message TTL itself is not compared: a bucket that has it without
    // markers (made by legacy nats.py) keeps it, since an update never turns it off.
    let _ = allow_msg_ttl;
    let marker =
        |ttl: Option<std::time::Duration>| ttl.map(duration).unwrap_or_else(|| "none".into());
    compare(
        "limitMarkerTtl",
        marker(current.limit_marker_ttl),
        marker(*limit_marker_ttl),
        current.limit_marker_ttl.is_some() && limit_marker_ttl.is_none(),
    );
    compare(
        "placement",
        json(&current.placement),
        json(placement),
        false,
    );
    compare(
        "republish",
        json(&current.republish),
        json(republish),
        false,
    );
    compare("mirror", json(&current.mirror), json(mirror), true);
    compare("sources", json(&current.sources), json(sources), false);
    compare("metadata", json(&current.metadata), json(metadata), false);
    changes
}

/// Compact JSON of a structured field, `null` when absent.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
