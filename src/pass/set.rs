//! The pass for one `KeyValueEntrySet`, the operator's set controller's: **observe** the
//! set's bucket whole ([`BucketSource`]: a set removes keys it no longer declares, which
//! only the whole bucket shows), **plan** each declared key within the claims only the
//! operator knows ([`Holders`]) and the keys the set no longer declares
//! (`plan::set_removals`), **check** that every value it writes fits, and **guard** a
//! set that declares nothing yet would remove keys (an emptied ConfigMap). The result is
//! a one-bucket plan for apply. A deleted set's keys are planned the same way, as its
//! `deletionPolicy` removes them ([`plan_set_removal`]).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use super::key::{check_fits, released};
use super::{EmptyPrune, Holders, PassError};
use crate::desired::{Desired, DesiredBucket, DesiredEntry, DesiredSet, ObjectRef, Origin};
use crate::manifest::LoadErrors;
use crate::nats::NatsError;
use crate::observed::{ObservedBucket, Operation};
use crate::plan::{
    BucketAction, BucketPlan, ClaimScope, ConflictCause, EntryAction, EntryPlan, Plan, Removal,
    decide_entry, decide_removal, set_removals,
};

/// Where a set pass reads its bucket: every key's last message.
pub trait BucketSource: Sync {
    /// The bucket observed whole; no stream observes as no keys.
    fn read(&self) -> impl Future<Output = Result<ObservedBucket, NatsError>> + Send;
}

/// A set and the keys it declares, with what a written value must fit.
pub struct DeclaredSet<'a> {
    pub set: &'a DesiredSet,
    /// The set's keys, each owned by the set.
    pub keys: &'a [DesiredEntry],
    /// Its bucket as declared: a written value must fit its max value size.
    pub bucket: &'a DesiredBucket,
    /// The server's largest message (the connection's `max_payload`).
    pub max_payload: usize,
}

/// A set's plan, and what apply needs with it.
#[derive(Debug)]
pub struct SetPlanned {
    /// One bucket, its configuration left alone: the declared keys in declaration order,
    /// then the removals sorted by key.
    pub plan: Plan,
    /// The declarations apply decides a key again by after a revision conflict.
    pub desired: Desired,
    /// Whose writes count as the set's own when apply decides a key again. A key
    /// released by a holder that is gone was decided with its own scope; a conflict on
    /// it is decided again as claimed, and the next reconcile takes it.
    pub scope: ClaimScope,
    /// The kvop objects whose claims refused keys of the set (written names), each once.
    pub refused_by: Vec<String>,
}

/// Observes, plans, checks and guards one set, as `manager`.
pub async fn plan_set(
    source: &impl BucketSource,
    declared: &DeclaredSet<'_>,
    holders: &impl Holders,
    manager: &str,
) -> Result<SetPlanned, PassError> {
    let DeclaredSet {
        set,
        keys,
        bucket,
        max_payload,
    } = *declared;
    let seen = source.read().await?;
    let mut entries = Vec::with_capacity(keys.len());
    let mut too_big = Vec::new();
    let mut refused_by: Vec<String> = Vec::new();
    for entry in keys {
        let observed = seen.keys.get(&*entry.key);
        let scope = ClaimScope::Object {
            released: released(observed, &entry.owner, manager, holders).await,
        };
        let action = decide_entry(entry, observed, manager, scope);
        if let (
            EntryAction::Conflict {
                cause: ConflictCause::Claimed,
                ..
            },
            Some(key),
        ) = (&action, observed)
            && key.writer.is(manager)
            && let Some(holder) = &key.writer.owner
            && !refused_by.contains(holder)
        {
            refused_by.push(holder.clone());
        }
        // Only a value that will be written can be too large.
        if action.writes()
            && let Err(LoadErrors(errors)) = check_fits(entry, bucket, max_payload, manager)
        {
            too_big.extend(errors);
        }
        entries.push(EntryPlan {
            key: entry.key.clone(),
            owner: entry.owner.to_string().into(),
            origin: Some(entry.origin.clone()),
            action,
            sensitive: entry.sensitive,
        });
    }
    if !too_big.is_empty() {
        return Err(LoadErrors(too_big).into());
    }
    // Only the set's own keys: a key it wrote and no longer declares is removed even
    // when another object declares it now. That object was refused while the set's
    // write held the key, and takes it once the removal lets go of it (the set's
    // rivals are re-queued after a removal); keeping it would refuse it for good.
    let declared_keys: HashSet<&str> = keys.iter().map(|entry| &*entry.key).collect();
    let scope = ClaimScope::Object { released: None };
    let removals = set_removals(set, &declared_keys, &seen, manager, scope);
    if let Some(refused) = empty_prune(set, keys.is_empty(), &removals) {
        return Err(EmptyPrune {
            buckets: Vec::new(),
            sets: vec![refused],
        }
        .into());
    }
    entries.extend(removals);
    Ok(SetPlanned {
        plan: one_bucket(&set.bucket, &set.owner, &set.origin, entries),
        desired: Desired {
            buckets: Vec::new(),
            entries: keys.to_vec(),
            sets: vec![set.clone()],
        },
        scope,
        refused_by,
    })
}

