//! What a `KeyValueEntrySet` removes once it no longer declares a key: a key it wrote
//! (`prune: Owned`), and under `prune: Exclusive` also a key under its prefix that no
//! kvop object holds. Its declared keys are planned as any entry's.

use std::collections::HashSet;

use super::entry::describe_writer;
use super::{ClaimScope, EntryAction, EntryPlan, Removal, decide_removal};
use crate::api::SetPrune;
use crate::desired::DesiredSet;
use crate::observed::{ObservedBucket, ObservedKey, Operation};

/// The removals `set` plans in a bucket observed whole (`seen`), sorted by key. `declared`
/// holds every key declared in the bucket, by the set or anyone else: such a key is
/// never removed. A key another kvop object holds is listed as retained under an
/// exclusive prefix, and left out otherwise.
pub fn set_removals(
    set: &DesiredSet,
    declared: &HashSet<&str>,
    seen: &ObservedBucket,
    manager: &str,
    scope: ClaimScope,
) -> Vec<EntryPlan> {
    let owner: std::sync::Arc<str> = set.owner.to_string().into();
    let mut removals: Vec<EntryPlan> = seen
        .keys
        .iter()
        .filter(|(key, _)| !declared.contains(key.as_str()))
        .filter_map(|(key, observed)| {
            let action = decide_set_removal(set, key, observed, manager, scope)?;
            Some(EntryPlan {
                key: key.as_str().into(),
                owner: owner.clone(),
                origin: None,
                sensitive: observed.writer.sensitive,
                action,
            })
        })
        .collect();
    removals.sort_by(|a, b| a.key.cmp(&b.key));
    removals
}

/// The decision for one undeclared key of the set's bucket; `None` when the set has no
/// say over it.
fn decide_set_removal(
    set: &DesiredSet,
    key: &str,
    observed: &ObservedKey,
    manager: &str,
    scope: ClaimScope,
) -> Option<EntryAction> {
    let written_by_set = observed.writer.is(manager)
        && observed
            .writer
            .owner
            .as_deref()
            .is_some_and(|owner| set.owner.is_written_as(owner));
    if written_by_set {
        // Conditional on the set's own write, as a deleted entry's key is.
        return match decide_removal(
            Some(observed),
            manager,
            Some(&set.owner.to_string()),
            Removal::Delete,
        ) {
            action @ EntryAction::Remove { .. } => Some(action),
            _ => None,
        };
    }
    let exclusive = set.prune == SetPrune::Exclusive
        && !set.key_prefix.is_empty()
        && key.starts_with(&set.key_prefix);
    exclusive.then(|| decide_exclusive(Some(observed), manager, scope))
}

/// The decision for a key under an exclusive prefix that nothing declares: removed
/// while no kvop object holds it (another client's value, or in a file run, a value of
/// this manager that no manifest declares any more); another kvop object's live value
/// is retained, since kvop never fights kvop. Also the rule apply decides such a key
/// by again after a revision conflict.
pub fn decide_exclusive(
    observed: Option<&ObservedKey>,
    manager: &str,
    scope: ClaimScope,
) -> EntryAction {
    let Some(observed) = observed else {
        return EntryAction::Unchanged { revision: 0 };
    };
    if observed.operation != Operation::Put {
        return EntryAction::Unchanged {
            revision: observed.revision,
        };
    }
    let unheld = match &observed.writer.manager {
        None => true,
        Some(_) => observed.writer.is(manager) && scope == ClaimScope::Manager,
    };
    if unheld {
        EntryAction::Remove {
            expected_revision: observed.revision,
            removal: Removal::Exclusive,
        }
    } else {
        EntryAction::Retain {
            revision: observed.revision,
            writer: describe_writer(observed),
        }
    }
}
