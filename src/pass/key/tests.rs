//! The one-key pass with the operator's inputs scripted: what the key holds, which
//! holders are gone and which refusal the operator remembers. Each test states one rule
//! the entry controller relies on.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::*;
use crate::api::{BucketDeletionPolicy, EntryDeletionPolicy, ManagementPolicy, UpdatePolicy};
use crate::desired::BucketConfig;
use crate::ownership::Writer;

const MANAGER: &str = "kvop";

/// A key as stored: the source answers with it.
struct Stored(Option<ObservedKey>);

impl KeySource for Stored {
    async fn read(&self) -> Result<Option<ObservedKey>, NatsError> {
        Ok(self.0.clone())
    }
}

/// A source that cannot be read.
struct Unreadable;

impl KeySource for Unreadable {
    async fn read(&self) -> Result<Option<ObservedKey>, NatsError> {
        Err(NatsError::Conflict)
    }
}

/// Holders gone or not, each question recorded.
#[derive(Default)]
struct Gone {
    gone: Vec<&'static str>,
    asked: Mutex<Vec<String>>,
}

impl Holders for Gone {
    async fn gone(&self, owner: &str) -> bool {
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(owner.to_string());
        self.gone.contains(&owner)
    }
}

fn object(name: &str) -> ObjectRef {
    ObjectRef::resource("ns", name)
}

fn origin() -> Origin {
    Origin {
        source: "KeyValueEntry/ns/new".into(),
        line: 0,
    }
}

fn entry(value: &str) -> DesiredEntry {
    DesiredEntry {
        owner: object("new"),
        origin: origin(),
        bucket: "b".into(),
        key: "k".into(),
        value: Bytes::from(value.to_string()),
        update_policy: UpdatePolicy::Overwrite,
        deletion_policy: EntryDeletionPolicy::Delete,
        take_over: None,
        sensitive: false,
    }
}

fn bucket(max_value_size: i64) -> DesiredBucket {
    DesiredBucket {
        owner: object("b"),
        origin: origin(),
        name: "b".into(),
        config: BucketConfig {
            max_value_size,
            ..BucketConfig::defaults()
        },
        management: ManagementPolicy::Manage,
        deletion: BucketDeletionPolicy::Retain,
        adopt: false,
    }
}

/// The key's last message: `value` at revision 5, written by `manager` for `owner`.
fn written(value: &str, manager: Option<&str>, owner: Option<&str>) -> Option<ObservedKey> {
    Some(ObservedKey {
        revision: 5,
        operation: Operation::Put,
        value: Bytes::from(value.to_string()),
        writer: Writer {
            sensitive: false,
            manager: manager.map(Arc::from),
            owner: owner.map(str::to_string),
        },
    })
}

async fn plan(
    stored: Option<ObservedKey>,
    declared: &DesiredEntry,
    holders: &Gone,
    refused_by: Option<ObjectRef>,
) -> Result<KeyPlanned, PassError> {
    let bucket = bucket(-1);
    let key = DeclaredKey {
        entry: declared,
        bucket: &bucket,
        max_payload: 1024 * 1024,
    };
    let claims = KeyClaims {
        holders,
        refused_by,
    };
    plan_one_key(&Stored(stored), &key, claims, MANAGER).await
}

/// Another entry of this manager holds the key while it exists; once it is gone, its
/// claim (at exactly the revision it wrote) passes to the entry that declares the key.
#[tokio::test]
async fn a_claim_passes_on_only_when_its_holder_is_gone() {
    let held = || written("old", Some(MANAGER), Some("ns/old"));
    let present = Gone::default();
    let planned = plan(held(), &entry("v"), &present, None)
        .await
        .expect("planned");
    assert!(
        matches!(
            planned.action,
            EntryAction::Conflict {
                cause: ConflictCause::Claimed,
                ..
            }
        ),
        "{:?}",
        planned.action
    );
    assert_eq!(planned.refused_by.as_deref(), Some("ns/old"), "told");
    assert_eq!(planned.scope, ClaimScope::Object { released: None });

    let gone = Gone {
        gone: vec!["ns/old"],
        ..Gone::default()
    };
    let planned = plan(held(), &entry("v"), &gone, None)
        .await
        .expect("planned");
    assert_eq!(planned.scope, ClaimScope::Object { released: Some(5) });
    assert!(
        matches!(
            planned.action,
            EntryAction::Update {
                expected_revision: 5,
                ..
            }
        ),
        "{:?}",
        planned.action
    );
    assert_eq!(planned.refused_by, None);
}

/// Only another object of this manager can hand a claim on: the operator is asked about
/// no other writer (each answer may wait for its watch cache).
#[tokio::test]
async fn only_another_object_of_this_manager_is_looked_up() {
    let cases = [
        (
            "its own write",
            written("old", Some(MANAGER), Some("ns/new")),
        ),
        (
            "a kvop write without an owner",
            written("old", Some(MANAGER), None),
        ),
        (
            "another manager",
            written("old", Some("other"), Some("ns/old")),
        ),
        ("a foreign write", written("old", None, None)),
        ("no message", None),
    ];
    for (case, stored) in cases {
        let holders = Gone::default();
        plan(stored, &entry("v"), &holders, None)
            .await
            .expect("planned");
        let asked = holders.asked.lock().map(|asked| asked.clone());
        assert_eq!(asked.ok(), Some(Vec::new()), "{case}");
    }
}

