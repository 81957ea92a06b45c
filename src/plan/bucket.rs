//! The decision for a bucket's configuration: a field-by-field diff of projections.

use serde::Serialize;

use crate::api::ManagementPolicy;
use crate::desired::{BucketClaim, BucketConfig, DesiredBucket};
use crate::observed::{ObservedBucket, ObservedStream};
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

/// Who declares a bucket, and what lets it hold the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    /// The claim this declaration records.
    pub claim: BucketClaim,
    /// The operator: a claim is its object's (`namespace/name`). `kvop reconcile`: a
    /// claim is its manager's, whichever manifest of the set declares the bucket.
    pub per_object: bool,
    /// The holder, an object of this manager, is gone: its claim passes on.
    pub released: bool,
    /// It may take over a bucket that exists without a claim and that kvop did not
    /// create: `kvop.dev/adopt`, or evidence that this declaration managed it before
    /// claims existed (its status in the operator, keys of its manager in a file run).
    pub adopt: bool,
}

/// Why a declaration may not manage an existing bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketRefusal {
    /// Another kvop object holds it (named).
    Claimed { holder: String },
    /// It exists without a claim and kvop did not create it: taking it over is explicit.
    NotAdopted,
}

impl BucketRefusal {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            BucketRefusal::Claimed { .. } => "ClaimedElsewhere",
            BucketRefusal::NotAdopted => "AdoptionRequired",
        }
    }

    /// What a person reads.
    pub fn explain(&self) -> String {
        match self {
            BucketRefusal::Claimed { holder } => format!(
                "the bucket is claimed by {holder}: kvop leaves it to its holder and changes nothing"
            ),
            BucketRefusal::NotAdopted => format!(
                "the bucket exists and kvop did not create it; to manage its configuration, annotate the declaration {}=\"true\" (or set managementPolicy: Observe to only report it)",
                crate::spec::ADOPT_ANNOTATION
            ),
        }
    }
}

/// Whether `claimant` may manage the existing `stream`, and if not, why.
pub fn refusal(claimant: &Claimant, stream: &ObservedStream) -> Option<BucketRefusal> {
    let ours = &claimant.claim;
    match (&stream.claim, &stream.created_by) {
        (Some(held), _) => {
            let same_manager = held.manager == ours.manager;
            let holds = same_manager
                && (!claimant.per_object || held.owner == ours.owner || claimant.released);
            (!holds).then(|| BucketRefusal::Claimed {
                holder: held.to_string(),
            })
        }
        // Made by this manager before claims existed: its declaration takes it as it is.
        (None, Some(creator)) if *creator == ours.manager => None,
        (None, Some(creator)) => Some(BucketRefusal::Claimed {
            holder: format!("manager {creator:?}, which created it"),
        }),
        (None, None) if claimant.adopt => None,
        (None, None) => Some(BucketRefusal::NotAdopted),
    }
}

pub fn decide_bucket(
    desired: &DesiredBucket,
    observed: &ObservedBucket,
    claimant: &Claimant,
) -> BucketAction {
    let Some(stream) = &observed.stream else {
        return match desired.management {
            ManagementPolicy::Manage => BucketAction::Create {
                config: desired.config.clone(),
            },
            ManagementPolicy::Observe => BucketAction::Missing,
        };
    };
    // Observing changes nothing, so it claims nothing and needs no claim.
    if desired.management == ManagementPolicy::Observe {
        return BucketAction::Observe;
    }
    if let Some(refusal) = refusal(claimant, stream) {
        return BucketAction::Refused { refusal };
    }
    let mut changes = diff_config(&stream.config, &desired.config);
    if stream.claim.as_ref() != Some(&claimant.claim) {
        changes.push(FieldChange {
            field: "claim",
            from: stream
                .claim
                .as_ref()
                .map_or_else(|| "none".to_string(), ToString::to_string),
            to: claimant.claim.to_string(),
            immutable: false,
        });
    }
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
    // Left out, per-message TTL is not compared: a bucket that has it without markers
    // (made by legacy nats.py) keeps it, since an update never turns it off. Declared, it
    // is: turning it on is an update, turning it off is refused by the server (10052).
    if let Some(wanted) = allow_msg_ttl {
        let has = current.allow_msg_ttl == Some(true);
        compare(
            "allowMsgTtl",
            has.to_string(),
            wanted.to_string(),
            has && !wanted,
        );
    }
    // Removing limit markers is blocked too, as the rule kvop documents for them (once
    // set, never removed), although the server takes it while per-message TTL stays on.
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
