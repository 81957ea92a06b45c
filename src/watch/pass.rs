//! One pass of the watch over some buckets: observe them (one sweep each), check the
//! server's limits, plan, apply, and log one line per change made. The same steps as a
//! one-shot `kvop reconcile`, with the log in place of the report.

use std::collections::{BTreeSet, HashMap};

use crate::apply::{ApplyOptions, EntryResult, Outcome, apply};
use crate::desired::Desired;
use crate::manifest::{LoadErrors, check_against_server};
use crate::metrics::Metrics;
use crate::nats::{Connection, NatsError, observe};
use crate::plan::{self, BucketAction, ClaimScope, Plan, PlanOptions};
use crate::problem::Problem;
use crate::reconcile::{EmptyPrune, refuse_empty_prune};

/// The metrics' `kind` label of a watch pass.
pub const PASS_KIND: &str = "Watch";

/// How passes write.
#[derive(Debug, Clone)]
pub struct PassSettings {
    pub manager: String,
    pub prune: bool,
    pub allow_empty_prune: bool,
    pub window: usize,
}

/// Why a pass wrote nothing at all.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The files ask for what this server cannot hold (a value over the bucket's
    /// limit, a mirror written to) or for an empty prune: bad input, like a load error.
    #[error(transparent)]
    Invalid(#[from] LoadErrors),
    #[error(transparent)]
    EmptyPrune(#[from] EmptyPrune),
    #[error(transparent)]
    Nats(#[from] NatsError),
}

impl PassError {
    /// Whether the files are at fault (reported, kept out of force) rather than NATS
    /// (retried).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, PassError::Invalid(_) | PassError::EmptyPrune(_))
    }
}

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassSummary {
    pub writes: usize,
    pub conflicts: usize,
    /// Buckets and keys that could not be brought in line (each logged).
    pub problems: usize,
}

/// Keys left alone because of their `updatePolicy`, with the foreign revision that
/// stopped them: said once per revision, not on every pass over their bucket.
pub type Conflicts = HashMap<(String, String), u64>;

/// Brings `buckets` (every declared bucket when `None`) in line with `desired`.
pub async fn pass(
    connection: &Connection,
    desired: &Desired,
    buckets: Option<&BTreeSet<String>>,
    settings: &PassSettings,
    metrics: &Metrics,
    conflicts: &mut Conflicts,
) -> Result<PassSummary, PassError> {
    let narrowed;
    let desired = match buckets {
        Some(names) => {
            narrowed = only(desired, names);
            &narrowed
        }
        None => desired,
    };
    let observed = observe(connection, desired, settings.prune).await?;
    let too_big = check_against_server(
        desired,
        &observed,
        &settings.manager,
        connection.max_payload(),
    );
    if !too_big.is_empty() {
        return Err(LoadErrors(too_big).into());
    }
    let plan = plan::plan(
        desired,
        &observed,
        &PlanOptions {
            manager: settings.manager.clone(),
            prune: settings.prune,
        },
    );
    refuse_empty_prune(&plan, settings.prune, settings.allow_empty_prune)?;
    let outcome = if plan.has_changes() {
        let options = ApplyOptions {
            scope: ClaimScope::Manager,
            manager: settings.manager.clone(),
            window: settings.window,
            ride_out: true,
        };
        apply(connection, &plan, desired, &options, &|| {}).await
    } else {
        Outcome::unapplied(&plan)
    };
    Ok(log_changes(&plan, &outcome, metrics, conflicts))
}

/// The declarations of `names` only.
fn only(desired: &Desired, names: &BTreeSet<String>) -> Desired {
    Desired {
        buckets: desired
            .buckets
            .iter()
            .filter(|bucket| names.contains(&bucket.name))
            .cloned()
            .collect(),
        entries: desired
            .entries
            .iter()
            .filter(|entry| names.contains(&*entry.bucket))
            .cloned()
            .collect(),
    }
}

/// One line per change made, one per problem; unchanged keys say nothing, and a conflict
/// already said is not said again.
fn log_changes(
    plan: &Plan,
    outcome: &Outcome,
    metrics: &Metrics,
    conflicts: &mut Conflicts,
) -> PassSummary {
    let mut summary = PassSummary {
        writes: 0,
        conflicts: outcome.conflicts(),
        problems: 0,
    };
    for problem in plan.bucket_problems() {
        summary.problems += 1;
        log_problem(&problem);
    }
    for (bucket, applied) in plan.buckets.iter().zip(&outcome.buckets) {
        if let Some(error) = &applied.error {
            summary.problems += 1;
            tracing::warn!(bucket = %bucket.bucket, reason = error.reason(), "could not {} bucket: {error}", bucket.action.verb());
        } else if bucket.action.writes() {
            summary.writes += 1;
            match &bucket.action {
                BucketAction::Update { changes, .. } => {
                    let changes: Vec<String> = changes
                        .iter()
                        .map(|change| format!("{} {} → {}", change.field, change.from, change.to))
                        .collect();
                    tracing::info!(bucket = %bucket.bucket, owner = %bucket.owner, "updated bucket: {}", changes.join(", "));
                }
                _ => {
                    tracing::info!(bucket = %bucket.bucket, owner = %bucket.owner, "created bucket")
                }
            }
        }
        for (entry, result) in bucket.entries.iter().zip(&applied.entries) {
            let place = (bucket.bucket.clone(), entry.key.to_string());
            match &result.result {
                EntryResult::Settled(plan::EntryAction::Conflict { revision, .. }) => {
                    if conflicts.insert(place, *revision) != Some(*revision)
                        && let Some(why) = entry.action.explain()
                    {
                        summary.problems += 1;
                        tracing::warn!(bucket = %bucket.bucket, key = %entry.key, owner = %entry.owner, "not written: {why}");
                    }
                    continue;
                }
                _ => {
                    conflicts.remove(&place);
                }
            }
            match &result.result {
                EntryResult::Written { action, revision } => {
                    summary.writes += 1;
                    let past = past_tense(action);
                    match entry.action.drift() {
                        Some(drift) => {
                            metrics.drift_corrected();
                            tracing::info!(bucket = %bucket.bucket, key = %entry.key, owner = %entry.owner, revision, "{past} key: restored after a change by {drift}");
                        }
                        None => {
                            tracing::info!(bucket = %bucket.bucket, key = %entry.key, owner = %entry.owner, revision, "{past} key");
                        }
                    }
                    metrics.nats_operation("write", "ok");
                }
                EntryResult::Settled(_) => {}
                EntryResult::Failed { error } => {
                    summary.problems += 1;
                    metrics.nats_operation("write", error.reason());
                    tracing::warn!(bucket = %bucket.bucket, key = %entry.key, owner = %entry.owner, reason = error.reason(), "could not {} key: {error}", entry.action.verb());
                }
                EntryResult::NotAttempted { .. } => {}
            }
        }
    }
    summary
}

fn past_tense(verb: &str) -> &'static str {
    match verb {
        "create" => "created",
        "update" => "updated",
        "purge" => "purged",
        "delete" => "deleted",
        _ => "wrote",
    }
}

fn log_problem(problem: &Problem) {
    tracing::warn!("{problem}");
}
