//! `kvop run` against a real kube-apiserver and nats-server: NATS outages, an operator
//! killed mid-finalization and a set deleted before its finalizer went on are ridden
//! out, reported and finished after.

mod support;

use std::time::Duration;

use kube::api::{Api, DeleteParams};
use kvop::api::KeyValueEntrySet;
use serde_json::json;
use support::k8s::{Operator, plane, wait_until};
use support::kv_entry;
use support::resources::*;

#[tokio::test]
async fn a_nats_outage_is_reported_and_everything_converges_after() {
    let mut s = setup("outage").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({}))).await;
    create(&s.entries, &entry("one", "b", "one", "v1", json!({}))).await;
    wait_entry(&s.entries, "one", true, None).await;
    let stopped = std::time::Instant::now();
    s.nats.stop();
    // Nothing else changes: the lost connection alone must show, at once, on the bucket
    // and on the entry (which reads the bucket's live view, not NATS).
    let down = wait_entry(&s.entries, "one", false, Some("NatsUnavailable")).await;
    let reported_after = stopped.elapsed();
    let (_, _, message) =
        condition_of(&down.status.expect("status").conditions, "Ready").expect("Ready");
    assert!(message.contains("not connected to NATS"), "{message}");
    assert!(
        reported_after < Duration::from_secs(5),
        "reported when the connection dropped, not after a request timed out: {reported_after:?}"
    );
    wait_bucket(&s.buckets, "b", false, Some("NatsUnavailable")).await;
    merge(&s.entries, "one", json!({"spec": {"value": "v2"}}))
        .await
        .expect("change during outage");
    create(&s.entries, &entry("two", "b", "two", "new", json!({}))).await;
    s.nats.restart();
    wait_value(&s.nats, "b", "one", Some("v2")).await;
    wait_value(&s.nats, "b", "two", Some("new")).await;
    wait_entry(&s.entries, "one", true, None).await;
    wait_entry(&s.entries, "two", true, None).await;
}

#[tokio::test]
async fn deleting_while_nats_is_down_keeps_the_finalizer_with_a_clear_condition_then_completes() {
    let mut s = setup("blocked-delete").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({"history": 3}))).await;
    create(&s.entries, &entry("e", "b", "k", "v", json!({}))).await;
    wait_entry(&s.entries, "e", true, None).await;
    wait_finalized(&s.entries, "e").await;
    s.nats.stop();
    s.entries
        .delete("e", &DeleteParams::default())
        .await
        .expect("delete");
    let blocked = wait_entry(&s.entries, "e", false, Some("DeletionBlocked")).await;
    assert!(
        blocked
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"kvop.dev/cleanup".to_string()),
        "the finalizer stays"
    );
    // Said in NATS terms, not as the client's internal timeout (issue 27).
    let (_, _, message) =
        condition_of(&blocked.status.expect("status").conditions, "Ready").expect("Ready");
    assert!(
        message.contains("the finalizer stays") && !message.contains("deadline has elapsed"),
        "{message}"
    );
    s.nats.restart();
    wait_until("the entry is gone after NATS is back", WAIT, || async {
        s.entries.get_opt("e").await.ok()?.is_none().then_some(())
    })
    .await;
    use async_nats::jetstream::kv::Operation;
    assert_eq!(
        kv_entry(&s.nats.jetstream().await, "b", "k")
            .await
            .map(|entry| entry.operation),
        Some(Operation::Delete),
        "the key was deleted, not forgotten"
    );
}

