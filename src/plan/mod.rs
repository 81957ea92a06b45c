//! Plan: the pure step from (desired, observed) to the changes that make NATS match.
//!
//! A plan is a value: it can be printed, diffed and tested without a server. Applying it
//! is [`crate::apply`]'s job.

mod bucket;
mod entry;
pub mod render;
mod summary;

use std::collections::HashSet;

use bytes::Bytes;

pub use bucket::{FieldChange, decide_bucket, diff_config};
pub use entry::decide_entry;

use crate::desired::{BucketConfig, Desired, ObjectRef, Origin};
use crate::observed::{Observed, ObservedBucket, Operation};
use crate::problem::Problem;

/// Every change for every declared bucket, in declaration order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub buckets: Vec<BucketPlan>,
}

/// What to do with one bucket and its keys.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketPlan {
    pub bucket: String,
    pub owner: ObjectRef,
    pub origin: Origin,
    pub action: BucketAction,
    pub entries: Vec<EntryPlan>,
}

/// What to do with a bucket's configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketAction {
    Create {
        config: BucketConfig,
    },
    Update {
        config: BucketConfig,
        changes: Vec<FieldChange>,
    },
    Unchanged,
    /// A change the server refuses (storage, disabling per-message TTL, mirror): reported,
    /// not attempted. Other fields are left alone too, so the bucket is not half-updated.
    Blocked {
        changes: Vec<FieldChange>,
    },
    /// `managementPolicy: Observe`: the configuration is never changed.
    Observe,
    /// `managementPolicy: Observe` and the bucket does not exist: nothing can be written.
    Missing,
}

/// What to do with one key.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryPlan {
    pub key: String,
    /// The declaring object, or for a pruned key the owner its last write named.
    pub owner: String,
    pub origin: Option<Origin>,
    pub action: EntryAction,
}

/// The decision for one key.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryAction {
    /// Write a key that has no live value; `expected_revision` is 0 when it never had a
    /// message, else the revision of its delete or purge marker.
    Create {
        expected_revision: u64,
        value: Bytes,
    },
    /// Replace a different value; `drift` names who wrote it when that was not this
    /// manager (a change made out of band).
    Update {
        expected_revision: u64,
        value: Bytes,
        drift: Option<String>,
    },
    Unchanged {
        revision: u64,
    },
    /// `IfUnchanged` and the key was last written by someone else.
    Conflict {
        revision: u64,
        writer: String,
    },
    /// `CreateOnly` and the key already has a value.
    Skip {
        revision: u64,
    },
    /// Delete a key this manager wrote that is no longer declared.
    Prune {
        expected_revision: u64,
    },
    /// The bucket cannot take writes (it does not exist and is only observed).
    Wait,
}

impl EntryAction {
    /// Whether carrying out this action writes to NATS.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            EntryAction::Create { .. } | EntryAction::Update { .. } | EntryAction::Prune { .. }
        )
    }

    /// Short verb for reports and JSON.
    pub fn verb(&self) -> &'static str {
        match self {
            EntryAction::Create { .. } => "create",
            EntryAction::Update { .. } => "update",
            EntryAction::Unchanged { .. } => "unchanged",
            EntryAction::Conflict { .. } => "conflict",
            EntryAction::Skip { .. } => "skip",
            EntryAction::Prune { .. } => "delete",
            EntryAction::Wait => "wait",
        }
    }
}

impl BucketAction {
    /// Whether carrying out this action writes to NATS.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            BucketAction::Create { .. } | BucketAction::Update { .. }
        )
    }

    /// Short verb for reports and JSON.
    pub fn verb(&self) -> &'static str {
        match self {
            BucketAction::Create { .. } => "create",
            BucketAction::Update { .. } => "update",
            BucketAction::Unchanged => "unchanged",
            BucketAction::Blocked { .. } => "blocked",
            BucketAction::Observe => "observe",
            BucketAction::Missing => "missing",
        }
    }
}

/// Planning options.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The `--manager` name: ownership headers are compared with it.
    pub manager: String,
    /// Delete keys this manager wrote that are no longer declared.
    pub prune: bool,
}

impl Plan {
    /// Whether applying the plan writes anything.
    pub fn has_changes(&self) -> bool {
        self.buckets.iter().any(|bucket| {
            bucket.action.writes() || bucket.entries.iter().any(|entry| entry.action.writes())
        })
    }

    /// Problems that keep NATS from matching the manifests even after applying.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = self.bucket_problems();
        for bucket in &self.buckets {
            for entry in &bucket.entries {
                if let EntryAction::Conflict { revision, writer } = &entry.action {
                    problems.push(Problem::key(
                        &bucket.bucket,
                        &entry.key,
                        format!("updatePolicy IfUnchanged, but revision {revision} was written by {writer}"),
                    ));
                }
            }
        }
        problems
    }

    /// Bucket changes that cannot be made: blocked immutable fields, missing buckets.
    pub fn bucket_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for bucket in &self.buckets {
            match &bucket.action {
                BucketAction::Blocked { changes } => problems.push(Problem::bucket(
                    &bucket.bucket,
                    format!(
                        "cannot change {} on an existing bucket (the server refuses it); delete and re-create the bucket, or revert the manifest",
                        changes.iter().map(|change| change.field).collect::<Vec<_>>().join(", ")
                    ),
                )),
                BucketAction::Missing => problems.push(Problem::bucket(
                    &bucket.bucket,
                    "does not exist and its managementPolicy is Observe: create it elsewhere or set managementPolicy: Manage",
                )),
                _ => {}
            }
        }
        problems
    }
}

/// Decides every change. Pure: the same inputs always give the same plan.
pub fn plan(desired: &Desired, observed: &Observed, options: &PlanOptions) -> Plan {
    let empty = ObservedBucket::default();
    let buckets = desired
        .buckets
        .iter()
        .map(|bucket| {
            let seen = observed.buckets.get(&bucket.name).unwrap_or(&empty);
            let action = bucket::decide_bucket(bucket, seen);
            let mut entries: Vec<EntryPlan> = desired
                .entries_of(&bucket.name)
                .map(|entry| EntryPlan {
                    key: entry.key.clone(),
                    owner: entry.owner.to_string(),
                    origin: Some(entry.origin.clone()),
                    action: if action == BucketAction::Missing {
                        EntryAction::Wait
                    } else {
                        decide_entry(entry, seen.keys.get(&entry.key), &options.manager)
                    },
                })
                .collect();
            if options.prune && seen.complete {
                let declared: HashSet<&str> =
                    entries.iter().map(|entry| entry.key.as_str()).collect();
                let mut pruned: Vec<EntryPlan> = seen
                    .keys
                    .iter()
                    .filter(|(key, observed)| {
                        observed.operation == Operation::Put
                            && observed.writer.is(&options.manager)
                            && !declared.contains(key.as_str())
                    })
                    .map(|(key, observed)| EntryPlan {
                        key: key.clone(),
                        owner: observed.writer.owner.clone().unwrap_or_default(),
                        origin: None,
                        action: EntryAction::Prune {
                            expected_revision: observed.revision,
                        },
                    })
                    .collect();
                pruned.sort_by(|a, b| a.key.cmp(&b.key));
                entries.extend(pruned);
            }
            BucketPlan {
                bucket: bucket.name.clone(),
                owner: bucket.owner.clone(),
                origin: bucket.origin.clone(),
                action,
                entries,
            }
        })
        .collect();
    Plan { buckets }
}

#[cfg(test)]
mod tests;
