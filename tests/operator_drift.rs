//! `kvop run` against a real kube-apiserver and nats-server: changes made behind kvop's
//! back (foreign writes, deletes, purges, a bucket deleted or edited, a server rolled
//! back or restarted with its memory store lost) are restored, reported or left per
//! policy.

mod support;

use std::time::{Duration, Instant};

use kube::api::Api;
use kvop::api::KeyValueBucket;
use serde_json::json;
use support::k8s::{Operator, plane, wait_until};
use support::resources::*;
use support::{kv_entry, kv_get};

#[tokio::test]
async fn out_of_band_changes_are_restored_reported_or_left_per_update_policy() {
    let s = setup("drift").await;
    let operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({"history": 10}))).await;
    create(
        &s.entries,
        &entry("over", "b", "over", "declared", json!({})),
    )
    .await;
    create(
        &s.entries,
        &entry(
            "ifu",
            "b",
            "ifu",
            "declared",
            json!({"updatePolicy": "IfUnchanged"}),
        ),
    )
    .await;
    create(
        &s.entries,
        &entry(
            "co",
            "b",
            "co",
            "declared",
            json!({"updatePolicy": "CreateOnly"}),
        ),
    )
    .await;
    for name in ["over", "ifu", "co"] {
        wait_entry(&s.entries, name, true, None).await;
    }
    let store = s
        .nats
        .jetstream()
        .await
        .get_key_value("b")
        .await
        .expect("bucket");
    let started = Instant::now();
    for key in ["over", "ifu", "co"] {
        store
            .put(key, "theirs".into())
            .await
            .expect("foreign write");
    }
    // The live bucket view, not the 1-minute resync, must bring it back.
    wait_value(&s.nats, "b", "over", Some("declared")).await;
    let restored_after = started.elapsed();
    assert!(
        restored_after < Duration::from_secs(20),
        "restored by the view, long before the resync: {restored_after:?}"
    );
    eprintln!("drift restored after {restored_after:?}");
    let ifu = wait_entry(&s.entries, "ifu", false, Some("Conflict")).await;
    assert!(
        ifu.status
            .as_ref()
            .expect("status")
            .conditions
            .iter()
            .any(|c| c.message.contains("another client"))
    );
    assert_eq!(
        kv_get(&s.nats.jetstream().await, "b", "ifu")
            .await
            .as_deref(),
        Some(&b"theirs"[..])
    );
    wait_entry(&s.entries, "co", true, Some("CreateOnlyKeyExists")).await;
    assert_eq!(
        kv_get(&s.nats.jetstream().await, "b", "co")
            .await
            .as_deref(),
        Some(&b"theirs"[..])
    );
    // Someone else's delete and purge are drift too: restored and counted.
    store.delete("over").await.expect("foreign delete");
    wait_value(&s.nats, "b", "over", Some("declared")).await;
    store.purge("over").await.expect("foreign purge");
    wait_value(&s.nats, "b", "over", Some("declared")).await;
    wait_until("three drift corrections counted", WAIT, || async {
        operator
            .metrics()
            .await
            .contains("kvop_drift_corrections_total 3")
            .then_some(())
    })
    .await;
    let notes = wait_until("three DriftCorrected events", WAIT, || async {
        let notes = event_notes(&s.client, &s.namespace, "over", "DriftCorrected").await;
        (notes.len() == 3).then_some(notes)
    })
    .await;
    assert!(
        notes.iter().any(|note| note.contains("was changed by"))
            && notes
                .iter()
                .filter(|note| note.contains("was deleted or purged by"))
                .count()
                == 2,
        "each correction says what was undone: {notes:?}"
    );

    // IfUnchanged after a foreign write: not Ready and not Synced, and the condition
    // names the way out, which takes back that one revision only.
    let conditions = ifu.status.expect("status").conditions;
    let (synced, _, _) = condition_of(&conditions, "Synced").expect("Synced");
    assert!(!synced, "a conflict is not synced: {conditions:?}");
    let (_, _, message) = condition_of(&conditions, "Ready").expect("Ready");
    let foreign = kv_entry(&s.nats.jetstream().await, "b", "ifu")
        .await
        .expect("foreign value")
        .revision;
    let way_out = format!("kvop.dev/take-over={foreign}");
    assert!(message.contains(&way_out), "{message}");
    merge(
        &s.entries,
        "ifu",
        json!({"metadata": {"annotations": {"kvop.dev/take-over": foreign.to_string()}}}),
    )
    .await
    .expect("annotate");
    wait_value(&s.nats, "b", "ifu", Some("declared")).await;
    wait_entry(&s.entries, "ifu", true, Some("Synced")).await;
    store
        .put("ifu", "theirs again".into())
        .await
        .expect("another foreign write");
    wait_entry(&s.entries, "ifu", false, Some("Conflict")).await;
    assert_eq!(
        kv_get(&s.nats.jetstream().await, "b", "ifu")
            .await
            .as_deref(),
        Some(&b"theirs again"[..]),
        "the annotation named the old revision: the new foreign write is left"
    );
}

