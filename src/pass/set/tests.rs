//! The set pass with the operator's inputs scripted: what the bucket holds and which
//! holders are gone. Each test states one rule the set controller relies on.

use std::collections::HashMap;

use bytes::Bytes;

use super::*;
use crate::api::{
    BucketDeletionPolicy, EntryDeletionPolicy, ManagementPolicy, SetPrune, UpdatePolicy,
};
use crate::desired::BucketConfig;
use crate::observed::ObservedKey;
use crate::ownership::Writer;

const MANAGER: &str = "kvop";

struct Stored(HashMap<String, ObservedKey>);

impl BucketSource for Stored {
    async fn read(&self) -> Result<ObservedBucket, NatsError> {
        Ok(ObservedBucket {
            stream: None,
            keys: self.0.clone(),
            complete: true,
        })
    }
}

/// Holders named here are gone.
struct Gone(Vec<&'static str>);

impl Holders for Gone {
    async fn gone(&self, owner: &str) -> bool {
        self.0.contains(&owner)
    }
}

fn owner() -> ObjectRef {
    ObjectRef::entry_set("ns", "s")
}

fn origin() -> Origin {
    Origin {
        source: "KeyValueEntrySet/ns/s".into(),
        line: 0,
    }
}

fn set(prune: SetPrune, allow_empty_prune: bool) -> DesiredSet {
    DesiredSet {
        owner: owner(),
        origin: origin(),
        bucket: "b".into(),
        key_prefix: "app/".into(),
        prune,
        deletion_policy: EntryDeletionPolicy::Delete,
        allow_empty_prune,
    }
}

fn key(name: &str, value: &str) -> DesiredEntry {
    DesiredEntry {
        owner: owner(),
        origin: origin(),
        bucket: "b".into(),
        key: name.into(),
        value: Bytes::from(value.to_string()),
        update_policy: UpdatePolicy::Overwrite,
        deletion_policy: EntryDeletionPolicy::Delete,
        take_over: None,
        sensitive: false,
    }
}

fn bucket() -> DesiredBucket {
    DesiredBucket {
        owner: ObjectRef::resource("ns", "b"),
        origin: origin(),
        name: "b".into(),
        config: BucketConfig {
            max_value_size: 256,
            ..BucketConfig::defaults()
        },
        management: ManagementPolicy::Manage,
        deletion: BucketDeletionPolicy::Retain,
        adopt: false,
    }
}

/// `value` at `revision`, written by `manager` for `owner`.
fn written(revision: u64, manager: Option<&str>, owner: Option<&str>) -> ObservedKey {
    ObservedKey {
        revision,
        operation: Operation::Put,
        value: Bytes::from_static(b"old"),
        writer: Writer {
            sensitive: false,
            manager: manager.map(Arc::from),
            owner: owner.map(str::to_string),
        },
    }
}

async fn plan(
    stored: &[(&str, ObservedKey)],
    set: &DesiredSet,
    keys: &[DesiredEntry],
    gone: &[&'static str],
) -> Result<SetPlanned, PassError> {
    let stored = Stored(
        stored
            .iter()
            .map(|(key, observed)| (key.to_string(), observed.clone()))
            .collect(),
    );
    let bucket = bucket();
    let declared = DeclaredSet {
        set,
        keys,
        bucket: &bucket,
        max_payload: 1024 * 1024,
    };
    plan_set(&stored, &declared, &Gone(gone.to_vec()), MANAGER).await
}

fn actions(planned: &SetPlanned) -> Vec<(String, String)> {
    planned.plan.buckets[0]
        .entries
        .iter()
        .map(|entry| (entry.key.to_string(), entry.action.verb().to_string()))
        .collect()
}

/// A key another kvop object holds is refused (never written), and its holder named once;
/// once that holder is gone, its key passes to the set.
#[tokio::test]
async fn a_key_held_by_another_object_is_refused_until_its_holder_is_gone() {
    let held = written(3, Some(MANAGER), Some("ns/entry"));
    let keys = [key("app/a", "v"), key("app/b", "v")];
    let stored = [("app/a", held.clone()), ("app/b", held)];
    let planned = plan(&stored, &set(SetPrune::Owned, false), &keys, &[])
        .await
        .expect("planned");
    assert!(
        planned.plan.buckets[0].entries.iter().all(|entry| matches!(
            entry.action,
            EntryAction::Conflict {
                cause: ConflictCause::Claimed,
                ..
            }
        )),
        "{:?}",
        actions(&planned)
    );
    assert_eq!(planned.refused_by, ["ns/entry"]);

    let planned = plan(&stored, &set(SetPrune::Owned, false), &keys, &["ns/entry"])
        .await
        .expect("planned");
    assert!(
        planned.plan.buckets[0]
            .entries
            .iter()
            .all(|entry| matches!(entry.action, EntryAction::Update { .. }))
    );
    assert!(planned.refused_by.is_empty());
}

/// Owned: only the set's own write of an undeclared key is removed; a foreign key under
/// the prefix stays. Exclusive: the foreign key goes too, another kvop object's stays.
#[tokio::test]
async fn owned_removes_only_the_sets_writes_and_exclusive_also_unheld_keys_under_the_prefix() {
    let own = "ns/KeyValueEntrySet/s";
    let stored = [
        ("app/dropped", written(1, Some(MANAGER), Some(own))),
        ("app/foreign", written(2, None, None)),
        ("app/entry", written(3, Some(MANAGER), Some("ns/e"))),
        ("other/foreign", written(4, None, None)),
    ];
    let keys = [key("app/kept", "v")];
    let removed = |planned: &SetPlanned| -> Vec<String> {
        planned.plan.buckets[0]
            .entries
            .iter()
            .filter(|entry| matches!(entry.action, EntryAction::Remove { .. }))
            .map(|entry| entry.key.to_string())
            .collect()
    };
    let owned = plan(&stored, &set(SetPrune::Owned, false), &keys, &[])
        .await
        .expect("planned");
    assert_eq!(removed(&owned), ["app/dropped"]);
    let exclusive = plan(&stored, &set(SetPrune::Exclusive, false), &keys, &[])
        .await
        .expect("planned");
    assert_eq!(removed(&exclusive), ["app/dropped", "app/foreign"]);
}

/// A set that declares nothing yet would remove keys is refused unless annotated.
#[tokio::test]
async fn an_empty_set_that_would_remove_keys_is_refused_unless_allowed() {
    let stored = [(
        "app/a",
        written(1, Some(MANAGER), Some("ns/KeyValueEntrySet/s")),
    )];
    let refused = plan(&stored, &set(SetPrune::Owned, false), &[], &[]).await;
    let Err(PassError::EmptyPrune(refused)) = refused else {
        panic!("expected a refusal: {refused:?}");
    };
    assert_eq!(refused.sets, [("ns/KeyValueEntrySet/s".to_string(), 1)]);
    let allowed = plan(&stored, &set(SetPrune::Owned, true), &[], &[])
        .await
        .expect("allowed");
    assert_eq!(actions(&allowed).len(), 1);
}

/// A value over the bucket's max value size is refused before anything is written, but
/// one NATS already holds is not.
#[tokio::test]
async fn only_a_value_that_will_be_written_must_fit() {
    let big = "x".repeat(300);
    let refused = plan(
        &[],
        &set(SetPrune::Owned, false),
        &[key("app/big", &big)],
        &[],
    )
    .await;
    assert!(matches!(refused, Err(PassError::Invalid(_))), "{refused:?}");
}

/// A deleted set removes only keys still holding its own write.
#[tokio::test]
async fn a_deleted_set_removes_only_keys_that_hold_its_own_write() {
    let stored = Stored(
        [
            (
                "app/a",
                written(1, Some(MANAGER), Some("ns/KeyValueEntrySet/s")),
            ),
            ("app/b", written(2, Some(MANAGER), Some("ns/s"))),
            ("app/c", written(3, None, None)),
        ]
        .into_iter()
        .map(|(key, observed)| (key.to_string(), observed))
        .collect(),
    );
    let planned = plan_set_removal(&stored, "b", &owner(), &origin(), Removal::Purge, MANAGER)
        .await
        .expect("planned");
    let entries = &planned.plan.buckets[0].entries;
    assert_eq!(entries.len(), 1);
    assert_eq!(&*entries[0].key, "app/a");
    assert!(matches!(
        entries[0].action,
        EntryAction::Remove {
            removal: Removal::Purge,
            ..
        }
    ));
}