/// Observes and plans the removal of a deleted set's keys, as `manager`: every key whose
/// last message is the set's own write is removed as `removal` says; a key someone has
/// written since is left.
pub async fn plan_set_removal(
    source: &impl BucketSource,
    bucket: &str,
    owner: &ObjectRef,
    origin: &Origin,
    removal: Removal,
    manager: &str,
) -> Result<SetPlanned, NatsError> {
    let seen = source.read().await?;
    let written = owner.to_string();
    let shared: Arc<str> = written.as_str().into();
    let mut entries: Vec<EntryPlan> = seen
        .keys
        .iter()
        .filter(|(_, observed)| {
            observed.operation == Operation::Put
                && observed.writer.is(manager)
                && observed
                    .writer
                    .owner
                    .as_deref()
                    .is_some_and(|holder| owner.is_written_as(holder))
        })
        .map(|(key, observed)| EntryPlan {
            key: key.as_str().into(),
            owner: shared.clone(),
            origin: None,
            action: decide_removal(Some(observed), manager, Some(&written), removal),
            sensitive: observed.writer.sensitive,
        })
        .collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(SetPlanned {
        plan: one_bucket(bucket, owner, origin, entries),
        desired: Desired::default(),
        scope: ClaimScope::Object { released: None },
        refused_by: Vec::new(),
    })
}

/// A set that declares no keys but would remove some: most often an emptied or mistyped
/// ConfigMap or Secret, so it needs `kvop.dev/allow-empty-prune: "true"`. The set's
/// written name and how many keys it would remove; `None` when nothing is refused. One
/// rule for the file front doors and the operator.
pub(super) fn empty_prune<'a>(
    set: &DesiredSet,
    declares_none: bool,
    entries: impl IntoIterator<Item = &'a EntryPlan>,
) -> Option<(String, usize)> {
    if set.allow_empty_prune || !declares_none {
        return None;
    }
    let owner = set.owner.to_string();
    let removed = entries
        .into_iter()
        .filter(|entry| {
            *entry.owner == *owner
                && matches!(
                    entry.action,
                    EntryAction::Remove {
                        removal: Removal::Delete | Removal::Exclusive,
                        ..
                    }
                )
        })
        .count();
    (removed > 0).then_some((owner, removed))
}

fn one_bucket(bucket: &str, owner: &ObjectRef, origin: &Origin, entries: Vec<EntryPlan>) -> Plan {
    Plan {
        buckets: vec![BucketPlan {
            bucket: bucket.to_string(),
            owner: owner.clone(),
            origin: origin.clone(),
            action: BucketAction::Unchanged,
            entries,
        }],
    }
}

#[cfg(test)]
mod tests;