#[tokio::test]
async fn a_bucket_deleted_or_reconfigured_out_of_band_is_repaired_at_once() {
    let s = setup("bucket-drift").await;
    // No periodic refresh or resync within the test: only the stream advisories the
    // bucket view follows can trigger the repair.
    let _operator = Operator::start(
        &plane().kubeconfig,
        &s.namespace,
        &s.nats.url(),
        &["--status-interval", "1h", "--resync-interval", "1h"],
    );
    create(
        &s.buckets,
        &bucket("b", json!({"history": 4, "description": "declared"})),
    )
    .await;
    create(&s.entries, &entry("e", "b", "k", "v", json!({}))).await;
    wait_entry(&s.entries, "e", true, None).await;
    let js = s.nats.jetstream().await;
    // Someone edits the configuration behind kvop's back.
    let mut config = support::stream_config(&js, "b").await;
    config.max_messages_per_subject = 1;
    config.description = Some("edited".into());
    js.update_stream(config).await.expect("out-of-band edit");
    wait_until("the configuration restored", WAIT, || async {
        let config = support::stream_config(&js, "b").await;
        (config.max_messages_per_subject == 4 && config.description.as_deref() == Some("declared"))
            .then_some(())
    })
    .await;
    // A second edit, of another field: its repair is an Event of its own, not a repeat
    // of the first one's text.
    let mut config = support::stream_config(&js, "b").await;
    config.max_age = Duration::from_secs(3600);
    js.update_stream(config)
        .await
        .expect("second out-of-band edit");
    let updates = wait_until("two Updated events with their own text", WAIT, || async {
        let notes = event_notes(&s.client, &s.namespace, "b", "Updated").await;
        (notes.len() >= 2).then_some(notes)
    })
    .await;
    assert!(
        updates[0].contains("description")
            && updates.last().is_some_and(|note| note.contains("ttl")),
        "{updates:?}"
    );
    // Someone deletes the whole bucket.
    js.delete_key_value("b").await.expect("out-of-band delete");
    wait_value(&s.nats, "b", "k", Some("v")).await;
    wait_entry(&s.entries, "e", true, None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in ["b", "e"] {
        let alarms = event_notes(&s.client, &s.namespace, name, "ServerWentBackwards").await;
        assert!(
            alarms.is_empty(),
            "a bucket created again is no rollback of {name}: {alarms:?}"
        );
    }
}

#[tokio::test]
async fn a_server_rolled_back_to_an_older_store_is_detected_and_re_applied() {
    let mut s = setup("rollback").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({"history": 3}))).await;
    create(&s.entries, &entry("one", "b", "one", "1", json!({}))).await;
    create(&s.entries, &entry("two", "b", "two", "old", json!({}))).await;
    wait_entry(&s.entries, "one", true, None).await;
    wait_entry(&s.entries, "two", true, None).await;
    s.nats.stop();
    let snapshot = s.nats.snapshot();
    s.nats.restart();
    // Writes the rollback will lose: an update and a new key.
    merge(&s.entries, "two", json!({"spec": {"value": "new"}}))
        .await
        .expect("update");
    create(&s.entries, &entry("three", "b", "three", "3", json!({}))).await;
    wait_value(&s.nats, "b", "two", Some("new")).await;
    wait_value(&s.nats, "b", "three", Some("3")).await;
    wait_bucket_revision_at_least(&s.buckets, "b", 4).await;

    s.nats.stop();
    s.nats.restore(&snapshot);
    s.nats.restart();
    // The running operator notices and writes the lost changes again (how soon races
    // this test: the value itself may already be back when it looks).
    wait_value(&s.nats, "b", "two", Some("new")).await;
    wait_value(&s.nats, "b", "three", Some("3")).await;
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(s.client.clone(), &s.namespace);
    wait_until(
        // Whichever sees it first reports it: the bucket (its view or status is ahead of
        // the stream) or an entry (its recorded revision is ahead of its key).
        "a ServerWentBackwards warning on the bucket or an entry",
        WAIT,
        || async {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .into_iter()
                .find(|event| {
                    event.reason.as_deref() == Some("ServerWentBackwards")
                        && event.type_.as_deref() == Some("Warning")
                        && matches!(
                            event.involved_object.name.as_deref(),
                            Some("b" | "two" | "three")
                        )
                })
                .map(|_| ())
        },
    )
    .await;
}

