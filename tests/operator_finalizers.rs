//! What a new entry costs the apiserver, and kvop's finalizer only where a deletion acts
//! in NATS: `kvop run` against a real kube-apiserver (tests/env, MutatingAdmissionPolicy
//! on) and a real nats-server. Reconciles are counted from the operator's metrics; a
//! finalizer patch shows as a second reconcile, since a finalizer change wakes the entry.

mod support;

use std::time::Duration;

use kube::api::{Api, DeleteParams, PostParams};
use kvop::api::{KeyValueEntry, KeyValueEntrySet};
use serde_json::json;
use support::admission::AdmissionPolicy;
use support::k8s::{Operator, plane, wait_until};
use support::resources::*;
use support::{kv_entry, kv_get};

const FINALIZER: &str = "kvop.dev/cleanup";

#[tokio::test]
async fn a_new_entry_costs_two_reconciles_a_finalizer_and_a_status_write_and_no_event() {
    let s = setup("writes").await;
    let (operator, before) = operator_with_bucket(&s).await;
    let names = ["e1", "e2", "e3", "e4", "e5"];
    for name in names {
        create(&s.entries, &entry(name, "b", name, "v", json!({}))).await;
    }
    for name in names {
        wait_entry(&s.entries, name, true, None).await;
    }
    // Whatever else would come (a reconcile woken by kvop's own status write) has come.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // One for the create (which adds the finalizer), one for the finalizer (which
    // applies and writes the status); the status write wakes nothing.
    assert_eq!(
        operator.reconciles("KeyValueEntry").await - before,
        2 * names.len() as u64
    );
    for name in names {
        assert_eq!(finalizers(&s.entries, name).await, [FINALIZER], "{name}");
        assert!(
            event_notes(&s.client, &s.namespace, name, "Created")
                .await
                .is_empty(),
            "{name}: a first write is no news"
        );
    }
}

