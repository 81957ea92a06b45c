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
