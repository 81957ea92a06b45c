//! Report: the plan, the outcome and the bucket statistics of a standalone run, as text
//! for people or as JSON (schema version 1, documented in the README) for programs.

use std::fmt::Write as _;

use serde::Serialize;

use crate::api::KeyValueBucketStatus;
use crate::api::bucket::{ClusterStatus, ReplicaStatus};
use crate::apply::{EntryResult, Outcome};
use crate::nats::NatsError;
use crate::observed::ObservedStream;
use crate::plan::render::Summary;
use crate::plan::{BucketAction, EntryAction, Plan};
use crate::units::format_duration;

/// The JSON report, printed by `--output json`. Field names and meanings are stable
/// within a `schemaVersion`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema_version: u32,
    pub manager: String,
    pub dry_run: bool,
    pub server_version: Option<String>,
    /// Documents of other kinds that were skipped.
    pub skipped: Vec<String>,
    pub plan: PlanReport,
    /// Absent on a dry run.
    pub result: Option<ResultReport>,
    /// Statistics of each declared bucket that exists.
    pub status: Vec<KeyValueBucketStatus>,
    /// Why the run did not fully converge; empty on success.
    pub problems: Vec<String>,
    pub exit_code: i32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    pub summary: Summary,
    pub buckets: Vec<BucketPlanReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketPlanReport {
    pub bucket: String,
    pub owner: String,
    pub source: String,
    /// create, update, unchanged, blocked, observe or missing.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeReport>,
    pub entries: Vec<EntryPlanReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeReport {
    pub field: &'static str,
    pub from: String,
    pub to: String,
    pub immutable: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryPlanReport {
    pub key: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// create, update, unchanged, conflict, skip, delete or wait.
    pub action: &'static str,
    /// The revision the write is conditioned on (writes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_revision: Option<u64>,
    /// The key's current revision (no-write actions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// Who wrote the current value, for drift and conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultReport {
    /// Successful writes (bucket creates and updates, key writes).
    pub writes: usize,
    /// Revision conflicts met during the apply; each re-read the key and decided again.
    pub conflicts: usize,
    /// Transient write failures (timeouts, elections) met; each re-read the key, after a
    /// capped backoff, and decided again.
    pub retries: usize,
    pub buckets: Vec<BucketResultReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketResultReport {
    pub bucket: String,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    /// Keys whose result is not `unchanged`.
    pub entries: Vec<EntryResultReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryResultReport {
    pub key: String,
    /// create, update, delete, skipped, conflict, failed or notAttempted.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    pub reason: &'static str,
    pub message: String,
}

impl From<&NatsError> for ErrorReport {
    fn from(error: &NatsError) -> Self {
        ErrorReport {
            reason: error.reason(),
            message: error.to_string(),
        }
    }
}

/// The plan section of the report.
pub fn plan_report(plan: &Plan) -> PlanReport {
    let buckets = plan
        .buckets
        .iter()
        .map(|bucket| BucketPlanReport {
            bucket: bucket.bucket.clone(),
            owner: bucket.owner.to_string(),
            source: bucket.origin.to_string(),
            action: bucket.action.verb(),
            changes: match &bucket.action {
                BucketAction::Update { changes, .. } | BucketAction::Blocked { changes } => changes
                    .iter()
                    .map(|change| ChangeReport {
                        field: change.field,
                        from: change.from.clone(),
                        to: change.to.clone(),
                        immutable: change.immutable,
                    })
                    .collect(),
                _ => Vec::new(),
            },
            entries: bucket
                .entries
                .iter()
                .map(|entry| {
                    let (expected_revision, revision, writer) = match &entry.action {
                        EntryAction::Create {
                            expected_revision, ..
                        }
                        | EntryAction::Remove {
                            expected_revision, ..
                        } => (Some(*expected_revision), None, None),
                        EntryAction::Update {
                            expected_revision,
                            drift,
                            ..
                        } => (Some(*expected_revision), None, drift.clone()),
                        EntryAction::Unchanged { revision }
                        | EntryAction::Skip { revision, .. } => (None, Some(*revision), None),
                        EntryAction::Conflict {
                            revision, writer, ..
                        }
                        | EntryAction::Retain { revision, writer } => {
                            (None, Some(*revision), Some(writer.clone()))
                        }
                        EntryAction::Wait => (None, None, None),
                    };
                    EntryPlanReport {
                        key: entry.key.clone(),
                        owner: entry.owner.clone(),
                        source: entry.origin.as_ref().map(ToString::to_string),
                        action: entry.action.verb(),
                        expected_revision,
                        revision,
                        writer,
                    }
                })
                .collect(),
        })
        .collect();
    PlanReport {
        summary: Summary::of(plan),
        buckets,
    }
}

/// The result section of the report.
pub fn result_report(outcome: &Outcome) -> ResultReport {
    let buckets = outcome
        .buckets
        .iter()
        .map(|bucket| BucketResultReport {
            bucket: bucket.bucket.clone(),
            action: bucket.action,
            error: bucket.error.as_ref().map(ErrorReport::from),
            entries: bucket
                .entries
                .iter()
                .filter_map(|entry| {
                    let (result, revision, error) = match &entry.result {
                        EntryResult::Written { action, revision } => {
                            (*action, Some(*revision), None)
                        }
                        EntryResult::Settled(action) => match action {
                            EntryAction::Skip { revision, .. } => {
                                ("skipped", Some(*revision), None)
                            }
                            EntryAction::Conflict { revision, .. }
                            | EntryAction::Retain { revision, .. } => {
                                ("conflict", Some(*revision), None)
                            }
                            _ => return None,
                        },
                        EntryResult::Failed { error } => {
                            ("failed", None, Some(ErrorReport::from(error)))
                        }
                        EntryResult::NotAttempted { reason } => (
                            "notAttempted",
                            None,
                            Some(ErrorReport {
                                reason: "NotAttempted",
                                message: reason.clone(),
                            }),
                        ),
                    };
                    Some(EntryResultReport {
                        key: entry.key.clone(),
                        result,
                        revision,
                        error,
                    })
                })
                .collect(),
        })
        .collect();
    ResultReport {
        writes: outcome.writes(),
        conflicts: outcome.conflicts(),
        retries: outcome.retries(),
        buckets,
    }
}

/// The status of one bucket, in the same shape as a `KeyValueBucket`'s `.status`.
pub fn bucket_status(
    bucket: &str,
    stream: &ObservedStream,
    keys: Option<u64>,
) -> KeyValueBucketStatus {
    let to_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    KeyValueBucketStatus {
        bucket: Some(bucket.to_string()),
        values: Some(to_i64(stream.stats.values)),
        keys: keys.map(to_i64),
        history: Some(stream.config.history),
        ttl: (!stream.config.ttl.is_zero()).then(|| format_duration(stream.config.ttl)),
        bytes: Some(to_i64(stream.stats.bytes)),
        backing_store: Some("JetStream".into()),
        storage: Some(format!("{:?}", stream.config.storage).to_lowercase()),
        replicas: Some(stream.config.replicas),
        max_bytes: Some(stream.config.max_bytes),
        max_value_size: Some(stream.config.max_value_size),
        last_revision: Some(to_i64(stream.stats.last_revision)),
        created: Some(stream.stats.created.clone()).filter(|created| !created.is_empty()),
        cluster: stream.stats.cluster.as_ref().map(|cluster| ClusterStatus {
            name: cluster.name.clone(),
            leader: cluster.leader.clone(),
            replicas: cluster
                .replicas
                .iter()
                .map(|(name, current, lag)| ReplicaStatus {
                    name: name.clone(),
                    current: *current,
                    lag: to_i64(*lag),
                })
                .collect(),
        }),
        ..Default::default()
    }
}

/// The outcome for people: what was written and what failed.
pub fn render_outcome(outcome: &Outcome) -> String {
    let mut out = String::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for bucket in &outcome.buckets {
        if let Some(error) = &bucket.error {
            let _ = writeln!(
                out,
                "bucket {}: {} FAILED: {error}",
                bucket.bucket, bucket.action
            );
        } else if matches!(bucket.action, "create" | "update") {
            let _ = writeln!(out, "bucket {}: {}d", bucket.bucket, bucket.action);
        }
        for entry in &bucket.entries {
            let label = match &entry.result {
                EntryResult::Written { action, .. } => action,
                EntryResult::Settled(EntryAction::Skip { .. }) => "skipped",
                EntryResult::Settled(EntryAction::Conflict { .. } | EntryAction::Retain { .. }) => {
                    "in conflict"
                }
                EntryResult::Settled(_) => "unchanged",
                EntryResult::Failed { error } => {
                    let _ = writeln!(out, "    ! {} FAILED: {error}", entry.key);
                    "failed"
                }
                EntryResult::NotAttempted { reason } => {
                    let _ = writeln!(out, "    ! {} not written: {reason}", entry.key);
                    "not written"
                }
            };
            *counts.entry(label).or_default() += 1;
        }
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(label, count)| {
            let verb = match *label {
                "create" => "created",
                "update" => "updated",
                "delete" => "deleted",
                other => other,
            };
            format!("{count} {verb}")
        })
        .collect();
    let mut conflicts = match outcome.conflicts() {
        0 => String::new(),
        count => format!(
            "; {count} revision conflict{} re-read and decided again",
            if count == 1 { "" } else { "s" }
        ),
    };
    if outcome.retries() > 0 {
        conflicts.push_str(&format!(
            "; {} transient failure{} retried",
            outcome.retries(),
            if outcome.retries() == 1 { "" } else { "s" }
        ));
    }
    let _ = writeln!(
        out,
        "Applied: {} write{} ({}{conflicts}).",
        outcome.writes(),
        if outcome.writes() == 1 { "" } else { "s" },
        if parts.is_empty() {
            "no keys".into()
        } else {
            format!("keys: {}", parts.join(", "))
        }
    );
    out
}

/// The bucket statistics as an aligned table.
pub fn render_status(status: &[KeyValueBucketStatus]) -> String {
    let header = [
        "BUCKET",
        "VALUES",
        "KEYS",
        "HISTORY",
        "TTL",
        "BYTES",
        "BACKING STORE",
        "STORAGE",
        "REPLICAS",
    ];
    let number = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 9]> = status
        .iter()
        .map(|bucket| {
            [
                bucket.bucket.clone().unwrap_or_default(),
                number(bucket.values),
                number(bucket.keys),
                number(bucket.history),
                bucket.ttl.clone().unwrap_or_else(|| "-".into()),
                number(bucket.bytes),
                bucket.backing_store.clone().unwrap_or_default(),
                bucket.storage.clone().unwrap_or_default(),
                number(bucket.replicas),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}
