//! `kvop run` against a real kube-apiserver (tests/env) and a real nats-server, the
//! operator running as a process. Values are checked with async-nats' own KV API.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kvop::api::{KeyValueBucket, KeyValueEntry};
use serde_json::{Value, json};
use support::k8s::{Operator, admin, namespace, plane, wait_until};
use support::{NatsServer, kv_entry, kv_get};

const WAIT: Duration = Duration::from_secs(30);

fn bucket(name: &str, spec: Value) -> KeyValueBucket {
    serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueBucket", "metadata": {"name": name}, "spec": spec})).expect("bucket")
}

fn entry(name: &str, bucket: &str, key: &str, value: &str, extra: Value) -> KeyValueEntry {
    let mut spec = json!({"bucketRef": {"name": bucket}, "key": key, "value": value});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntry", "metadata": {"name": name}, "spec": spec})).expect("entry")
}

/// The `Ready` condition's (status, reason), once the object has one.
fn ready_of(conditions: &[kvop::api::Condition]) -> Option<(bool, String)> {
    conditions
        .iter()
        .find(|condition| condition.type_ == "Ready")
        .map(|condition| {
            (
                condition.status == kvop::api::ConditionStatus::True,
                condition.reason.clone(),
            )
        })
}

async fn wait_bucket(
    api: &Api<KeyValueBucket>,
    name: &str,
    ready: bool,
    reason: Option<&str>,
) -> KeyValueBucket {
    wait_until(
        &format!("bucket {name} ready={ready} {reason:?}"),
        WAIT,
        || async {
            let bucket = api.get(name).await.ok()?;
            let (is_ready, actual) = ready_of(&bucket.status.as_ref()?.conditions)?;
            (is_ready == ready && reason.is_none_or(|reason| reason == actual)).then_some(bucket)
        },
    )
    .await
}

async fn wait_entry(
    api: &Api<KeyValueEntry>,
    name: &str,
    ready: bool,
    reason: Option<&str>,
) -> KeyValueEntry {
    wait_until(
        &format!("entry {name} ready={ready} {reason:?}"),
        WAIT,
        || async {
            let entry = api.get(name).await.ok()?;
            let (is_ready, actual) = ready_of(&entry.status.as_ref()?.conditions)?;
            (is_ready == ready && reason.is_none_or(|reason| reason == actual)).then_some(entry)
        },
    )
    .await
}

async fn wait_value(nats: &NatsServer, bucket: &str, key: &str, value: Option<&str>) {
    let js = nats.jetstream().await;
    wait_until(&format!("{bucket}/{key} = {value:?}"), WAIT, || async {
        let store = js.get_key_value(bucket).await.ok()?;
        let current = store.get(key).await.ok()?;
        (current.as_deref() == value.map(str::as_bytes)).then_some(())
    })
    .await;
}

struct Setup {
    nats: NatsServer,
    client: kube::Client,
    namespace: String,
    buckets: Api<KeyValueBucket>,
    entries: Api<KeyValueEntry>,
}

async fn setup(prefix: &str) -> Setup {
    let nats = NatsServer::start();
    let client = admin().await;
    let namespace = namespace(&client, prefix).await;
    let buckets = Api::namespaced(client.clone(), &namespace);
    let entries = Api::namespaced(client.clone(), &namespace);
    Setup {
        nats,
        client,
        namespace,
        buckets,
        entries,
    }
}

async fn create<
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
>(
    api: &Api<K>,
    object: &K,
) {
    api.create(&PostParams::default(), object)
        .await
        .expect("create");
}

async fn merge<
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
>(
    api: &Api<K>,
    name: &str,
    patch: Value,
) -> Result<K, kube::Error> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

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
    s.buckets
        .delete("dropped", &DeleteParams::default())
        .await
        .expect("delete bucket");
    for name in ["kept", "dropped"] {
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
}

fn rejected<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 422, "{what}: {status:?}"),
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
    let mut two = entry("two", "b", "k", "v", json!({"jsonValue": {"a": 1}}));
    two.spec.binary_value = None;
    rejected(
        entries.create(&PostParams::default(), &two).await,
        "two value sources",
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
    rejected(
        entries.create(&PostParams::default(), &none).await,
        "no value source",
    );

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
}

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
    assert!(
        operator
            .metrics()
            .await
            .contains("kvop_drift_corrections_total 1"),
        "{}",
        operator.metrics().await
    );
}

#[tokio::test]
async fn a_nats_outage_is_reported_and_everything_converges_after() {
    let mut s = setup("outage").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({}))).await;
    create(&s.entries, &entry("one", "b", "one", "v1", json!({}))).await;
    wait_entry(&s.entries, "one", true, None).await;
    s.nats.stop();
    merge(&s.entries, "one", json!({"spec": {"value": "v2"}}))
        .await
        .expect("change during outage");
    create(&s.entries, &entry("two", "b", "two", "new", json!({}))).await;
    let down = wait_entry(&s.entries, "one", false, None).await;
    let reason = ready_of(&down.status.expect("status").conditions)
        .expect("ready")
        .1;
    assert!(
        ["NatsUnavailable", "Timeout", "NatsError"].contains(&reason.as_str()),
        "the condition says NATS is the problem: {reason}"
    );
    s.nats.restart();
    wait_value(&s.nats, "b", "one", Some("v2")).await;
    wait_value(&s.nats, "b", "two", Some("new")).await;
    wait_entry(&s.entries, "one", true, None).await;
    wait_entry(&s.entries, "two", true, None).await;
}

