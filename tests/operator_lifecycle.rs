//! `kvop run` against a real kube-apiserver (tests/env) and a real nats-server, the
//! operator running as a process: the life of buckets and entries from apply to delete,
//! what the apiserver refuses, and status written only when it changes.

mod support;

use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kvop::api::{KeyValueBucket, KeyValueEntry};
use serde_json::json;
use support::k8s::{Operator, admin, namespace, plane, wait_until};
use support::resources::*;
use support::{kv_entry, kv_get};

#[tokio::test]
async fn lifecycle_from_apply_to_ready_with_statistics_and_spec_updates() {
    let s = setup("lifecycle").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(
        &s.buckets,
        &bucket("sessions", json!({"history": 3, "ttl": "1h"})),
    )
    .await;
    create(
        &s.entries,
        &entry("alice", "sessions", "user.alice", "a1", json!({})),
    )
    .await;
    create(
        &s.entries,
        &entry("bob", "sessions", "user.bob", "b1", json!({})),
    )
    .await;
    wait_entry(&s.entries, "alice", true, None).await;
    wait_entry(&s.entries, "bob", true, None).await;
    assert_eq!(
        kv_get(&s.nats.jetstream().await, "sessions", "user.alice")
            .await
            .as_deref(),
        Some(&b"a1"[..])
    );
    let ready = wait_until("bucket statistics", WAIT, || async {
        let bucket = s.buckets.get("sessions").await.ok()?;
        let status = bucket.status?;
        (status.keys == Some(2)).then_some(status)
    })
    .await;
    assert_eq!(
        (
            ready.bucket.as_deref(),
            ready.values,
            ready.history,
            ready.ttl.as_deref()
        ),
        (Some("sessions"), Some(2), Some(3), Some("1h"))
    );
    assert_eq!(
        (
            ready.storage.as_deref(),
            ready.backing_store.as_deref(),
            ready.replicas
        ),
        (Some("file"), Some("JetStream"), Some(1))
    );
    let alice = s
        .entries
        .get("alice")
        .await
        .expect("alice")
        .status
        .expect("status");
    assert!(
        alice
            .value_digest
            .as_deref()
            .is_some_and(|digest| digest.starts_with("sha256:"))
    );

    merge(&s.entries, "alice", json!({"spec": {"value": "a2"}}))
        .await
        .expect("update value");
    wait_value(&s.nats, "sessions", "user.alice", Some("a2")).await;
    merge(&s.buckets, "sessions", json!({"spec": {"history": 5}}))
        .await
        .expect("update bucket");
    wait_until("history 5 in NATS", WAIT, || async {
        let js = s.nats.jetstream().await;
        (support::stream_config(&js, "sessions")
            .await
            .max_messages_per_subject
            == 5)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn deletion_follows_each_policy() {
    let s = setup("deletion").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("kept", json!({"history": 5}))).await;
    create(
        &s.buckets,
        &bucket("dropped", json!({"deletionPolicy": "Delete"})),
    )
    .await;
    // Buckets that existed before their resources: kvop adopts them, and deletes one only
    // when told to.
    let js = s.nats.jetstream().await;
    for name in ["adopted", "adopted-and-released"] {
        js.create_key_value(async_nats::jetstream::kv::Config {
            bucket: name.into(),
            ..Default::default()
        })
        .await
        .expect("bucket made by someone else");
    }
    create(
        &s.buckets,
        &bucket("adopted", json!({"deletionPolicy": "Delete"})),
    )
    .await;
    let mut released = bucket("adopted-and-released", json!({"deletionPolicy": "Delete"}));
    released.metadata.annotations =
        Some([("kvop.dev/delete-adopted".to_string(), "true".to_string())].into());
    create(&s.buckets, &released).await;
    for name in ["adopted", "adopted-and-released"] {
        wait_bucket(&s.buckets, name, true, None).await;
    }
    create(&s.entries, &entry("del", "kept", "del", "v", json!({}))).await;
    create(
        &s.entries,
        &entry(
            "pur",
            "kept",
            "pur",
            "v",
            json!({"deletionPolicy": "Purge"}),
        ),
    )
    .await;
    create(
        &s.entries,
        &entry(
            "ret",
            "kept",
            "ret",
            "v",
            json!({"deletionPolicy": "Retain"}),
        ),
    )
    .await;
    for name in ["del", "pur", "ret"] {
        wait_entry(&s.entries, name, true, None).await;
    }
    wait_bucket(&s.buckets, "dropped", true, None).await;
    for name in ["del", "pur", "ret"] {
        s.entries
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete entry");
    }
    for name in ["del", "pur", "ret"] {
        wait_until(
            &format!("entry {name} gone (finalizer removed)"),
            WAIT,
            || async { s.entries.get_opt(name).await.ok()?.is_none().then_some(()) },
        )
        .await;
    }
    let js = s.nats.jetstream().await;
    use async_nats::jetstream::kv::Operation;
    assert_eq!(
        kv_entry(&js, "kept", "del").await.map(|e| e.operation),
        Some(Operation::Delete),
        "Delete writes a delete marker"
    );
    assert_eq!(
        kv_entry(&js, "kept", "pur").await.map(|e| e.operation),
        Some(Operation::Purge),
        "Purge leaves one purge marker"
    );
    assert_eq!(
        kv_get(&js, "kept", "ret").await.as_deref(),
        Some(&b"v"[..]),
        "Retain leaves the value"
    );
    let history = js
        .get_key_value("kept")
        .await
        .expect("bucket")
        .history("del")
        .await
        .expect("history");
    use futures::StreamExt;
    assert_eq!(history.count().await, 2, "Delete keeps history");

    s.buckets
        .delete("kept", &DeleteParams::default())
        .await
        .expect("delete bucket");
    for name in ["dropped", "adopted", "adopted-and-released"] {
        s.buckets
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete bucket");
    }
    for name in ["kept", "dropped", "adopted", "adopted-and-released"] {
        wait_until(&format!("bucket {name} gone"), WAIT, || async {
            s.buckets.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
    }
    assert!(
        js.get_stream("KV_kept").await.is_ok(),
        "Retain keeps the bucket"
    );
    assert!(
        js.get_stream("KV_dropped").await.is_err(),
        "Delete deletes the bucket"
    );
    assert!(
        js.get_stream("KV_adopted").await.is_ok(),
        "Delete leaves a bucket kvop did not create"
    );
    let retained = event_notes(&s.client, &s.namespace, "adopted", "BucketRetained").await;
    assert!(
        retained
            .iter()
            .any(|note| note.contains("kvop.dev/delete-adopted")),
        "the warning says how to delete it too: {retained:?}"
    );
    assert!(
        js.get_stream("KV_adopted-and-released").await.is_err(),
        "kvop.dev/delete-adopted=true lets Delete delete an adopted bucket"
    );
}

/// Regression (kube-openapi#633): with `binaryValue` as `format: byte`, the CEL one-of
/// rule on `spec` made the apiserver decode it as URL-safe base64 and refuse any value
/// holding `+` or `/`, i.e. nearly every real one. Standard base64 with `+`, `/` and
/// the line breaks of `base64`'s wrapping passes admission (created and server-side
/// applied, as `kubectl apply` does) and lands in NATS as the bytes it encodes; what
/// kvop refuses, the apiserver refuses.
#[tokio::test]
async fn standard_base64_with_plus_slash_and_line_breaks_passes_admission_and_lands_in_nats() {
    use base64::Engine;
    let s = setup("base64").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("blobs", json!({}))).await;
    let long: Vec<u8> = (0..=255u8).rev().collect();
    let wrapped = base64::engine::general_purpose::STANDARD
        .encode(&long)
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\n", String::from_utf8_lossy(line)))
        .collect::<String>();
    let cases: [(&str, String, Vec<u8>); 4] = [
        ("slash", "AAEC/w==".into(), vec![0, 1, 2, 0xff]),
        ("plus", "+/+/".into(), vec![0xfb, 0xff, 0xbf]),
        ("both", "++//+w==".into(), vec![0xfb, 0xef, 0xff, 0xfb]),
        ("wrapped", wrapped, long),
    ];
    for (name, encoded, _) in &cases {
        let mut value = entry(name, "blobs", name, "", json!({"binaryValue": encoded}));
        value.spec.value = None;
        assert!(
            kvop::spec::entry_value(&value.spec).is_ok(),
            "kvop accepts {name}"
        );
        if *name == "plus" {
            // What `kubectl apply --server-side` sends.
            s.entries
                .patch(
                    name,
                    &PatchParams::apply("kubectl").force(),
                    &Patch::Apply(&value),
                )
                .await
                .unwrap_or_else(|error| panic!("{name}: {error}"));
        } else {
            s.entries
                .create(&PostParams::default(), &value)
                .await
                .unwrap_or_else(|error| panic!("{name}: {error}"));
        }
    }
    for (name, _, raw) in &cases {
        wait_entry(&s.entries, name, true, None).await;
        assert_eq!(
            kv_get(&s.nats.jetstream().await, "blobs", name)
                .await
                .as_deref(),
            Some(&raw[..]),
            "{name}"
        );
    }
    // Not base64, or not canonical (`AB==` leaves a set bit unused): refused by both.
    for (name, encoded) in [
        ("bang", "AA!A"),
        ("dash", "AA-A"),
        ("loose", "AB=="),
        ("short", "AAA"),
    ] {
        let mut value = entry(name, "blobs", name, "", json!({"binaryValue": encoded}));
        value.spec.value = None;
        assert!(
            kvop::spec::entry_value(&value.spec).is_err(),
            "kvop refuses {name}"
        );
        let message = rejected(s.entries.create(&PostParams::default(), &value).await, name);
        assert!(message.contains("spec.binaryValue"), "{name}: {message}");
    }
}

/// Asserts the apiserver refused the request as invalid (422); returns its message.
fn rejected<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{what}: {status:?}");
            status.message
        }
        other => panic!("{what}: expected a 422 rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn the_apiserver_rejects_invalid_specs_and_immutable_changes() {
    let client = admin().await;
    let ns = namespace(&client, "validation").await;
    let buckets: Api<KeyValueBucket> = Api::namespaced(client.clone(), &ns);
    let entries: Api<KeyValueEntry> = Api::namespaced(client.clone(), &ns);
    rejected(
        buckets
            .create(
                &PostParams::default(),
                &bucket("b", json!({"history": 100})),
            )
            .await,
        "history 100",
    );
    rejected(
        buckets
            .create(
                &PostParams::default(),
                &bucket("b", json!({"bucket": "a.b"})),
            )
            .await,
        "bucket name with a dot",
    );
    rejected(
        buckets
            .create(&PostParams::default(), &bucket("b", json!({"ttl": "10x"})))
            .await,
        "bad duration",
    );
    // Value sources: the apiserver says what kvop says, naming the fields, also for the
    // untyped jsonValue.
    let kvop_says = |candidate: &KeyValueEntry| match kvop::spec::entry_value(&candidate.spec) {
        Err(problem) => problem.message,
        Ok(_) => panic!("kvop accepts {:?}", candidate.spec),
    };
    let two = entry("two", "b", "k", "v", json!({"jsonValue": {"a": 1}}));
    let message = rejected(
        entries.create(&PostParams::default(), &two).await,
        "two value sources",
    );
    assert!(
        message.ends_with("spec: Invalid value: \"object\": exactly one of spec.value, spec.binaryValue, spec.jsonValue, spec.valueFrom must be set, found spec.value, spec.jsonValue"),
        "{message}"
    );
    assert!(message.ends_with(&kvop_says(&two)), "{message}");
    let text_and_bytes = entry("bytes", "b", "k", "v", json!({"binaryValue": "dg=="}));
    let message = rejected(
        entries
            .create(&PostParams::default(), &text_and_bytes)
            .await,
        "value and binaryValue",
    );
    assert!(message.ends_with(&kvop_says(&text_and_bytes)), "{message}");
    assert!(
        message.contains("found spec.value, spec.binaryValue"),
        "{message}"
    );
    rejected(
        entries
            .create(
                &PostParams::default(),
                &entry("dots", "b", "a..b", "v", json!({})),
            )
            .await,
        "key with ..",
    );
    let mut none = entry("none", "b", "k", "v", json!({}));
    none.spec.value = None;
    let message = rejected(
        entries.create(&PostParams::default(), &none).await,
        "no value source",
    );
    assert!(
        message.ends_with("exactly one of spec.value, spec.binaryValue, spec.jsonValue, spec.valueFrom must be set, found none"),
        "{message}"
    );
    assert!(message.ends_with(&kvop_says(&none)), "{message}");

    // Durations: kvop judges each first; the apiserver must refuse what kvop refuses,
    // with kvop's message, and accept every form kvop accepts (CEL's duration() has no
    // `d` and rounds differently, so these include days and the rounding edges).
    for (index, (field, text, accepted)) in [
        ("ttl", "10ms", false),
        ("ttl", "0s", false),
        ("ttl", "0d", false),
        ("ttl", "50ms40ms", false),
        ("ttl", "0.000001d", false),
        ("ttl", "99.9999994ms", false),
        ("ttl", "106752d", false),
        ("ttl", "99999999999999999999d", false),
        ("ttl", "100ms", true),
        ("ttl", "0.1s", true),
        ("ttl", "50ms50ms", true),
        ("ttl", "99.9999999ms", true),
        ("ttl", "0.0000012d", true),
        ("ttl", "90s", true),
        ("ttl", "1h30m", true),
        ("ttl", "1.5h", true),
        ("ttl", "1d", true),
        ("ttl", "30d", true),
        ("ttl", "2d", true),
        ("ttl", "1d2h3m4s5ms", true),
        ("ttl", "106751d", true),
        ("limitMarkerTtl", "999ms", false),
        ("limitMarkerTtl", "0.5s", false),
        ("limitMarkerTtl", "1s", true),
        ("limitMarkerTtl", "1000ms", true),
        ("limitMarkerTtl", "1d", true),
    ]
    .into_iter()
    .enumerate()
    {
        let what = format!("{field}: {text}");
        let candidate = bucket(&format!("duration-{index}"), json!({ field: text }));
        let verdict = kvop::spec::bucket_config(&candidate.spec);
        assert_eq!(
            verdict.is_ok(),
            accepted,
            "kvop's verdict on {what}: {verdict:?}"
        );
        let created = buckets.create(&PostParams::default(), &candidate).await;
        match verdict {
            Ok(_) => {
                created.unwrap_or_else(|error| {
                    panic!("{what}: kvop accepts it, the apiserver refused: {error}")
                });
            }
            Err(problems) => {
                let message = rejected(created, &what);
                let expected = format!(
                    "spec.{field}: Invalid value: \"string\": {}",
                    problems[0].message
                );
                assert!(
                    message.ends_with(&expected),
                    "{what}: expected {expected:?}, got {message:?}"
                );
            }
        }
    }

    buckets
        .create(&PostParams::default(), &bucket("b", json!({})))
        .await
        .expect("valid bucket");
    rejected(
        merge(&buckets, "b", json!({"spec": {"storage": "memory"}})).await,
        "storage change",
    );
    rejected(
        merge(&buckets, "b", json!({"spec": {"bucket": "other"}})).await,
        "bucket name change",
    );
    entries
        .create(
            &PostParams::default(),
            &entry("e", "b", "k", "v", json!({})),
        )
        .await
        .expect("valid entry");
    rejected(
        merge(&entries, "e", json!({"spec": {"key": "other"}})).await,
        "key change",
    );
    let mut defaulted = entry("defaulted", "b", "k", "v", json!({}));
    defaulted.spec.key = None;
    entries
        .create(&PostParams::default(), &defaulted)
        .await
        .expect("key from metadata.name");
    rejected(
        merge(&entries, "defaulted", json!({"spec": {"key": "other"}})).await,
        "setting a key that differs from the defaulted one",
    );
    merge(&entries, "defaulted", json!({"spec": {"key": "defaulted"}}))
        .await
        .expect("spelling out the defaulted key is no change");
    merge(&buckets, "b", json!({"spec": {"limitMarkerTtl": "5s"}}))
        .await
        .expect("limit markers can be turned on");
    rejected(
        merge(&buckets, "b", json!({"spec": {"limitMarkerTtl": null}})).await,
        "removing limitMarkerTtl",
    );
    // Per-message TTL: limit markers need it, with kvop's message; once declared on it
    // may be left out (the stream keeps it) but never declared off.
    let off = bucket("off", json!({"allowMsgTtl": false, "limitMarkerTtl": "5s"}));
    let kvop_message = kvop::spec::bucket_config(&off.spec).expect_err("kvop refuses it")[0]
        .message
        .clone();
    let message = rejected(
        buckets.create(&PostParams::default(), &off).await,
        "allowMsgTtl false with limit markers",
    );
    assert!(message.ends_with(&kvop_message), "{message}");
    buckets
        .create(
            &PostParams::default(),
            &bucket("ttl", json!({"allowMsgTtl": true})),
        )
        .await
        .expect("per-message TTL declared on");
    let message = rejected(
        merge(&buckets, "ttl", json!({"spec": {"allowMsgTtl": false}})).await,
        "turning allowMsgTtl off",
    );
    assert!(
        message.contains("spec.allowMsgTtl cannot be turned off once on"),
        "{message}"
    );
    merge(&buckets, "ttl", json!({"spec": {"allowMsgTtl": null}}))
        .await
        .expect("leaving allowMsgTtl out keeps the stream as it is");
    entries
        .create(
            &PostParams::default(),
            &entry(
                "j",
                "b",
                "j",
                "v",
                json!({"value": null, "jsonValue": {"x": [1, "y"]}}),
            ),
        )
        .await
        .expect("jsonValue accepted");
    for (index, value) in [
        json!([1, 2]),
        json!(5),
        json!("text"),
        json!(false),
        json!({}),
    ]
    .into_iter()
    .enumerate()
    {
        entries
            .create(
                &PostParams::default(),
                &entry(
                    &format!("j{index}"),
                    "b",
                    &format!("j{index}"),
                    "v",
                    json!({"value": null, "jsonValue": value}),
                ),
            )
            .await
            .unwrap_or_else(|error| panic!("jsonValue {value} refused: {error}"));
    }
}

#[tokio::test]
async fn status_is_written_only_when_it_changes() {
    let s = setup("quiet").await;
    let operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({}))).await;
    create(&s.entries, &entry("e", "b", "k", "v", json!({}))).await;
    wait_entry(&s.entries, "e", true, None).await;
    wait_until("bucket statistics settled", WAIT, || async {
        (s.buckets.get("b").await.ok()?.status?.keys == Some(1)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bucket_version = s
        .buckets
        .get("b")
        .await
        .expect("bucket")
        .metadata
        .resource_version;
    let entry_version = s
        .entries
        .get("e")
        .await
        .expect("entry")
        .metadata
        .resource_version;
    // Several status intervals (1 s) pass: the bucket is reconciled, nothing changes.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        s.buckets
            .get("b")
            .await
            .expect("bucket")
            .metadata
            .resource_version,
        bucket_version,
        "bucket status rewritten without a change"
    );
    assert_eq!(
        s.entries
            .get("e")
            .await
            .expect("entry")
            .metadata
            .resource_version,
        entry_version,
        "entry status rewritten without a change"
    );

    // Keys nobody declared change the bucket's statistics, and its status with them;
    // the entry reads nothing of that, so it is not reconciled again.
    let entry_reconciles = operator.reconciles("KeyValueEntry").await;
    let store = s
        .nats
        .jetstream()
        .await
        .get_key_value("b")
        .await
        .expect("bucket");
    for i in 0..3 {
        store
            .put(format!("undeclared-{i}"), "x".into())
            .await
            .expect("put");
    }
    wait_until("bucket statistics counted the new keys", WAIT, || async {
        (s.buckets.get("b").await.ok()?.status?.keys == Some(4)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        operator.reconciles("KeyValueEntry").await,
        entry_reconciles,
        "a statistics refresh re-queued the entry"
    );
}

#[tokio::test]
async fn an_entry_waiting_on_its_bucket_spec_goes_on_when_the_bucket_changes() {
    let s = setup("waits").await;
    // Only a bucket change can move the entry on: no resync within the test.
    let _operator = Operator::start(
        &plane().kubeconfig,
        &s.namespace,
        &s.nats.url(),
        &["--resync-interval", "1h"],
    );
    create(&s.buckets, &bucket("b", json!({"maxValueSize": 256}))).await;
    let big = "x".repeat(1024);
    create(&s.entries, &entry("e", "b", "k", &big, json!({}))).await;
    let waiting = wait_entry(&s.entries, "e", false, Some("InvalidSpec")).await;
    assert!(
        ready_of(&waiting.status.expect("status").conditions).is_some(),
        "the entry says why it waits"
    );
    s.buckets
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"maxValueSize": 4096}})),
        )
        .await
        .expect("raise maxValueSize");
    wait_entry(&s.entries, "e", true, None).await;
    wait_value(&s.nats, "b", "k", Some(&big)).await;
}
