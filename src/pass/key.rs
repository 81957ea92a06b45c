//! The pass for one key, the operator's entry controller's: **observe** the key where
//! the operator reads it ([`KeySource`]), weigh the claims only the operator knows of
//! ([`KeyClaims`]), **plan** through the planner, and **check** that a value it writes
//! fits its bucket and the server; the result is a one-key plan for apply. The key of a
//! deleted entry is planned the same way, as its `deletionPolicy` removes it. Nothing is
//! guarded: an entry's writes are its own, and a paused entry is its controller's to
//! hold back.

use std::future::Future;

use super::{Holders, PassError};
use crate::desired::{Desired, DesiredBucket, DesiredEntry, ObjectRef, Origin};
use crate::manifest::{Limits, LoadError, LoadErrors, check_writable};
use crate::nats::NatsError;
use crate::observed::{ObservedKey, Operation};
use crate::plan::{
    ClaimScope, ConflictCause, EntryAction, Plan, Removal, decide_entry, decide_removal,
    held_through_drift,
};

/// Where a one-key pass reads the key's last message: the bucket's live view while it is
/// current, else the stream leader (an entry), or the stream leader alone (a deleted
/// entry's key).
pub trait KeySource: Sync {
    /// The key's last message; `None` when it has none.
    fn read(&self) -> impl Future<Output = Result<Option<ObservedKey>, NatsError>> + Send;
}

/// A declared key, with what a value written to it must fit.
pub struct DeclaredKey<'a> {
    pub entry: &'a DesiredEntry,
    /// Its bucket as declared: a written value must fit its max value size.
    pub bucket: &'a DesiredBucket,
    /// The server's largest message (the connection's `max_payload`).
    pub max_payload: usize,
}

/// What the operator knows of a key's claims beyond the key's headers.
pub struct KeyClaims<'a, H> {
    /// Whether the object a key's `Kvop-Owner` names is gone (its claim passes on).
    pub holders: &'a H,
    /// The entry that refused this one before and still declares the same key, from the
    /// operator's memory of refusals (`None` after a restart: the headers alone decide).
    pub refused_by: Option<ObjectRef>,
}

/// The key of a deleted entry, removed as its `deletionPolicy` says while it holds the
/// entry's own write.
pub struct DepartedKey<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub owner: &'a ObjectRef,
    pub origin: Origin,
    pub removal: Removal,
}

/// A one-key plan, and what apply needs with it.
#[derive(Debug)]
pub struct KeyPlanned {
    /// The decision for the key: the plan's only one.
    pub action: EntryAction,
    /// One bucket, its configuration left alone, with this one key
    /// ([`Plan::one_key`]), for [`crate::apply::apply`].
    pub plan: Plan,
    /// The declaration apply decides the key again by after a revision conflict; none
    /// for a removal, which is decided again as a removal.
    pub desired: Desired,
    /// Whose writes count as this entry's own, for those decisions too.
    pub scope: ClaimScope,
    /// The entry of this manager whose claim refused this one (`namespace/name`), if
    /// one did: the operator tells it of its rival.
    pub refused_by: Option<String>,
}

/// Observes, plans and checks one declared key, as `manager`.
pub async fn plan_one_key(
    source: &impl KeySource,
    declared: &DeclaredKey<'_>,
    claims: KeyClaims<'_, impl Holders>,
    manager: &str,
) -> Result<KeyPlanned, PassError> {
    let DeclaredKey {
        entry,
        bucket,
        max_payload,
    } = *declared;
    let observed = source.read().await?;
    let observed = observed.as_ref();
    let scope = ClaimScope::Object {
        released: released(observed, &entry.owner, manager, claims.holders).await,
    };
    let held = claims.refused_by.and_then(|holder| {
        held_through_drift(observed, manager, &holder).map(|action| (holder, action))
    });
    let (action, refused_by) = match held {
        Some((holder, action)) => (action, Some(holder.to_string())),
        None => {
            let action = decide_entry(entry, observed, manager, scope);
            let refused_by = claimed_by(&action, observed, manager);
            (action, refused_by)
        }
    };
    // Only a value that will be written can be too large: one NATS holds already, or
    // that a claim or the update policy leaves, is never refused.
    if action.writes() {
        check_fits(entry, bucket, max_payload, manager)?;
    }
    Ok(KeyPlanned {
        plan: Plan::one_key(
            &bucket.name,
            entry.key.clone(),
            &entry.owner,
            entry.origin.clone(),
            action.clone(),
            entry.sensitive,
        ),
        action,
        desired: Desired {
            buckets: Vec::new(),
            entries: vec![entry.clone()],
            sets: Vec::new(),
        },
        scope,
        refused_by,
    })
}

/// Observes and plans the removal of a deleted entry's key, as `manager`: only while
/// the key still holds this entry's write (`decide_removal`).
pub async fn plan_key_removal(
    source: &impl KeySource,
    departed: DepartedKey<'_>,
    manager: &str,
) -> Result<KeyPlanned, NatsError> {
    let DepartedKey {
        bucket,
        key,
        owner,
        origin,
        removal,
    } = departed;
    let observed = source.read().await?;
    let action = decide_removal(
        observed.as_ref(),
        manager,
        Some(&owner.to_string()),
        removal,
    );
    Ok(KeyPlanned {
        // A removal writes no value.
        plan: Plan::one_key(bucket, key.into(), owner, origin, action.clone(), false),
        action,
        desired: Desired::default(),
        scope: ClaimScope::Object { released: None },
        refused_by: None,
    })
}

/// The revision of a key whose claim passes to `own`: its live value was written by
/// this manager for another object, one that is gone.
pub(super) async fn released(
    observed: Option<&ObservedKey>,
    own: &ObjectRef,
    manager: &str,
    holders: &impl Holders,
) -> Option<u64> {
    let key = observed.filter(|key| key.operation == Operation::Put && key.writer.is(manager))?;
    let owner = key.writer.owner.as_deref()?;
    (owner != own.to_string() && holders.gone(owner).await).then_some(key.revision)
}

/// The object of this manager whose claim `action` refuses, from the key's headers.
fn claimed_by(
    action: &EntryAction,
    observed: Option<&ObservedKey>,
    manager: &str,
) -> Option<String> {
    match (action, observed) {
        (
            EntryAction::Conflict {
                cause: ConflictCause::Claimed,
                ..
            },
            Some(key),
        ) if key.writer.is(manager) => key.writer.owner.clone(),
        _ => None,
    }
}

/// Whether `entry`'s value, with kvop's headers, fits the bucket's declared max value
/// size and the server's max payload (the rule `kvop reconcile` checks against the
/// server too). The bucket's mirror was refused before the pass, when the entry was
/// resolved.
pub(super) fn check_fits(
    entry: &DesiredEntry,
    bucket: &DesiredBucket,
    max_payload: usize,
    manager: &str,
) -> Result<(), LoadErrors> {
    let limits = Limits {
        bucket: &bucket.name,
        mirror: None,
        max_value_size: bucket.config.max_value_size,
        max_payload: Some(max_payload),
    };
    check_writable(entry, &limits, manager).map_err(|unwritable| {
        LoadErrors(vec![LoadError {
            origin: entry.origin.clone(),
            field: Some(unwritable.field.into()),
            message: unwritable.message,
        }])
    })
}

#[cfg(test)]
mod tests;
