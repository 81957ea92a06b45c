//! The decision for one key, used when planning and again after a revision conflict.

use crate::api::UpdatePolicy;
use crate::desired::DesiredEntry;
use crate::observed::{ObservedKey, Operation};

use super::{ClaimScope, ConflictCause, EntryAction, Removal};
use crate::desired::ObjectRef;

/// Decides what to do with `desired` given the key's last message (if any), as
/// `manager` writing within `scope`.
pub fn decide_entry(
    desired: &DesiredEntry,
    observed: Option<&ObservedKey>,
    manager: &str,
    scope: ClaimScope,
) -> EntryAction {
    let Some(observed) = observed else {
        return EntryAction::Create {
            expected_revision: 0,
            value: desired.value.clone(),
            drift: None,
        };
    };
    let ours = written_by(observed, manager, &desired.owner, scope);
    // Another kvop object's live value is its claim: left alone whatever the update
    // policy (a delete or purge marker claims nothing).
    let released = matches!(scope, ClaimScope::Object { released: Some(revision) } if revision == observed.revision);
    if observed.operation == Operation::Put
        && observed.writer.manager.is_some()
        && !ours
        && !released
    {
        return EntryAction::Conflict {
            revision: observed.revision,
            writer: describe_writer(observed),
            cause: ConflictCause::Claimed,
        };
    }
    // A foreign change `IfUnchanged` leaves, unless the entry takes this very revision
    // back (`kvop.dev/take-over`).
    let leave_foreign = desired.update_policy == UpdatePolicy::IfUnchanged
        && !ours
        && desired.take_over != Some(observed.revision);
    if observed.operation != Operation::Put {
        // Someone else's delete is their change too: IfUnchanged leaves it.
        if leave_foreign {
            return EntryAction::Conflict {
                revision: observed.revision,
                writer: describe_writer(observed),
                cause: ConflictCause::Policy(desired.update_policy),
            };
        }
        // A deleted key is written over its marker: expecting 0 would fail (10071).
        return EntryAction::Create {
            expected_revision: observed.revision,
            value: desired.value.clone(),
            drift: (!observed.writer.is(manager)).then(|| describe_writer(observed)),
        };
    }
    if observed.value == desired.value {
        return EntryAction::Unchanged {
            revision: observed.revision,
        };
    }
    let ours = observed.writer.is(manager);
    match desired.update_policy {
        UpdatePolicy::CreateOnly => EntryAction::Skip {
            revision: observed.revision,
            policy: desired.update_policy,
        },
        UpdatePolicy::IfUnchanged if leave_foreign => EntryAction::Conflict {
            revision: observed.revision,
            writer: describe_writer(observed),
            cause: ConflictCause::Policy(desired.update_policy),
        },
        UpdatePolicy::Overwrite | UpdatePolicy::IfUnchanged => EntryAction::Update {
            expected_revision: observed.revision,
            value: desired.value.clone(),
            drift: (!ours).then(|| describe_writer(observed)),
        },
    }
}

/// Whether this manager may remove a key that is no longer declared: its last message is
/// a live value this manager wrote (for `owner`, when one is given). Anyone else's value,
/// and a key already deleted, are left alone.
pub fn removable(observed: &ObservedKey, manager: &str, owner: Option<&str>) -> bool {
    observed.operation == Operation::Put
        && observed.writer.is(manager)
        && owner.is_none_or(|owner| observed.writer.owner.as_deref() == Some(owner))
}

/// The decision for a key that is no longer declared: removed as `removal` says while
/// it is [`removable`] (a key whose resource was deleted: only while it holds that
/// resource's write, `owner`); someone else's live value is retained.
pub fn decide_removal(
    observed: Option<&ObservedKey>,
    manager: &str,
    owner: Option<&str>,
    removal: Removal,
) -> EntryAction {
    match observed {
        Some(observed) if removable(observed, manager, owner) => EntryAction::Remove {
            expected_revision: observed.revision,
            removal,
        },
        Some(observed) if observed.operation == Operation::Put => EntryAction::Retain {
            revision: observed.revision,
            writer: describe_writer(observed),
        },
        Some(observed) => EntryAction::Unchanged {
            revision: observed.revision,
        },
        None => EntryAction::Unchanged { revision: 0 },
    }
}

/// The decision for an entry refused before by `holder`, which still declares the key:
/// still refused while the key's last message is not a kvop write (another client
/// overwrote or deleted it, which erases the claim's headers but not the holder's claim).
/// Otherwise whichever declaration reconciled first after the foreign write would take
/// the key, from a paused holder or from the one that lost the race to repair the drift.
/// `None` when the last message is a kvop write: its headers say who holds the key, and
/// [`decide_entry`] decides.
pub fn held_through_drift(
    observed: Option<&ObservedKey>,
    manager: &str,
    holder: &ObjectRef,
) -> Option<EntryAction> {
    let claimed = observed
        .is_some_and(|last| last.operation == Operation::Put && last.writer.manager.is_some());
    (!claimed).then(|| EntryAction::Conflict {
        revision: observed.map_or(0, |key| key.revision),
        writer: format!("manager {manager:?} for {holder}"),
        cause: ConflictCause::Claimed,
    })
}

/// Whether this writer (`manager`, and in the operator the declaring object `owner`)
/// wrote the key's last message. A kvop write without `Kvop-Owner` counts as any
/// object's of its manager.
fn written_by(observed: &ObservedKey, manager: &str, owner: &ObjectRef, scope: ClaimScope) -> bool {
    if !observed.writer.is(manager) {
        return false;
    }
    match (scope, observed.writer.owner.as_deref()) {
        (ClaimScope::Manager, _) | (ClaimScope::Object { .. }, None) => true,
        (ClaimScope::Object { .. }, Some(written)) => owner.is_written_as(written),
    }
}

pub(super) fn describe_writer(observed: &ObservedKey) -> String {
    match (&observed.writer.manager, &observed.writer.owner) {
        (Some(manager), Some(owner)) => format!("manager {manager:?} for {owner}"),
        (Some(manager), None) => format!("manager {manager:?}"),
        _ => "another client".into(),
    }
}
