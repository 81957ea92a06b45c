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

pub(super) fn origin() -> Origin {
    Origin {
        source: "test.yaml".into(),
        line: 1,
    }
}

pub(super) fn bucket(management: ManagementPolicy, config: BucketConfig) -> DesiredBucket {
    DesiredBucket {
        owner: ObjectRef {
            namespace: "default".into(),
            name: "b".into(),
        },
        origin: origin(),
        name: "b".into(),
        config,
        management,
        deletion: BucketDeletionPolicy::Retain,
    }
}

pub(super) fn entry(key: &str, value: &str, policy: UpdatePolicy) -> DesiredEntry {
    DesiredEntry {
        owner: ObjectRef {
            namespace: "default".into(),
            name: key.into(),
        },
        origin: origin(),
        bucket: "b".into(),
        key: key.into(),
        value: Bytes::from(value.to_string()),
        update_policy: policy,
        take_over: None,
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
            manager: manager.map(String::from),
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
            created_by: None,
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
fn entry_decisions_follow_the_revision_and_ownership_rules() {
    use Operation::*;
    use UpdatePolicy::*;
    let ours = Some(MANAGER);
    let theirs = None;
    let cases: Vec<(&str, UpdatePolicy, Option<ObservedKey>, EntryAction)> = vec![
        (
            "absent key is created expecting revision 0",
            Overwrite,
            None,
            EntryAction::Create {
                expected_revision: 0,
                value: "v".into(),
                drift: None,
            },
        ),
        (
            "deleted key is re-created over its marker",
            Overwrite,
            Some(key(7, Delete, "", ours)),
            EntryAction::Create {
                expected_revision: 7,
                value: "v".into(),
                drift: None,
            },
        ),
        (
            "purged key is re-created over its marker",
            CreateOnly,
            Some(key(9, Purge, "", theirs)),
            EntryAction::Create {
                expected_revision: 9,
                value: "v".into(),
                drift: Some("another client".into()),
            },
        ),
        (
            "equal value writes nothing",
            Overwrite,
            Some(key(3, Put, "v", theirs)),
            EntryAction::Unchanged { revision: 3 },
        ),
        (
            "our own older value is updated",
            Overwrite,
            Some(key(3, Put, "old", ours)),
            EntryAction::Update {
                expected_revision: 3,
                value: "v".into(),
                drift: None,
            },
        ),
        (
            "a foreign value is restored and reported as drift",
            Overwrite,
            Some(key(4, Put, "x", theirs)),
            EntryAction::Update {
                expected_revision: 4,
                value: "v".into(),
                drift: Some("another client".into()),
            },
        ),
        (
            "IfUnchanged updates while the value is ours",
            IfUnchanged,
            Some(key(5, Put, "old", ours)),
            EntryAction::Update {
                expected_revision: 5,
                value: "v".into(),
                drift: None,
            },
        ),
        (
            "IfUnchanged reports a foreign value as a conflict",
            IfUnchanged,
            Some(key(5, Put, "x", theirs)),
            EntryAction::Conflict {
                revision: 5,
                writer: "another client".into(),
                policy: IfUnchanged,
            },
        ),
        (
            "CreateOnly leaves an existing value",
            CreateOnly,
            Some(key(6, Put, "x", theirs)),
            EntryAction::Skip {
                revision: 6,
                policy: CreateOnly,
            },
        ),
        (
            "CreateOnly creates an absent key",
            CreateOnly,
            None,
            EntryAction::Create {
                expected_revision: 0,
                value: "v".into(),
                drift: None,
            },
        ),
        (
            "IfUnchanged reports a key someone else deleted",
            IfUnchanged,
            Some(key(8, Delete, "", theirs)),
            EntryAction::Conflict {
                revision: 8,
                writer: "another client".into(),
                policy: IfUnchanged,
            },
        ),
        (
            "IfUnchanged re-creates a key this manager deleted",
            IfUnchanged,
            Some(key(8, Delete, "", ours)),
            EntryAction::Create {
                expected_revision: 8,
                value: "v".into(),
                drift: None,
            },
        ),
    ];
    for (rule, policy, observed, expected) in cases {
        let decided = decide_entry(&entry("k", "v", policy), observed.as_ref(), MANAGER);
        assert_eq!(decided, expected, "{rule}");
    }
}

#[test]
fn a_take_over_annotation_overwrites_the_foreign_revision_it_names_and_no_other() {
    let taking = DesiredEntry {
        take_over: Some(13),
        ..entry("k", "v", UpdatePolicy::IfUnchanged)
    };
    assert_eq!(
        decide_entry(&taking, Some(&key(13, Operation::Put, "x", None)), MANAGER),
        EntryAction::Update {
            expected_revision: 13,
            value: "v".into(),
            drift: Some("another client".into()),
        }
    );
    assert_eq!(
        decide_entry(
            &taking,
            Some(&key(13, Operation::Delete, "", None)),
            MANAGER
        ),
        EntryAction::Create {
            expected_revision: 13,
            value: "v".into(),
            drift: Some("another client".into()),
        }
    );
    assert_eq!(
        decide_entry(&taking, Some(&key(14, Operation::Put, "y", None)), MANAGER),
        EntryAction::Conflict {
            revision: 14,
            writer: "another client".into(),
            policy: UpdatePolicy::IfUnchanged,
        },
        "a later foreign write is a conflict again"
    );
}

#[test]
fn a_missing_bucket_is_created_and_all_its_keys_expect_revision_0() {
    let desired = Desired {
        buckets: vec![bucket(ManagementPolicy::Manage, config())],
        entries: vec![entry("a", "1", UpdatePolicy::Overwrite)],
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
                allow_msg_ttl: true,
                limit_marker_ttl: Some(Duration::from_secs(1)),
                ..config()
            },
            config(),
        ),
    ] {
        let desired = Desired {
            buckets: vec![bucket(ManagementPolicy::Manage, wanted)],
            entries: vec![],
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
        assert_eq!(plan.problems().len(), 1, "{rule}");
    }
}

#[test]
fn a_legacy_bucket_with_per_message_ttl_but_no_markers_is_not_a_change() {
    let legacy = BucketConfig {
        allow_msg_ttl: true,
        ..config()
    };
    let desired = Desired {
        buckets: vec![bucket(ManagementPolicy::Manage, config())],
        entries: vec![],
    };
    let plan = plan(
        &desired,
        &existing(no_keys(), legacy),
        &PlanOptions {
            manager: MANAGER.into(),
            prune: false,
        },
    );
    assert_eq!(plan.buckets[0].action, BucketAction::Unchanged);
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
        .map(|entry| (entry.key.as_str(), &entry.action))
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
                entry.key.clone(),
                ObservedKey {
                    revision,
                    operation: Operation::Put,
                    value: value.clone(),
                    writer: Writer {
                        manager: Some(MANAGER.into()),
                        owner: Some(entry.owner.clone()),
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

mod properties;
