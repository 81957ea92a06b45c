//! Table tests of the planner: each row states one decision rule.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::api::{
    BucketDeletionPolicy, EntryDeletionPolicy, ManagementPolicy, StorageType, UpdatePolicy,
};
use crate::desired::{DesiredBucket, DesiredEntry};
use crate::observed::{BucketStats, ObservedKey, ObservedStream, Operation};
use crate::ownership::Writer;

pub(super) const MANAGER: &str = "kvop";

pub(super) fn config() -> BucketConfig {
    BucketConfig::defaults()
}

/// The claim a file run of [`MANAGER`] records for [`bucket`].
pub(super) fn claim() -> BucketClaim {
    BucketClaim {
        manager: MANAGER.into(),
        owner: "default/b".into(),
        uid: None,
    }
}

pub(super) fn origin() -> Origin {
    Origin {
        source: "test.yaml".into(),
        line: 1,
    }
}

pub(super) fn bucket(management: ManagementPolicy, config: BucketConfig) -> DesiredBucket {
    DesiredBucket {
        owner: ObjectRef::resource("default", "b"),
        origin: origin(),
        name: "b".into(),
        config,
        management,
        deletion: BucketDeletionPolicy::Retain,
        adopt: false,
    }
}

pub(super) fn entry(key: &str, value: &str, policy: UpdatePolicy) -> DesiredEntry {
    DesiredEntry {
        owner: ObjectRef::resource("default", key),
        origin: origin(),
        bucket: "b".into(),
        key: key.into(),
        value: Bytes::from(value.to_string()),
        update_policy: policy,
        take_over: None,
        sensitive: false,
        deletion_policy: EntryDeletionPolicy::Delete,
    }
}

pub(super) fn key(
    revision: u64,
    operation: Operation,
    value: &str,
    manager: Option<&str>,
) -> ObservedKey {
    ObservedKey {
        revision,
        operation,
        value: Bytes::from(value.to_string()),
        writer: Writer {
            sensitive: false,
            manager: manager.map(Arc::from),
            owner: manager.map(|_| "default/old".to_string()),
        },
    }
}

pub(super) fn existing<K: Into<String>>(
    keys: Vec<(K, ObservedKey)>,
    config: BucketConfig,
) -> Observed {
    let bucket = ObservedBucket {
        stream: Some(ObservedStream {
            config,
            stats: BucketStats::default(),
            created_by: Some(MANAGER.into()),
            claim: Some(claim()),
        }),
        keys: keys
            .into_iter()
            .map(|(name, key)| (name.into(), key))
            .collect::<HashMap<_, _>>(),
        complete: true,
    };
    Observed {
        buckets: [("b".to_string(), bucket)].into(),
    }
}

#[test]
fn a_missing_bucket_is_created_and_all_its_keys_expect_revision_0() {
    let desired = Desired {
        buckets: vec![bucket(ManagementPolicy::Manage, config())],
        entries: vec![entry("a", "1", UpdatePolicy::Overwrite)],
        sets: Vec::new(),
    };
    let plan = plan(
        &desired,
        &Observed::default(),
        &PlanOptions {
            manager: MANAGER.into(),
            prune: false,
        },
    );
    assert_eq!(
        plan.buckets[0].action,
        BucketAction::Create { config: config() }
    );
    assert_eq!(
        plan.buckets[0].entries[0].action,
        EntryAction::Create {
            expected_revision: 0,
            value: "1".into(),
            drift: None,
        }
    );
    assert!(plan.has_changes());
}

#[test]
fn bucket_config_changes_are_listed_field_by_field() {
    let mut wanted = config();
    wanted.history = 5;
    wanted.ttl = Duration::from_secs(3600);
    wanted.compression = true;
    let desired = Desired {
        buckets: vec![bucket(ManagementPolicy::Manage, wanted.clone())],
        entries: vec![],
        sets: Vec::new(),
    };
    let plan = plan(
        &desired,
        &existing(no_keys(), config()),
        &PlanOptions {
            manager: MANAGER.into(),
            prune: false,
        },
    );
    let BucketAction::Update { changes, .. } = &plan.buckets[0].action else {
        panic!("expected an update, got {:?}", plan.buckets[0].action)
    };
    let fields: Vec<&str> = changes.iter().map(|change| change.field).collect();
    assert_eq!(fields, ["history", "ttl", "compression"]);
    assert_eq!(
        (changes[1].from.as_str(), changes[1].to.as_str()),
        ("none", "1h")
    );
}