/// A remembered refusal holds through a write that erased the holder's headers, and the
/// holder is told again; a kvop write on the key names its own holder instead.
#[tokio::test]
async fn a_remembered_refusal_holds_until_a_kvop_write_names_the_holder() {
    let holders = Gone::default();
    let foreign = written("theirs", None, None);
    let planned = plan(foreign, &entry("v"), &holders, Some(object("first")))
        .await
        .expect("planned");
    assert_eq!(
        planned.action,
        EntryAction::Conflict {
            revision: 5,
            writer: "manager \"kvop\" for ns/first".into(),
            cause: ConflictCause::Claimed,
        }
    );
    assert_eq!(planned.refused_by.as_deref(), Some("ns/first"));

    let own = written("old", Some(MANAGER), Some("ns/new"));
    let planned = plan(own, &entry("v"), &holders, Some(object("first")))
        .await
        .expect("planned");
    assert!(planned.action.writes(), "{:?}", planned.action);
    assert_eq!(planned.refused_by, None, "forgotten as a rival");
}

/// Only a value the plan writes is checked against the bucket's and the server's
/// limits: a key that already holds it, or that a claim leaves, is never refused.
#[tokio::test]
async fn only_a_value_that_will_be_written_must_fit() {
    let big = "x".repeat(200);
    let limited = bucket(100);
    let holders = Gone::default();
    let cases = [
        ("a new key", None, false),
        (
            "a changed value",
            written("old", Some(MANAGER), Some("ns/new")),
            false,
        ),
        (
            "the value it holds",
            written(&big, Some(MANAGER), Some("ns/new")),
            true,
        ),
        (
            "a claimed key",
            written("old", Some("other"), Some("x/y")),
            true,
        ),
    ];
    for (case, stored, fits) in cases {
        let declared = entry(&big);
        let key = DeclaredKey {
            entry: &declared,
            bucket: &limited,
            max_payload: 1024 * 1024,
        };
        let claims = KeyClaims {
            holders: &holders,
            refused_by: None,
        };
        let planned = plan_one_key(&Stored(stored), &key, claims, MANAGER).await;
        match planned {
            Ok(_) => assert!(fits, "{case}: not refused"),
            Err(PassError::Invalid(LoadErrors(errors))) => {
                assert!(!fits, "{case}: refused");
                let [error] = errors.as_slice() else {
                    panic!("{case}: one problem: {errors:?}");
                };
                assert_eq!(error.field.as_deref(), Some("spec"), "{case}");
                assert!(
                    error
                        .message
                        .contains("maxValueSize of bucket \"b\" (100 bytes)"),
                    "{case}: {}",
                    error.message
                );
            }
            Err(other) => panic!("{case}: {other}"),
        }
    }
}

/// A key that cannot be read is not planned: the reconcile fails with NATS's error.
#[tokio::test]
async fn a_key_that_cannot_be_read_plans_nothing() {
    let declared = entry("v");
    let bucket = bucket(-1);
    let key = DeclaredKey {
        entry: &declared,
        bucket: &bucket,
        max_payload: 1024,
    };
    let claims = KeyClaims {
        holders: &Gone::default(),
        refused_by: None,
    };
    let planned = plan_one_key(&Unreadable, &key, claims, MANAGER).await;
    assert!(matches!(planned, Err(PassError::Nats(NatsError::Conflict))));
}

/// A deleted entry's key is removed only while it holds that entry's write; apply
/// decides it again as a removal (no declaration to decide it by).
#[tokio::test]
async fn a_deleted_entrys_key_is_removed_only_while_it_holds_its_write() {
    let owner = object("new");
    let cases = [
        (
            "its write",
            written("v", Some(MANAGER), Some("ns/new")),
            EntryAction::Remove {
                expected_revision: 5,
                removal: Removal::Purge,
            },
        ),
        (
            "another object's write",
            written("v", Some(MANAGER), Some("ns/other")),
            EntryAction::Retain {
                revision: 5,
                writer: "manager \"kvop\" for ns/other".into(),
            },
        ),
        ("no message", None, EntryAction::Unchanged { revision: 0 }),
    ];
    for (case, stored, expected) in cases {
        let departed = DepartedKey {
            bucket: "b",
            key: "k",
            owner: &owner,
            origin: origin(),
            removal: Removal::Purge,
        };
        let planned = plan_key_removal(&Stored(stored), departed, MANAGER)
            .await
            .expect("planned");
        assert_eq!(planned.action, expected, "{case}");
        assert!(planned.desired.entries.is_empty(), "{case}");
        assert_eq!(
            planned.plan.buckets[0].entries[0].action, expected,
            "{case}"
        );
    }
}
