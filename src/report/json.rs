//! The JSON report of `--output json`, for programs: its shape is published as JSON
//! Schema in `docs/report.schema.json` (checked by `tests/report_schema.rs`) and stable
//! within a [`SCHEMA_VERSION`].

use serde::Serialize;

use super::summary::Summary;
use crate::api::KeyValueBucketStatus;
use crate::apply::{EntryResult, Outcome};
use crate::nats::NatsError;
use crate::plan::{BucketAction, EntryAction, Plan};
use crate::problem::Problem;

/// Raised when a field is removed, renamed or changes meaning; adding one keeps it.
/// Version 2: `problems` are objects, and a field that does not apply is absent, not null.
pub const SCHEMA_VERSION: u32 = 2;

/// One document for every run, also one that stopped on invalid input or a connection
/// failure: what the run did not get to is absent.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema_version: u32,
    pub manager: String,
    pub dry_run: bool,
    /// Absent when the run did not connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// Documents of other kinds, and paths read already, that were skipped.
    pub skipped: Vec<String>,
    /// Absent when the run stopped before planning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanReport>,
    /// Present on every run that planned and is not a dry run, also with nothing to write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultReport>,
    /// Statistics of each declared bucket that exists.
    pub status: Vec<KeyValueBucketStatus>,
    /// Why the run did not fully converge; empty on success.
    pub problems: Vec<Problem>,
    pub exit_code: i32,
}

impl Report {
    /// The report of a run that stopped before planning: its problems, and nothing of
    /// what it did not get to.
    pub fn stopped(manager: String, dry_run: bool, problems: Vec<Problem>) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            manager,
            dry_run,
            server_version: None,
            skipped: Vec::new(),
            plan: None,
            result: None,
            status: Vec::new(),
            problems,
            exit_code: super::EXIT_ERROR,
        }
    }

    /// Prints the report on stdout, as one pretty-printed document.
    pub fn print(&self) {
        super::stdout::println(&serde_json::to_string_pretty(self).unwrap_or_default());
    }
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
            action: bucket.action.verb().as_str(),
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
                        key: entry.key.to_string(),
                        owner: entry.owner.to_string(),
                        source: entry.origin.as_ref().map(ToString::to_string),
                        action: entry.action.verb().as_str(),
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
            action: bucket.action.as_str(),
            error: bucket.error.as_ref().map(ErrorReport::from),
            entries: bucket
                .entries
                .iter()
                .filter_map(|entry| {
                    let (result, revision, error) = match &entry.result {
                        EntryResult::Written { action, revision } => {
                            (action.as_str(), Some(*revision), None)
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
                                message: reason.to_string(),
                            }),
                        ),
                    };
                    Some(EntryResultReport {
                        key: entry.key.to_string(),
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