#[tokio::test]
async fn an_operator_killed_during_finalization_finishes_it_after_a_restart() {
    let s = setup("kill-finalizing").await;
    let mut operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("kept", json!({"history": 3}))).await;
    create(
        &s.buckets,
        &bucket("dropped", json!({"deletionPolicy": "Delete"})),
    )
    .await;
    create(&s.entries, &entry("e", "kept", "k", "v", json!({}))).await;
    wait_entry(&s.entries, "e", true, None).await;
    wait_bucket(&s.buckets, "dropped", true, None).await;
    wait_finalized(&s.entries, "e").await;
    wait_finalized(&s.buckets, "dropped").await;
    // NATS stalls, so both finalizers are mid-flight when the operator dies.
    let signal = |name: &str| signal_nats(&s, name);
    signal("-STOP");
    s.entries
        .delete("e", &DeleteParams::default())
        .await
        .expect("delete entry");
    s.buckets
        .delete("dropped", &DeleteParams::default())
        .await
        .expect("delete bucket");
    tokio::time::sleep(Duration::from_secs(2)).await;
    operator.kill();
    signal("-CONT");
    for finalizers in [
        s.entries.get("e").await.expect("entry").metadata.finalizers,
        s.buckets
            .get("dropped")
            .await
            .expect("bucket")
            .metadata
            .finalizers,
    ] {
        assert_eq!(
            finalizers.unwrap_or_default(),
            vec!["kvop.dev/cleanup".to_string()],
            "the finalizer outlives the operator"
        );
    }

    let _restarted = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    wait_until("both objects gone", WAIT, || async {
        let entry = s.entries.get_opt("e").await.ok()?;
        let bucket = s.buckets.get_opt("dropped").await.ok()?;
        (entry.is_none() && bucket.is_none()).then_some(())
    })
    .await;
    let js = s.nats.jetstream().await;
    use async_nats::jetstream::kv::Operation;
    assert_eq!(
        kv_entry(&js, "kept", "k")
            .await
            .map(|entry| entry.operation),
        Some(Operation::Delete),
        "the key was deleted, once"
    );
    assert!(
        js.get_stream("KV_dropped").await.is_err(),
        "the bucket was deleted"
    );
}

/// kvop finalizes a new set right after its first apply (finalizing.rs, `FirstApply`).
/// A set deleted while that apply is held up (NATS stopped) is gone before it could
/// carry the finalizer: the reconcile that wrote its key deletes it again. (Entries and
/// buckets are finalized before their first apply: one deleted first writes nothing.)
#[tokio::test]
async fn a_set_deleted_before_its_finalizer_went_on_leaves_no_key_behind() {
    let s = setup("unfinalized").await;
    let sets: Api<KeyValueEntrySet> = Api::namespaced(s.client.clone(), &s.namespace);
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({"history": 3}))).await;
    create(&s.entries, &entry("warm", "b", "warm", "v", json!({}))).await;
    wait_entry(&s.entries, "warm", true, None).await;
    let signal = |name: &str| signal_nats(&s, name);
    signal("-STOP");
    let set: KeyValueEntrySet = serde_json::from_value(json!({
        "apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntrySet",
        "metadata": {"name": "s"},
        "spec": {"bucketRef": {"name": "b"}, "keyPrefix": "s/", "entries": [{"key": "k", "value": "v"}]},
    }))
    .expect("set");
    create(&sets, &set).await;
    // Its reconcile now waits on NATS (REQUEST_TIMEOUT is 10 s), its key sent.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let finalizers = sets.get("s").await.expect("set").metadata.finalizers;
    assert!(
        finalizers.unwrap_or_default().is_empty(),
        "not finalized before its first apply"
    );
    sets.delete("s", &DeleteParams::default())
        .await
        .expect("delete set");
    assert!(
        sets.get_opt("s").await.expect("get").is_none(),
        "gone at once"
    );
    signal("-CONT");
    use async_nats::jetstream::kv::Operation;
    let js = s.nats.jetstream().await;
    wait_until("key s/k written, then deleted", WAIT, || async {
        let entry = kv_entry(&js, "b", "s/k").await?;
        (entry.operation != Operation::Put).then_some(())
    })
    .await;
    // Written once and deleted once.
    let store = js.get_key_value("b").await.expect("bucket");
    let mut history = store.history("s/k").await.expect("history");
    let mut operations = Vec::new();
    while let Some(entry) = futures::StreamExt::next(&mut history).await {
        operations.push(entry.expect("history entry").operation);
    }
    assert_eq!(operations, [Operation::Put, Operation::Delete]);
}

/// Sends `signal` (`-STOP`, `-CONT`) to the test's nats-server.
fn signal_nats(s: &Setup, signal: &str) {
    let pid = s.nats.pid().expect("nats pid").to_string();
    let status = std::process::Command::new("kill")
        .args([signal, pid.as_str()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}