async fn wait_bucket_revision_at_least(buckets: &Api<KeyValueBucket>, name: &str, revision: i64) {
    wait_until(
        &format!("bucket {name} status at revision {revision}"),
        WAIT,
        || async {
            let bucket = buckets.get(name).await.ok()?;
            (bucket.status?.last_revision? >= revision).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_memory_bucket_lost_by_a_server_restart_is_recreated_with_its_entries() {
    let mut s = setup("memory").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(
        &s.buckets,
        &bucket("volatile", json!({"storage": "memory"})),
    )
    .await;
    create(&s.entries, &entry("a", "volatile", "a", "1", json!({}))).await;
    create(&s.entries, &entry("b", "volatile", "b", "2", json!({}))).await;
    wait_entry(&s.entries, "a", true, None).await;
    wait_entry(&s.entries, "b", true, None).await;
    s.nats.restart();
    // The restart loses the memory bucket; the operator, still running, notices (status
    // refresh and the bucket view) and re-creates the bucket and both keys.
    wait_value(&s.nats, "volatile", "a", Some("1")).await;
    wait_value(&s.nats, "volatile", "b", Some("2")).await;
}

#[tokio::test]
async fn a_value_nats_already_holds_at_the_bucket_limit_is_not_refused_for_kvops_headers() {
    let s = setup("atlimit").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("sized", json!({"maxValueSize": 200}))).await;
    wait_bucket(&s.buckets, "sized", true, None).await;
    // Another client filled the key to the limit; kvop's headers would not fit beside it.
    let full = "x".repeat(200);
    let store = s
        .nats
        .jetstream()
        .await
        .get_key_value("sized")
        .await
        .expect("bucket");
    store.put("full", full.clone().into()).await.expect("put");

    // Declared as it is: nothing to write, so nothing to refuse.
    create(
        &s.entries,
        &entry("full", "sized", "full", &full, json!({})),
    )
    .await;
    wait_entry(&s.entries, "full", true, None).await;
    // A value that would be written over the limit is still refused, before any write.
    let other = "y".repeat(200);
    create(
        &s.entries,
        &entry("other", "sized", "other", &other, json!({})),
    )
    .await;
    let refused = wait_entry(&s.entries, "other", false, Some("InvalidSpec")).await;
    let message = refused
        .status
        .and_then(|status| {
            status
                .conditions
                .into_iter()
                .find(|condition| condition.type_ == "Ready")
        })
        .map(|condition| condition.message)
        .unwrap_or_default();
    assert!(message.contains("over the maxValueSize"), "{message}");
    assert_eq!(
        kv_get(&s.nats.jetstream().await, "sized", "other").await,
        None
    );
}