/// `Retain` leaves the key as it is when the entry goes: nothing to wait for, so no
/// finalizer, one reconcile, and a deletion that is immediate.
#[tokio::test]
async fn a_retain_entry_carries_no_finalizer_and_its_deletion_is_immediate_and_keeps_the_key() {
    let s = setup("retain-fin").await;
    let (operator, before) = operator_with_bucket(&s).await;
    let retain = json!({"deletionPolicy": "Retain"});
    create(&s.entries, &entry("kept", "b", "k", "v", retain)).await;
    wait_entry(&s.entries, "kept", true, None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        operator.reconciles("KeyValueEntry").await - before,
        1,
        "one reconcile"
    );
    assert!(finalizers(&s.entries, "kept").await.is_empty());

    s.entries
        .delete("kept", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        s.entries.get_opt("kept").await.expect("get").is_none(),
        "gone as soon as it is deleted"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let js = s.nats.jetstream().await;
    assert_eq!(kv_get(&js, "b", "k").await.as_deref(), Some(&b"v"[..]));
}

/// A `deletionPolicy` change moves the finalizer with it: off for `Retain`, back on for
/// `Delete`, and a `Delete` entry's deletion still removes its key.
#[tokio::test]
async fn changing_the_deletion_policy_takes_the_finalizer_off_and_puts_it_back() {
    let s = setup("policy-fin").await;
    let _operator = quiet_operator(&s);
    create(&s.buckets, &bucket("b", json!({}))).await;
    create(&s.entries, &entry("e", "b", "k", "v", json!({}))).await;
    wait_entry(&s.entries, "e", true, None).await;
    assert_eq!(finalizers(&s.entries, "e").await, [FINALIZER]);

    for (policy, expected) in [("Retain", &[][..]), ("Delete", &[FINALIZER][..])] {
        merge(&s.entries, "e", json!({"spec": {"deletionPolicy": policy}}))
            .await
            .expect("change deletionPolicy");
        wait_until(&format!("finalizers for {policy}"), WAIT, || async {
            (finalizers(&s.entries, "e").await == expected).then_some(())
        })
        .await;
    }
    s.entries
        .delete("e", &DeleteParams::default())
        .await
        .expect("delete");
    wait_value(&s.nats, "b", "k", None).await;
    let js = s.nats.jetstream().await;
    let marker = kv_entry(&js, "b", "k").await.expect("a delete marker");
    assert_ne!(marker.operation, async_nats::jetstream::kv::Operation::Put);
}

/// The chart's MutatingAdmissionPolicy (charts/kvop/files/cleanup-finalizer-policy.yaml,
/// bound to this test's namespace only) sets the finalizer at creation: the operator
/// spends one reconcile per entry and never patches it; `Retain` entries get none.
#[tokio::test]
async fn with_the_charts_admission_policy_a_new_entry_costs_one_reconcile_and_no_finalizer_patch() {
    let s = setup("admitted").await;
    let _policy = AdmissionPolicy::install(&s.client, &s.namespace).await;
    let (operator, before) = operator_with_bucket(&s).await;
    let names = ["e1", "e2", "e3", "e4", "e5"];
    for name in names {
        let created = s
            .entries
            .create(
                &PostParams::default(),
                &entry(name, "b", name, "v", json!({})),
            )
            .await
            .expect("create");
        assert_eq!(created.metadata.finalizers.unwrap_or_default(), [FINALIZER]);
    }
    let retain = json!({"deletionPolicy": "Retain"});
    create(&s.entries, &entry("kept", "b", "kept", "v", retain)).await;
    for name in names.iter().chain(&["kept"]) {
        wait_entry(&s.entries, name, true, None).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        operator.reconciles("KeyValueEntry").await - before,
        names.len() as u64 + 1,
        "one reconcile per entry: the finalizer was already there"
    );
    assert!(finalizers(&s.entries, "kept").await.is_empty());

    // Entry sets too: created with the finalizer unless their deletion retains the keys.
    let sets: Api<KeyValueEntrySet> = Api::namespaced(s.client.clone(), &s.namespace);
    for (name, policy, finalized) in [("deleting", "Delete", true), ("keeping", "Retain", false)] {
        let set: KeyValueEntrySet = serde_json::from_value(json!({
            "apiVersion": "kvop.dev/v1alpha1",
            "kind": "KeyValueEntrySet",
            "metadata": {"name": name},
            "spec": {"bucketRef": {"name": "b"}, "keyPrefix": format!("{name}/"), "deletionPolicy": policy, "entries": [{"key": "k", "value": "v"}]},
        }))
        .expect("set");
        let created = sets
            .create(&PostParams::default(), &set)
            .await
            .expect("create set");
        assert_eq!(
            created.metadata.finalizers.unwrap_or_default() == [FINALIZER],
            finalized,
            "set {name} ({policy})"
        );
    }
}

/// The operator, with bucket `b` ready, and its entry reconciles so far.
async fn operator_with_bucket(s: &Setup) -> (Operator, u64) {
    let operator = quiet_operator(s);
    create(&s.buckets, &bucket("b", json!({}))).await;
    wait_bucket(&s.buckets, "b", true, None).await;
    // The entry controller reads buckets from its own cache, which may learn of the
    // bucket a few milliseconds after its status says Ready (CI saw it: one entry waited
    // for its bucket and cost a second reconcile). An entry that is Ready proves the
    // cache has it; counting starts after it.
    let cold = operator.reconciles("KeyValueEntry").await;
    let retain = json!({"deletionPolicy": "Retain"});
    create(&s.entries, &entry("warm-up", "b", "warm-up", "v", retain)).await;
    wait_entry(&s.entries, "warm-up", true, None).await;
    // Its reconcile is counted once it returns, just after its status write.
    let before = wait_until("the warm-up entry's reconcile counted", WAIT, || async {
        let now = operator.reconciles("KeyValueEntry").await;
        (now > cold).then_some(now)
    })
    .await;
    (operator, before)
}

fn quiet_operator(s: &Setup) -> Operator {
    // No periodic resync inside a test: every reconcile counted is one an entry caused.
    Operator::start(
        &plane().kubeconfig,
        &s.namespace,
        &s.nats.url(),
        &["--resync-interval", "1h"],
    )
}

async fn finalizers(entries: &Api<KeyValueEntry>, name: &str) -> Vec<String> {
    let entry = entries.get(name).await.expect("get entry");
    entry.metadata.finalizers.unwrap_or_default()
}
