//! A set's removals: which undeclared keys of its bucket a set deletes, retains or
//! leaves out, and that `--prune` never plans a key a set already removes.

use std::collections::HashSet;

use super::*;
use crate::api::SetPrune;
use crate::desired::DesiredSet;

const SET: &str = "default/KeyValueEntrySet/flags";

fn set(prune: SetPrune) -> DesiredSet {
    DesiredSet {
        owner: ObjectRef::entry_set("default", "flags"),
        origin: origin(),
        bucket: "b".into(),
        key_prefix: "app/".into(),
        prune,
        deletion_policy: EntryDeletionPolicy::Delete,
        allow_empty_prune: false,
    }
}

/// A live value of `manager` for `owner`, or of another client (no manager).
fn written(revision: u64, manager: Option<&str>, owner: &str) -> ObservedKey {
    let mut observed = key(revision, Operation::Put, "v", manager);
    observed.writer.owner = manager.map(|_| owner.to_string());
    observed
}

/// The bucket `b` holding: the set's own key under and outside its prefix, a foreign
/// key under and outside it, another kvop object's and another manager's keys under it.
fn observed() -> Observed {
    existing(
        vec![
            ("app/mine", written(1, Some(MANAGER), SET)),
            ("moved/mine", written(2, Some(MANAGER), SET)),
            ("app/foreign", written(3, None, "")),
            ("other/foreign", written(4, None, "")),
            ("app/entry", written(5, Some(MANAGER), "default/app-entry")),
            ("app/team-b", written(6, Some("team-b"), "default/x")),
            ("app/declared", written(7, None, "")),
        ],
        config(),
    )
}

fn removals(prune: SetPrune, scope: ClaimScope) -> Vec<(String, EntryVerb)> {
    let observed = observed();
    let declared: HashSet<&str> = ["app/declared"].into();
    set_removals(
        &set(prune),
        &declared,
        &observed.buckets["b"],
        MANAGER,
        scope,
    )
    .into_iter()
    .map(|entry| (entry.key.to_string(), entry.action.verb()))
    .collect()
}

#[test]
fn an_owned_set_deletes_only_the_keys_it_wrote_wherever_they_are() {
    for scope in [ClaimScope::Manager, ClaimScope::Object { released: None }] {
        assert_eq!(
            removals(SetPrune::Owned, scope),
            vec![
                ("app/mine".to_string(), EntryVerb::Delete),
                ("moved/mine".to_string(), EntryVerb::Delete),
            ],
            "{scope:?}"
        );
    }
}

#[test]
fn an_exclusive_set_also_deletes_unheld_keys_under_its_prefix_and_retains_claimed_ones() {
    // The operator: another object's key is its claim.
    assert_eq!(
        removals(SetPrune::Exclusive, ClaimScope::Object { released: None }),
        vec![
            ("app/entry".to_string(), EntryVerb::Retain),
            ("app/foreign".to_string(), EntryVerb::Delete),
            ("app/mine".to_string(), EntryVerb::Delete),
            ("app/team-b".to_string(), EntryVerb::Retain),
            ("moved/mine".to_string(), EntryVerb::Delete),
        ]
    );
    // A file run declares its manager's whole file set: an undeclared key of its own
    // manager under the prefix is unheld; another manager's never is.
    assert_eq!(
        removals(SetPrune::Exclusive, ClaimScope::Manager),
        vec![
            ("app/entry".to_string(), EntryVerb::Delete),
            ("app/foreign".to_string(), EntryVerb::Delete),
            ("app/mine".to_string(), EntryVerb::Delete),
            ("app/team-b".to_string(), EntryVerb::Retain),
            ("moved/mine".to_string(), EntryVerb::Delete),
        ]
    );
}

#[test]
fn prune_and_a_set_plan_each_removal_once_and_a_declared_key_never() {
    let desired = Desired {
        buckets: vec![bucket(ManagementPolicy::Manage, config())],
        entries: vec![entry("app/declared", "v", UpdatePolicy::Overwrite)],
        sets: vec![set(SetPrune::Owned)],
    };
    let plan = plan(
        &desired,
        &observed(),
        &PlanOptions {
            manager: MANAGER.into(),
            prune: true,
        },
    );
    let keys: Vec<(&str, EntryVerb, &str)> = plan.buckets[0]
        .entries
        .iter()
        .map(|entry| (&*entry.key, entry.action.verb(), &*entry.owner))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("app/declared", EntryVerb::Unchanged, "default/app/declared"),
            ("app/mine", EntryVerb::Delete, SET),
            ("moved/mine", EntryVerb::Delete, SET),
            ("app/entry", EntryVerb::Delete, "default/app-entry"),
        ]
    );
}