#[test]
fn immutable_changes_block_the_whole_bucket_update() {
    for (rule, current, wanted) in [
        (
            "storage",
            config(),
            BucketConfig {
                storage: StorageType::Memory,
                history: 3,
                ..config()
            },
        ),
        (
            "disabling per-message TTL",
            BucketConfig {
                allow_msg_ttl: Some(true),
                limit_marker_ttl: Some(Duration::from_secs(1)),
                ..config()
            },
            config(),
        ),
    ] {
        let desired = Desired {
            buckets: vec![bucket(ManagementPolicy::Manage, wanted)],
            entries: vec![],
            sets: Vec::new(),
        };
        let plan = plan(
            &desired,
            &existing(no_keys(), current),
            &PlanOptions {
                manager: MANAGER.into(),
                prune: false,
            },
        );
        let BucketAction::Blocked { changes } = &plan.buckets[0].action else {
            panic!("{rule}: expected blocked, got {:?}", plan.buckets[0].action)
        };
        assert!(
            changes.iter().all(|change| change.immutable),
            "{rule}: only immutable fields are listed"
        );
        assert!(!plan.has_changes(), "{rule}: nothing is attempted");
    }
}

#[test]
fn observe_policy_never_plans_a_bucket_change() {
    let wanted = BucketConfig {
        history: 10,
        ..config()
    };
    let desired = Desired {
        buckets: vec![bucket(ManagementPolicy::Observe, wanted.clone())],
        entries: vec![entry("a", "1", UpdatePolicy::Overwrite)],
        sets: Vec::new(),
    };
    let options = PlanOptions {
        manager: MANAGER.into(),
        prune: false,
    };
    let planned = plan(&desired, &existing(no_keys(), config()), &options);
    assert_eq!(planned.buckets[0].action, BucketAction::Observe);
    assert!(
        planned.buckets[0].entries[0].action.writes(),
        "entries may still target an observed bucket"
    );
    let absent = plan(&desired, &Observed::default(), &options);
    assert_eq!(absent.buckets[0].action, BucketAction::Missing);
    assert_eq!(absent.buckets[0].entries[0].action, EntryAction::Wait);
}

#[test]
fn prune_deletes_only_live_keys_this_manager_wrote_that_are_no_longer_declared() {
    let observed = existing(
        vec![
            ("kept", key(1, Operation::Put, "1", Some(MANAGER))),
            ("ours", key(2, Operation::Put, "x", Some(MANAGER))),
            (
                "foreign",
                key(3, Operation::Put, "x", Some("other-manager")),
            ),
            ("unmanaged", key(4, Operation::Put, "x", None)),
            ("deleted", key(5, Operation::Delete, "", Some(MANAGER))),
        ],
        config(),
    );
    let desired = Desired {
        buckets: vec![bucket(ManagementPolicy::Manage, config())],
        entries: vec![entry("kept", "1", UpdatePolicy::Overwrite)],
        sets: Vec::new(),
    };
    let with_prune = plan(
        &desired,
        &observed,
        &PlanOptions {
            manager: MANAGER.into(),
            prune: true,
        },
    );
    let pruned: Vec<(&str, &EntryAction)> = with_prune.buckets[0]
        .entries
        .iter()
        .filter(|entry| matches!(entry.action, EntryAction::Remove { .. }))
        .map(|entry| (&*entry.key, &entry.action))
        .collect();
    assert_eq!(
        pruned,
        [(
            "ours",
            &EntryAction::Remove {
                expected_revision: 2,
                removal: Removal::Prune,
            }
        )]
    );
    let without = plan(
        &desired,
        &observed,
        &PlanOptions {
            manager: MANAGER.into(),
            prune: false,
        },
    );
    assert!(!without.has_changes());
}

#[test]
fn a_plan_applied_in_imagination_plans_nothing_the_second_time() {
    // Idempotence: observe what the plan would leave behind, plan again, expect no writes.
    let desired = Desired {
        buckets: vec![bucket(ManagementPolicy::Manage, config())],
        entries: vec![
            entry("a", "1", UpdatePolicy::Overwrite),
            entry("b", "2", UpdatePolicy::IfUnchanged),
            entry("c", "3", UpdatePolicy::CreateOnly),
        ],
        sets: Vec::new(),
    };
    let observed = existing(
        vec![
            ("a", key(1, Operation::Delete, "", None)),
            ("b", key(2, Operation::Put, "old", Some(MANAGER))),
        ],
        config(),
    );
    let options = PlanOptions {
        manager: MANAGER.into(),
        prune: true,
    };
    let first = plan(&desired, &observed, &options);
    let mut after = observed.clone();
    let bucket = after.buckets.get_mut("b").expect("bucket");
    for (revision, entry) in (10..).zip(&first.buckets[0].entries) {
        if let EntryAction::Create { value, .. } | EntryAction::Update { value, .. } = &entry.action
        {
            bucket.keys.insert(
                entry.key.to_string(),
                ObservedKey {
                    revision,
                    operation: Operation::Put,
                    value: value.clone(),
                    writer: Writer {
                        sensitive: false,
                        manager: Some(MANAGER.into()),
                        owner: Some(entry.owner.to_string()),
                    },
                },
            );
        }
    }
    let second = plan(&desired, &after, &options);
    assert!(!second.has_changes(), "{second:#?}");
}

fn no_keys() -> Vec<(&'static str, ObservedKey)> {
    Vec::new()
}

mod bucket_removal;
mod claims;
mod entries;
mod msg_ttl;
mod properties;
mod sets;