#[tokio::test]
async fn a_value_from_a_secret_follows_its_rotation_and_never_shows_in_status() {
    let s = setup("secret").await;
    let operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "db"}, "stringData": {"password": "first-s3cret"}}),
    )
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    create(&s.buckets, &bucket("b", json!({}))).await;
    let mut from = entry(
        "pw",
        "b",
        "db.password",
        "",
        json!({"valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}),
    );
    from.spec.value = None;
    create(&s.entries, &from).await;
    wait_value(&s.nats, "b", "db.password", Some("first-s3cret")).await;
    secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"password": "second-s3cret"}})),
        )
        .await
        .expect("rotate");
    wait_value(&s.nats, "b", "db.password", Some("second-s3cret")).await;
    let status =
        serde_json::to_string(&s.entries.get("pw").await.expect("entry").status).expect("json");
    assert!(
        !status.contains("s3cret"),
        "status never holds the value: {status}"
    );
    assert!(
        !operator.logs().contains("s3cret"),
        "logs never hold the value"
    );
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
    let entry_reconciles = reconciles(&operator, "KeyValueEntry").await;
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
        reconciles(&operator, "KeyValueEntry").await,
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

/// The operator's `kvop_reconciles_total` for `kind`.
async fn reconciles(operator: &Operator, kind: &str) -> u64 {
    let metrics = operator.metrics().await;
    let prefix = format!("kvop_reconciles_total{{kind=\"{kind}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
}

#[tokio::test]
async fn a_bucket_connects_with_credentials_from_a_secret_and_follows_their_rotation() {
    let s = setup("connection").await;
    let secured = NatsServer::start_with_config(
        "authorization { users: [ { user: app, password: \"first-pw\" } ] }\n",
    );
    let operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let credentials: Secret = serde_json::from_value(json!({"metadata": {"name": "nats-user"}, "stringData": {"user": "app", "password": "first-pw"}})).expect("secret");
    secrets
        .create(&PostParams::default(), &credentials)
        .await
        .expect("secret");
    let connection = json!({"servers": [secured.url()], "userSecretRef": {"name": "nats-user"}});
    create(
        &s.buckets,
        &bucket("private", json!({"connection": connection})),
    )
    .await;
    create(
        &s.entries,
        &entry("token", "private", "api.token", "t1", json!({})),
    )
    .await;
    wait_entry(&s.entries, "token", true, None).await;
    let authed =
        async_nats::ConnectOptions::with_user_and_password("app".into(), "first-pw".into())
            .connect(secured.url())
            .await
            .expect("connect");
    let js = async_nats::jetstream::new(authed);
    assert_eq!(
        kv_get(&js, "private", "api.token").await.as_deref(),
        Some(&b"t1"[..]),
        "written through the bucket's own connection"
    );
    assert!(
        s.nats
            .jetstream()
            .await
            .get_stream("KV_private")
            .await
            .is_err(),
        "not on the default server"
    );

    secrets
        .patch(
            "nats-user",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"password": "rotated-wrong"}})),
        )
        .await
        .expect("rotate");
    wait_bucket(&s.buckets, "private", false, Some("Unauthorized")).await;
    secrets
        .patch(
            "nats-user",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"password": "first-pw"}})),
        )
        .await
        .expect("rotate back");
    wait_bucket(&s.buckets, "private", true, None).await;
    merge(&s.entries, "token", json!({"spec": {"value": "t2"}}))
        .await
        .expect("update");
    wait_until("t2 on the secured server", WAIT, || async {
        (kv_get(&js, "private", "api.token").await.as_deref() == Some(&b"t2"[..])).then_some(())
    })
    .await;
    let logs = operator.logs();
    assert!(
        !logs.contains("first-pw") && !logs.contains("rotated-wrong"),
        "credentials never reach the logs"
    );
}

#[tokio::test]
async fn deleting_while_nats_is_down_keeps_the_finalizer_with_a_clear_condition_then_completes() {
    let mut s = setup("blocked-delete").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({"history": 3}))).await;
    create(&s.entries, &entry("e", "b", "k", "v", json!({}))).await;
    wait_entry(&s.entries, "e", true, None).await;
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
    // Someone deletes the whole bucket.
    js.delete_key_value("b").await.expect("out-of-band delete");
    wait_value(&s.nats, "b", "k", Some("v")).await;
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
    // NATS stalls, so both finalizers are mid-flight when the operator dies.
    let nats_pid = s.nats.pid().expect("nats pid").to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, nats_pid.as_str()])
            .status()
            .expect("kill");
        assert!(status.success());
    };
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
