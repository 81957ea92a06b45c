//! Plan: the pure step from (desired, observed) to the changes that make NATS match.
//!
//! A plan is a value: it can be printed, diffed and tested without a server. Applying it
//! is [`crate::apply`]'s job.

mod bucket;
mod bucket_removal;
mod entry;
mod one_key;
mod removals;
mod set;
mod verb;

use std::sync::Arc;

use bytes::Bytes;

pub use bucket::{BucketRefusal, Claimant, FieldChange, decide_bucket, diff_config, refusal};
pub use bucket_removal::{BucketRemoval, Departure, decide_bucket_removal};
pub use entry::{decide_entry, decide_removal, held_through_drift, removable};
pub use set::{decide_exclusive, set_removals};
pub use verb::{BucketVerb, EntryVerb};

use crate::api::UpdatePolicy;
use crate::desired::{BucketClaim, BucketConfig, Desired, ObjectRef, Origin};
use crate::observed::{Observed, ObservedBucket};

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
    /// Another declaration holds the bucket, or it needs adopting: nothing is changed.
    Refused {
        refusal: BucketRefusal,
    },
}

/// What to do with one key.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryPlan {
    /// Shared with the desired entry and the outcome (`Arc`): a large plan holds one copy
    /// of each key.
    pub key: Arc<str>,
    /// The declaring object, or for a pruned key the owner its last write named.
    pub owner: Arc<str>,
    pub origin: Option<Origin>,
    pub action: EntryAction,
    /// The declared value comes from a Secret: written with a mark that says so, and
    /// never shown.
    pub sensitive: bool,
}

/// The decision for one key.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryAction {
    /// Write a key that has no live value; `expected_revision` is 0 when it never had a
    /// message, else the revision of its delete or purge marker. `drift` names who
    /// deleted or purged it when that was not this manager: drift corrected, or a key
    /// kvop never wrote (its last message cannot tell which).
    Create {
        expected_revision: u64,
        value: Bytes,
        drift: Option<String>,
    },
    /// Replace a different value; `drift` names who wrote it when that was not this
    /// manager: a change made out of band, or a value kvop never wrote (an adopted key;
    /// its last message cannot tell which).
    Update {
        expected_revision: u64,
        value: Bytes,
        drift: Option<String>,
    },
    Unchanged {
        revision: u64,
    },
    /// The key is left as someone else wrote it: the update policy says so
    /// (`IfUnchanged`), or another kvop object holds it ([`ConflictCause::Claimed`]).
    Conflict {
        revision: u64,
        writer: String,
        cause: ConflictCause,
    },
    /// The update policy leaves an existing value (`CreateOnly`).
    Skip {
        revision: u64,
        policy: UpdatePolicy,
    },
    /// Remove a key that is no longer declared, conditional on its revision.
    Remove {
        expected_revision: u64,
        removal: Removal,
    },
    /// A key to remove holds someone else's value: it is left in place.
    Retain {
        revision: u64,
        writer: String,
    },
    /// The bucket cannot take writes (it does not exist and is only observed).
    Wait,
}

/// Why a key is left to someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictCause {
    /// `IfUnchanged` leaves a value this object did not write.
    Policy(UpdatePolicy),
    /// Another kvop object (another `Kvop-Owner`, or another `Kvop-Manager`) wrote the
    /// key's live value: its claim, which no update policy overrides. kvop never fights
    /// kvop.
    Claimed,
}

/// Whose writes a run counts as its own: the writer of a live key that is not its own
/// and is kvop (it carries a `Kvop-Manager` header) holds a claim on that key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimScope {
    /// `kvop reconcile` (and `--watch`): the run declares the whole file set of its
    /// manager, so every key the manager wrote is its own, whichever manifest declared
    /// it before (a renamed manifest keeps its keys; a duplicate is refused at load).
    Manager,
    /// The operator: each object holds the keys it wrote. `released` is the revision of
    /// a key whose holder, of the same manager, no longer exists: its claim passes on.
    Object { released: Option<u64> },
}

/// Why a key that is no longer declared is removed, which decides how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// `kvop reconcile --prune`: no manifest declares the key any more; a delete marker.
    Prune,
    /// Its `KeyValueEntry` was deleted with `deletionPolicy: Delete`: a delete marker.
    Delete,
    /// … with `deletionPolicy: Purge`: a purge marker, which also drops its history.
    Purge,
    /// A key no kvop object holds under the prefix of a set with `prune: Exclusive`: a
    /// delete marker.
    Exclusive,
}

impl EntryAction {
    /// Whether carrying out this action writes to NATS.
    pub fn writes(&self) -> bool {
        self.verb().writes()
    }

    /// What the action does, without its data.
    pub fn verb(&self) -> EntryVerb {
        match self {
            EntryAction::Create { .. } => EntryVerb::Create,
            EntryAction::Update { .. } => EntryVerb::Update,
            EntryAction::Unchanged { .. } => EntryVerb::Unchanged,
            EntryAction::Conflict { .. } => EntryVerb::Conflict,
            EntryAction::Skip { .. } => EntryVerb::Skip,
            EntryAction::Remove {
                removal: Removal::Purge,
                ..
            } => EntryVerb::Purge,
            EntryAction::Remove {
                removal: Removal::Prune | Removal::Delete | Removal::Exclusive,
                ..
            } => EntryVerb::Delete,
            EntryAction::Retain { .. } => EntryVerb::Retain,
            EntryAction::Wait => EntryVerb::Wait,
        }
    }

