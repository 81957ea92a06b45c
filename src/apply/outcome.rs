//! What applying did to every bucket and key, and the problems to report.

use std::borrow::Cow;
use std::sync::Arc;

use crate::nats::NatsError;
use crate::plan::{BucketVerb, EntryAction, EntryVerb, Plan};
use crate::problem::Problem;

/// What happened to every bucket and key.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub buckets: Vec<BucketOutcome>,
}

/// What happened to one bucket.
#[derive(Debug, Clone)]
pub struct BucketOutcome {
    pub bucket: String,
    /// The planned bucket action's verb.
    pub action: BucketVerb,
    /// The bucket step's error, if it failed.
    pub error: Option<NatsError>,
    pub entries: Vec<EntryOutcome>,
}

/// What happened to one key.
#[derive(Debug, Clone)]
pub struct EntryOutcome {
    /// The plan's key and owner, shared.
    pub key: Arc<str>,
    pub owner: Arc<str>,
    pub result: EntryResult,
    /// Revision conflicts met (and re-decided) on the way to `result`.
    pub conflicts: usize,
    /// Transient failures (timeouts, elections) met and re-decided on the way.
    pub retries: usize,
}

/// The final state of one key after applying.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryResult {
    /// Written (created, updated or deleted) at this revision.
    Written {
        action: EntryVerb,
        revision: u64,
    },
    /// Nothing written, as decided: the action (unchanged, skipped, in conflict,
    /// retained) is the result.
    Settled(EntryAction),
    Failed {
        error: NatsError,
    },
    /// Not tried because the bucket step failed or the bucket is missing.
    NotAttempted {
        /// Most reasons are fixed words: no allocation for each of a large run's keys.
        reason: Cow<'static, str>,
    },
}

impl Outcome {
    /// The outcome of a plan that had nothing to write, without applying it: every key
    /// ends as planned (unchanged, skipped, in conflict, waiting for its bucket).
    pub fn unapplied(plan: &Plan) -> Outcome {
        let buckets = plan
            .buckets
            .iter()
            .map(|bucket| BucketOutcome {
                bucket: bucket.bucket.clone(),
                action: bucket.action.verb(),
                error: None,
                entries: bucket
                    .entries
                    .iter()
                    .map(|entry| EntryOutcome {
                        key: entry.key.clone(),
                        owner: entry.owner.clone(),
                        result: match &entry.action {
                            EntryAction::Wait => EntryResult::NotAttempted {
                                reason: "the bucket does not exist".into(),
                            },
                            EntryAction::Create { .. }
                            | EntryAction::Update { .. }
                            | EntryAction::Remove { .. } => EntryResult::NotAttempted {
                                reason: "nothing was applied".into(),
                            },
                            EntryAction::Unchanged { .. }
                            | EntryAction::Skip { .. }
                            | EntryAction::Conflict { .. }
                            | EntryAction::Retain { .. } => {
                                EntryResult::Settled(entry.action.clone())
                            }
                        },
                        conflicts: 0,
                        retries: 0,
                    })
                    .collect(),
            })
            .collect();
        Outcome { buckets }
    }

    /// Writes that succeeded.
    pub fn writes(&self) -> usize {
        self.buckets
            .iter()
            .flat_map(|bucket| &bucket.entries)
            .filter(|entry| matches!(entry.result, EntryResult::Written { .. }))
            .count()
            + self
                .buckets
                .iter()
                .filter(|bucket| bucket.error.is_none() && bucket.action.writes())
                .count()
    }

    /// Revision conflicts met and re-decided during the apply.
    pub fn conflicts(&self) -> usize {
        self.buckets
            .iter()
            .flat_map(|bucket| &bucket.entries)
            .map(|entry| entry.conflicts)
            .sum()
    }

    /// Transient write failures met and re-decided during the apply.
    pub fn retries(&self) -> usize {
        self.buckets
            .iter()
            .flat_map(|bucket| &bucket.entries)
            .map(|entry| entry.retries)
            .sum()
    }

    /// Failures and conflicts, one line each.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for bucket in &self.buckets {
            if let Some(error) = &bucket.error {
                problems.push(Problem::bucket(
                    &bucket.bucket,
                    format!("{} failed: {error}", bucket.action),
                ));
            }
            for entry in &bucket.entries {
                let key = |message: String| Problem::key(&bucket.bucket, &entry.key, message);
                match &entry.result {
                    EntryResult::Failed { error } => problems.push(key(error.to_string())),
                    EntryResult::Settled(action @ EntryAction::Conflict { .. }) => {
                        if let Some(why) = action.explain() {
                            problems.push(key(why));
                        }
                    }
                    EntryResult::NotAttempted { reason } => {
                        problems.push(key(format!("not written: {reason}")))
                    }
                    EntryResult::Written { .. } | EntryResult::Settled(_) => {}
                }
            }
        }
        problems
    }
}
