//! What applying did to every bucket and key, and the problems to report.

use crate::nats::NatsError;
use crate::plan::EntryAction;

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
    pub action: &'static str,
    /// The bucket step's error, if it failed.
    pub error: Option<NatsError>,
    pub entries: Vec<EntryOutcome>,
}

/// What happened to one key.
#[derive(Debug, Clone)]
pub struct EntryOutcome {
    pub key: String,
    pub owner: String,
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
        action: &'static str,
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
        reason: String,
    },
}

impl Outcome {
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
                .filter(|bucket| {
                    bucket.error.is_none() && matches!(bucket.action, "create" | "update")
                })
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
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for bucket in &self.buckets {
            if let Some(error) = &bucket.error {
                problems.push(format!(
                    "bucket {:?}: {} failed: {error}",
                    bucket.bucket, bucket.action
                ));
            }
            for entry in &bucket.entries {
                match &entry.result {
                    EntryResult::Failed { error } => problems.push(format!(
                        "key {:?} of bucket {:?}: {error}",
                        entry.key, bucket.bucket
                    )),
                    EntryResult::Settled(action @ EntryAction::Conflict { .. }) => {
                        if let Some(why) = action.explain() {
                            problems.push(format!(
                                "key {:?} of bucket {:?}: {why}",
                                entry.key, bucket.bucket
                            ));
                        }
                    }
                    EntryResult::NotAttempted { reason } => problems.push(format!(
                        "key {:?} of bucket {:?}: not written: {reason}",
                        entry.key, bucket.bucket
                    )),
                    EntryResult::Written { .. } | EntryResult::Settled(_) => {}
                }
            }
        }
        problems
    }
}