    /// Why an action that writes nothing leaves the key as it is, in the words every
    /// report uses (the CLI's text and JSON, conditions, Events): `updatePolicy
    /// IfUnchanged: revision 13 was written by another client`. `None` for the others.
    pub fn explain(&self) -> Option<String> {
        match self {
            EntryAction::Conflict {
                revision,
                writer,
                cause: ConflictCause::Policy(policy),
            } => Some(format!(
                "updatePolicy {policy}: revision {revision} was written by {writer}"
            )),
            EntryAction::Conflict {
                revision,
                writer,
                cause: ConflictCause::Claimed,
            } => Some(format!(
                "the key is claimed by {writer} (revision {revision}): kvop does not write over another kvop object's key"
            )),
            EntryAction::Skip { revision, policy } => Some(format!(
                "updatePolicy {policy}: the key already has a value (revision {revision})"
            )),
            EntryAction::Retain { revision, writer } => Some(format!(
                "revision {revision} was written by {writer}, not by this manager for this entry"
            )),
            EntryAction::Wait => Some("the bucket does not exist".into()),
            EntryAction::Create { .. }
            | EntryAction::Update { .. }
            | EntryAction::Unchanged { .. }
            | EntryAction::Remove { .. } => None,
        }
    }

    /// The value this action writes, if it writes one.
    pub fn value(&self) -> Option<&Bytes> {
        match self {
            EntryAction::Create { value, .. } | EntryAction::Update { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Who changed the key out of band, when this action puts it back.
    pub fn drift(&self) -> Option<&str> {
        match self {
            EntryAction::Create { drift, .. } | EntryAction::Update { drift, .. } => {
                drift.as_deref()
            }
            _ => None,
        }
    }
}

impl BucketAction {
    /// Whether carrying out this action writes to NATS.
    pub fn writes(&self) -> bool {
        self.verb().writes()
    }

    /// Why the bucket will not match its declaration even after applying, in the words
    /// every report uses (the CLI's text and problems, conditions, Events): `cannot change
    /// storage on an existing bucket ...`. `None` for the others.
    pub fn explain(&self) -> Option<String> {
        match self {
            BucketAction::Blocked { changes } => Some(format!(
                "cannot change {} on an existing bucket (the server refuses it: {}); delete and re-create the bucket, or revert the spec",
                changes
                    .iter()
                    .map(|change| change.field)
                    .collect::<Vec<_>>()
                    .join(", "),
                changes
                    .iter()
                    .map(|change| format!("{} {} -> {}", change.field, change.from, change.to))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            BucketAction::Missing => Some(
                "the bucket does not exist and its managementPolicy is Observe: create it elsewhere or set managementPolicy: Manage".into(),
            ),
            BucketAction::Refused { refusal } => Some(refusal.explain()),
            BucketAction::Create { .. }
            | BucketAction::Update { .. }
            | BucketAction::Unchanged
            | BucketAction::Observe => None,
        }
    }

    /// What the action does, without its data.
    pub fn verb(&self) -> BucketVerb {
        match self {
            BucketAction::Create { .. } => BucketVerb::Create,
            BucketAction::Update { .. } => BucketVerb::Update,
            BucketAction::Unchanged => BucketVerb::Unchanged,
            BucketAction::Blocked { .. } => BucketVerb::Blocked,
            BucketAction::Observe => BucketVerb::Observe,
            BucketAction::Missing => BucketVerb::Missing,
            BucketAction::Refused { .. } => BucketVerb::Refused,
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
}

/// Decides every change. Pure: the same inputs always give the same plan.
pub fn plan(desired: &Desired, observed: &Observed, options: &PlanOptions) -> Plan {
    let empty = ObservedBucket::default();
    let buckets = desired
        .buckets
        .iter()
        .map(|bucket| {
            let seen = observed.buckets.get(&bucket.name).unwrap_or(&empty);
            let claimant = Claimant {
                claim: BucketClaim {
                    manager: options.manager.clone(),
                    owner: bucket.owner.to_string(),
                    uid: None,
                },
                per_object: false,
                released: false,
                // Keys this manager wrote show it managed the bucket before claims; read
                // only for an existing bucket nobody claims or marked (not on every run).
                adopt: bucket.adopt
                    || (seen.stream.as_ref().is_some_and(|stream| {
                        stream.claim.is_none() && stream.created_by.is_none()
                    }) && seen
                        .keys
                        .values()
                        .any(|key| key.writer.is(&options.manager))),
            };
            let action = bucket::decide_bucket(bucket, seen, &claimant);
            let mut entries: Vec<EntryPlan> = desired
                .entries_of(&bucket.name)
                .map(|entry| EntryPlan {
                    key: entry.key.clone(),
                    owner: entry.owner.to_string().into(),
                    origin: Some(entry.origin.clone()),
                    sensitive: entry.sensitive,
                    action: if matches!(
                        action,
                        BucketAction::Missing | BucketAction::Refused { .. }
                    ) {
                        EntryAction::Wait
                    } else {
                        decide_entry(
                            entry,
                            seen.keys.get(&*entry.key),
                            &options.manager,
                            ClaimScope::Manager,
                        )
                    },
                })
                .collect();
            let writable = !matches!(action, BucketAction::Missing | BucketAction::Refused { .. });
            if writable && seen.complete {
                let removed =
                    removals::plan_removals(desired, &bucket.name, &entries, seen, options);
                entries.extend(removed);
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
