//! The watch's log of a pass: one line per change made, one per problem, and what
//! happens to keys and buckets the files no longer declare.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::memory::{Memory, PassSummary};
use crate::apply::{EntryResult, Outcome};
use crate::desired::Desired;
use crate::metrics::Metrics;
use crate::observed::{Observed, Operation};
use crate::plan::{self, BucketAction, EntryAction, Plan, Removal};
use crate::problem::Problem;

/// What was in force before a pass, to tell a change of the files (an update) from a
/// change in NATS put back (a correction of drift, counted).
pub(super) struct Before<'a> {
    now: &'a Desired,
    before: Option<&'a Desired>,
    /// The values declared before, by bucket and key; `None` when the pass repairs
    /// (the declarations are the same ones).
    values: Option<HashMap<(&'a str, &'a str), &'a Bytes>>,
}

impl<'a> Before<'a> {
    pub(super) fn new(now: &'a Desired, before: Option<&'a Desired>) -> Before<'a> {
        let values = before
            .filter(|before| !std::ptr::eq(*before, now))
            .map(|before| {
                before
                    .entries
                    .iter()
                    .map(|entry| ((&*entry.bucket, &*entry.key), &entry.value))
                    .collect()
            });
        Before {
            now,
            before,
            values,
        }
    }

    /// Whether `bucket` is declared alike before and now.
    fn declares_bucket_alike(&self, bucket: &str) -> bool {
        let find = |desired: &Desired| {
            desired
                .buckets
                .iter()
                .find(|declared| declared.name == bucket)
                .map(|declared| (declared.config.clone(), declared.management))
        };
        self.before
            .is_some_and(|before| find(before).is_some_and(|was| Some(was) == find(self.now)))
    }

    /// Whether `key` of `bucket` was declared before with `value`, the value now.
    fn declares_alike(&self, bucket: &str, key: &str, value: Option<&Bytes>) -> bool {
        let Some(before) = self.before else {
            return false;
        };
        match &self.values {
            None => std::ptr::eq(before, self.now),
            Some(values) => value.is_some_and(|value| values.get(&(bucket, key)) == Some(&value)),
        }
    }
}

/// With `--prune`: says which keys the files no longer declare stay in NATS, and why:
/// prune deletes only what this manager wrote last, and a bucket no longer declared is
/// left alone. Said once, on the pass that puts the new files in force (the deleted ones
/// have their own line).
pub(super) fn log_kept(before: &Desired, now: &Desired, observed: &Observed, manager: &str) {
    let declared: HashSet<(&str, &str)> = now
        .entries
        .iter()
        .map(|entry| (&*entry.bucket, &*entry.key))
        .collect();
    for bucket in &before.buckets {
        if !now.buckets.iter().any(|kept| kept.name == bucket.name) {
            tracing::info!(bucket = %bucket.name, "bucket no longer declared: kvop leaves it and its keys as they are");
        }
    }
    for entry in &before.entries {
        if declared.contains(&(&*entry.bucket, &*entry.key)) {
            continue;
        }
        let Some(seen) = observed
            .buckets
            .get(&*entry.bucket)
            .and_then(|bucket| bucket.keys.get(&*entry.key))
        else {
            continue;
        };
        if seen.operation != Operation::Put {
            continue;
        }
        if let EntryAction::Retain { revision, writer } =
            plan::decide_removal(Some(seen), manager, None, Removal::Prune)
        {
            tracing::info!(
                bucket = %entry.bucket,
                key = %entry.key,
                revision,
                "key no longer declared, kept: revision {revision} was written by {writer} (--prune deletes only keys this manager wrote last)"
            );
        }
    }
}

/// One line per change made, one per problem; unchanged keys say nothing, and a conflict
/// already said is not said again.
pub(super) fn log_changes(
    plan: &Plan,
    outcome: &Outcome,
    metrics: &Metrics,
    memory: &mut Memory,
    before: &Before,
) -> PassSummary {
    let conflicts = &mut memory.conflicts;
    let mut summary = PassSummary {
        conflicts: outcome.conflicts(),
        ..PassSummary::default()
    };
    for problem in crate::report::bucket_problems(plan) {
        summary.problems += 1;
        log_problem(&problem);
    }
    for (bucket, applied) in plan.buckets.iter().zip(&outcome.buckets) {
        if let Some(error) = &applied.error {
            summary.problems += 1;
            tracing::warn!(bucket = %bucket.bucket, reason = error.reason(), "could not {} bucket: {error}", bucket.action.verb());
        } else if bucket.action.writes() {
            summary.writes += 1;
            if before.declares_bucket_alike(&bucket.bucket) {
                metrics.drift_corrected();
            }
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
                    if matches!(entry.action, EntryAction::Remove { .. }) {
                        memory.held.deleted(&bucket.bucket, &entry.key);
                    }
                    let past = crate::report::text::past_tense(*action);
                    match entry.action.drift() {
                        // Declared as before: NATS changed, not the files.
                        Some(drift)
                            if before.declares_alike(
                                &bucket.bucket,
                                &entry.key,
                                entry.action.value(),
                            ) =>
                        {
                            metrics.drift_corrected();
                            tracing::info!(bucket = %bucket.bucket, key = %entry.key, owner = %entry.owner, revision, "{past} key: restored after a change by {drift}");
                        }
                        // The files changed the value of a key someone else wrote last
                        // (an adopted key): an update, not a repair.
                        Some(drift) => {
                            tracing::info!(bucket = %bucket.bucket, key = %entry.key, owner = %entry.owner, revision, "{past} key, overwriting a value written by {drift}");
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

fn log_problem(problem: &Problem) {
    tracing::warn!("{problem}");
}
