//! The decision for one key, rule by rule.

use super::*;

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
            "a foreign value is overwritten and its writer named",
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
                cause: ConflictCause::Policy(IfUnchanged),
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
                cause: ConflictCause::Policy(IfUnchanged),
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
        let decided = decide_entry(
            &entry("k", "v", policy),
            observed.as_ref(),
            MANAGER,
            ClaimScope::Manager,
        );
        assert_eq!(decided, expected, "{rule}");
    }
}

#[test]
fn a_take_over_annotation_overwrites_the_foreign_revision_it_names_and_no_other() {
    let taking = DesiredEntry {
        take_over: Some(13),
        sensitive: false,
        ..entry("k", "v", UpdatePolicy::IfUnchanged)
    };
    assert_eq!(
        decide_entry(
            &taking,
            Some(&key(13, Operation::Put, "x", None)),
            MANAGER,
            ClaimScope::Manager
        ),
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
            MANAGER,
            ClaimScope::Manager,
        ),
        EntryAction::Create {
            expected_revision: 13,
            value: "v".into(),
            drift: Some("another client".into()),
        }
    );
    assert_eq!(
        decide_entry(
            &taking,
            Some(&key(14, Operation::Put, "y", None)),
            MANAGER,
            ClaimScope::Manager
        ),
        EntryAction::Conflict {
            revision: 14,
            writer: "another client".into(),
            cause: ConflictCause::Policy(UpdatePolicy::IfUnchanged),
        },
        "a later foreign write is a conflict again"
    );
}

/// One claim per key: a live value another kvop object wrote (another manager, or in
/// the operator another object of this manager) is never written over, whatever the
/// update policy; a marker claims nothing; a released claim passes on; a run of
/// `kvop reconcile` holds every key its manager wrote.
#[test]
fn a_key_another_kvop_object_holds_is_refused_under_every_policy() {
    use Operation::*;
    let written =
        |revision: u64, operation: Operation, manager: &str, owner: Option<&str>| ObservedKey {
            revision,
            operation,
            value: Bytes::from_static(b"theirs"),
            writer: Writer {
                sensitive: false,
                manager: Some(Arc::from(manager)),
                owner: owner.map(str::to_string),
            },
        };
    let object = ClaimScope::Object { released: None };
    let claimed = |revision: u64, writer: &str| EntryAction::Conflict {
        revision,
        writer: writer.into(),
        cause: ConflictCause::Claimed,
    };
    for policy in UpdatePolicy::ALL {
        let declared = entry("k", "v", policy);
        let cases: Vec<(&str, ObservedKey, ClaimScope, EntryAction)> = vec![
            (
                "another manager's value, in the operator",
                written(4, Put, "other", Some("team-a/k")),
                object,
                claimed(4, "manager \"other\" for team-a/k"),
            ),
            (
                "another manager's value, in a file run",
                written(4, Put, "other", Some("team-a/k")),
                ClaimScope::Manager,
                claimed(4, "manager \"other\" for team-a/k"),
            ),
            (
                "another object of this manager, in the operator",
                written(5, Put, MANAGER, Some("team-b/k")),
                object,
                claimed(5, "manager \"kvop\" for team-b/k"),
            ),
            (
                "a claim released at another revision still holds",
                written(5, Put, MANAGER, Some("team-b/k")),
                ClaimScope::Object { released: Some(4) },
                claimed(5, "manager \"kvop\" for team-b/k"),
            ),
        ];
        for (rule, observed, scope, expected) in cases {
            assert_eq!(
                decide_entry(&declared, Some(&observed), MANAGER, scope),
                expected,
                "{policy}: {rule}"
            );
        }
        // Its own write, a marker, a released claim and a file run's own manager are
        // decided by the update policy as before.
        for (rule, observed, scope) in [
            (
                "its own value",
                written(6, Put, MANAGER, Some("default/k")),
                object,
            ),
            (
                "a kvop write without an owner",
                written(6, Put, MANAGER, None),
                object,
            ),
            (
                "another object's delete marker",
                written(6, Delete, "other", Some("x/y")),
                object,
            ),
            (
                "a released claim",
                written(6, Put, MANAGER, Some("team-b/k")),
                ClaimScope::Object { released: Some(6) },
            ),
            (
                "a file run holds its manager's keys",
                written(6, Put, MANAGER, Some("default/old")),
                ClaimScope::Manager,
            ),
        ] {
            let decided = decide_entry(&declared, Some(&observed), MANAGER, scope);
            assert!(
                !matches!(
                    decided,
                    EntryAction::Conflict {
                        cause: ConflictCause::Claimed,
                        ..
                    }
                ),
                "{policy}: {rule}: {decided:?}"
            );
        }
    }
}

/// A refusal outlives a foreign write: the holder still declares the key, so a value or
/// marker that erased the claim's headers hands the key to nobody. A kvop write carries
/// its own claim, and then the headers decide.
#[test]
fn a_refused_entry_stays_refused_until_a_kvop_write_names_the_holder() {
    use Operation::*;
    let holder = ObjectRef::resource("team-a", "first");
    let last = |operation: Operation, manager: Option<&str>| ObservedKey {
        revision: 7,
        operation,
        value: Bytes::from_static(b"v"),
        writer: Writer {
            sensitive: false,
            manager: manager.map(Arc::from),
            owner: None,
        },
    };
    let refused = |revision| {
        Some(EntryAction::Conflict {
            revision,
            writer: "manager \"kvop\" for team-a/first".into(),
            cause: ConflictCause::Claimed,
        })
    };
    let cases: Vec<(&str, Option<ObservedKey>, Option<EntryAction>)> = vec![
        ("no message at all", None, refused(0)),
        ("a foreign value", Some(last(Put, None)), refused(7)),
        ("a foreign delete", Some(last(Delete, None)), refused(7)),
        (
            "a purge by kvop",
            Some(last(Purge, Some(MANAGER))),
            refused(7),
        ),
        ("kvop's value", Some(last(Put, Some(MANAGER))), None),
        (
            "another manager's value",
            Some(last(Put, Some("other"))),
            None,
        ),
    ];
    for (rule, observed, expected) in cases {
        assert_eq!(
            held_through_drift(observed.as_ref(), MANAGER, &holder),
            expected,
            "{rule}"
        );
    }
}

/// The operator's plan for one key changes nothing of its bucket and names the key's
/// owner, whose write a conflict is decided again by.
#[test]
fn a_one_key_plan_leaves_its_bucket_and_holds_only_that_key() {
    let owner = ObjectRef::resource("ns", "e");
    let action = EntryAction::Remove {
        expected_revision: 3,
        removal: Removal::Purge,
    };
    let plan = Plan::one_key("b", "k".into(), &owner, origin(), action.clone(), false);
    let [bucket] = plan.buckets.as_slice() else {
        panic!("one bucket: {plan:?}");
    };
    assert_eq!(
        (bucket.bucket.as_str(), &bucket.owner, &bucket.action),
        ("b", &owner, &BucketAction::Unchanged)
    );
    let [entry] = bucket.entries.as_slice() else {
        panic!("one key: {bucket:?}");
    };
    assert_eq!(
        (&*entry.key, &*entry.owner, &entry.action),
        ("k", "ns/e", &action)
    );
    assert!(plan.has_changes());
}
