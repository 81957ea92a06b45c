//! The `KeyValueEntrySet` controller: `kvop run` against a real kube-apiserver
//! (tests/env) and a real nats-server, the operator running as a process. Keys from
//! inline items, ConfigMaps and Secrets reach NATS; edits, removals, prunes, collisions,
//! deletion policies and claims shared with entries behave as documented; a set near the
//! apiserver's object size limit becomes Ready. Durations are printed, never asserted.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use kvop::api::KeyValueEntrySet;
use serde_json::{Value, json};
use support::k8s::{Operator, plane, wait_until};
use support::resources::*;
use support::{kv_entry, kv_get, last_sequence, marked_sensitive};

fn entry_set(name: &str, spec: Value) -> KeyValueEntrySet {
    serde_json::from_value(json!({
        "apiVersion": "kvop.dev/v1alpha1",
        "kind": "KeyValueEntrySet",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("entry set")
}

/// Waits until set `name` is ready (or not) with `reason`, within `timeout`.
async fn wait_set_for(
    api: &Api<KeyValueEntrySet>,
    name: &str,
    ready: bool,
    reason: Option<&str>,
    timeout: Duration,
) -> KeyValueEntrySet {
    wait_until(
        &format!("set {name} ready={ready} {reason:?}"),
        timeout,
        || async {
            let set = api.get(name).await.ok()?;
            let status = set.status.as_ref()?;
            // The status of this very spec, not of an earlier one.
            if status.observed_generation != set.metadata.generation {
                return None;
            }
            let (is_ready, actual) = ready_of(&status.conditions)?;
            (is_ready == ready && reason.is_none_or(|reason| reason == actual)).then_some(set)
        },
    )
    .await
}

async fn wait_set(
    api: &Api<KeyValueEntrySet>,
    name: &str,
    ready: bool,
    reason: Option<&str>,
) -> KeyValueEntrySet {
    wait_set_for(api, name, ready, reason, WAIT).await
}

/// The operator for the test's namespace with a bucket `b` that is ready.
async fn operator_with_bucket(s: &Setup) -> (Operator, Api<KeyValueEntrySet>) {
    let operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({}))).await;
    wait_bucket(&s.buckets, "b", true, None).await;
    (operator, Api::namespaced(s.client.clone(), &s.namespace))
}

async fn config_map(s: &Setup, name: &str, data: Value) {
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), &s.namespace);
    let object: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).expect("cm");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create ConfigMap");
}

async fn secret(s: &Setup, name: &str, string_data: Value) {
    let api: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let object: Secret =
        serde_json::from_value(json!({"metadata": {"name": name}, "stringData": string_data}))
            .expect("secret");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create Secret");
}

async fn put_foreign(s: &Setup, key: &str, value: &'static str) {
    let js = s.nats.jetstream().await;
    let store = js.get_key_value("b").await.expect("bucket");
    store.put(key, value.into()).await.expect("foreign put");
}

#[tokio::test]
async fn inline_config_map_and_secret_keys_reach_nats_and_secret_keys_are_marked_sensitive() {
    let s = setup("set-sources").await;
    let (operator, sets) = operator_with_bucket(&s).await;
    config_map(&s, "settings", json!({"color": "blue", "size": "L"})).await;
    const SECRET_VALUE: &str = "s3cr3t-pa55word-value";
    secret(&s, "creds", json!({"password": SECRET_VALUE})).await;
    let spec = json!({
        "bucketRef": {"name": "b"},
        "keyPrefix": "app/",
        "entries": [
            {"key": "inline", "value": "hello"},
            {"key": "json", "jsonValue": {"b": 1, "a": [true]}},
            {"key": "one", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
        ],
        "from": [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "creds"}}],
    });
    create(&sets, &entry_set("s", spec)).await;
    let set = wait_set(&sets, "s", true, Some("Synced")).await;
    let js = s.nats.jetstream().await;
    for (key, value) in [
        ("app/inline", "hello"),
        ("app/json", r#"{"a":[true],"b":1}"#),
        ("app/one", "blue"),
        ("app/color", "blue"),
        ("app/size", "L"),
        ("app/password", SECRET_VALUE),
    ] {
        assert_eq!(
            kv_get(&js, "b", key).await.as_deref(),
            Some(value.as_bytes()),
            "{key}"
        );
    }
    assert!(marked_sensitive(&js, "b", "app/password").await);
    assert!(!marked_sensitive(&js, "b", "app/color").await);
    // A rotated Secret is followed (by name, its version checked every interval).
    const ROTATED: &str = "r0tat3d-pa55word-value";
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    merge(
        &secrets,
        "creds",
        json!({"stringData": {"password": ROTATED}}),
    )
    .await
    .expect("rotate");
    wait_value(&s.nats, "b", "app/password", Some(ROTATED)).await;
    assert!(marked_sensitive(&js, "b", "app/password").await);
    let entry = kv_entry(&js, "b", "app/inline").await.expect("entry");
    let status = set.status.expect("status");
    assert_eq!(status.keys, Some(6));
    assert_eq!(status.bucket.as_deref(), Some("b"));
    // The last pass's counts: the first writes all six; a later one (the Secret's
    // rotation, a requeue) finds them unchanged.
    let outcomes = status.outcomes.clone().expect("outcomes");
    assert_eq!(
        (outcomes.written + outcomes.unchanged, outcomes.conflict),
        (6, 0),
        "{outcomes:?}"
    );
    assert!(status.highest_revision.unwrap_or(0) >= entry.revision as i64);
    // The Secret's value appears nowhere: not in status, Events or the operator's log.
    let shown = serde_json::to_string(&status).expect("status json");
    assert!(!shown.contains(SECRET_VALUE), "status: {shown}");
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(s.client.clone(), &s.namespace);
    let events = serde_json::to_string(
        &events
            .list(&Default::default())
            .await
            .expect("events")
            .items,
    )
    .expect("events json");
    assert!(!events.contains(SECRET_VALUE));
    assert!(!operator.logs().contains(SECRET_VALUE));
    assert!(!operator.logs().contains(ROTATED));
}

#[tokio::test]
async fn a_config_map_edit_reaches_nats() {
    let s = setup("set-cm-edit").await;
    let (_operator, sets) = operator_with_bucket(&s).await;
    config_map(&s, "settings", json!({"color": "blue"})).await;
    let spec =
        json!({"bucketRef": {"name": "b"}, "from": [{"configMapRef": {"name": "settings"}}]});
    create(&sets, &entry_set("s", spec)).await;
    wait_set(&sets, "s", true, Some("Synced")).await;
    wait_value(&s.nats, "b", "color", Some("blue")).await;

    let config_maps: Api<ConfigMap> = Api::namespaced(s.client.clone(), &s.namespace);
    let edited = Instant::now();
    merge(
        &config_maps,
        "settings",
        json!({"data": {"color": "green", "added": "yes"}}),
    )
    .await
    .expect("edit ConfigMap");
    wait_value(&s.nats, "b", "color", Some("green")).await;
    println!("ConfigMap edit -> NATS: {:?}", edited.elapsed());
    wait_value(&s.nats, "b", "added", Some("yes")).await;

    // Emptied (a mistake, most often): the set would delete every key it wrote, and is
    // refused instead; the keys stay.
    merge(&config_maps, "settings", json!({"data": null}))
        .await
        .expect("empty ConfigMap");
    let set = wait_set(&sets, "s", false, Some("InvalidSpec")).await;
    let message = set
        .status
        .as_ref()
        .and_then(|status| condition_of(&status.conditions, "Ready"))
        .map(|(_, _, message)| message)
        .unwrap_or_default();
    assert!(message.contains("allow-empty-prune"), "{message}");
    let js = s.nats.jetstream().await;
    assert_eq!(
        kv_get(&js, "b", "color").await.as_deref(),
        Some(&b"green"[..])
    );
}

#[tokio::test]
async fn a_set_waits_for_a_config_map_that_does_not_exist_yet() {
    let s = setup("set-cm-later").await;
    let (_operator, sets) = operator_with_bucket(&s).await;
    let spec = json!({"bucketRef": {"name": "b"}, "from": [{"configMapRef": {"name": "later"}}]});
    create(&sets, &entry_set("s", spec)).await;
    let set = wait_set(&sets, "s", false, Some("ReferenceNotFound")).await;
    let message = set
        .status
        .as_ref()
        .and_then(|status| condition_of(&status.conditions, "Ready"))
        .map(|(_, _, message)| message)
        .unwrap_or_default();
    assert!(message.contains("ConfigMap"), "{message}");
    config_map(&s, "later", json!({"k": "v"})).await;
    wait_set(&sets, "s", true, Some("Synced")).await;
    wait_value(&s.nats, "b", "k", Some("v")).await;
}

#[tokio::test]
async fn a_dropped_key_is_deleted_and_a_foreign_key_under_the_prefix_is_kept_by_owned_and_deleted_by_exclusive()
 {
    let s = setup("set-prune").await;
    let (_operator, sets) = operator_with_bucket(&s).await;
    let spec = json!({
        "bucketRef": {"name": "b"},
        "keyPrefix": "app/",
        "entries": [{"key": "kept", "value": "1"}, {"key": "dropped", "value": "2"}],
    });
    create(&sets, &entry_set("s", spec)).await;
    wait_set(&sets, "s", true, Some("Synced")).await;
    wait_value(&s.nats, "b", "app/dropped", Some("2")).await;
    put_foreign(&s, "app/foreign", "theirs").await;
    put_foreign(&s, "elsewhere", "theirs").await;

    merge(
        &sets,
        "s",
        json!({"spec": {"entries": [{"key": "kept", "value": "1"}]}}),
    )
    .await
    .expect("drop a key");
    let set = wait_set(&sets, "s", true, Some("Synced")).await;
    wait_value(&s.nats, "b", "app/dropped", None).await;
    let js = s.nats.jetstream().await;
    assert_eq!(
        kv_get(&js, "b", "app/foreign").await.as_deref(),
        Some(&b"theirs"[..]),
        "Owned keeps a key the set never wrote"
    );
    assert_eq!(
        set.status.and_then(|s| s.outcomes).map(|o| o.deleted),
        Some(1)
    );

    merge(&sets, "s", json!({"spec": {"prune": "Exclusive"}}))
        .await
        .expect("exclusive");
    wait_set(&sets, "s", true, Some("Synced")).await;
    wait_value(&s.nats, "b", "app/foreign", None).await;
    assert_eq!(
        kv_get(&js, "b", "elsewhere").await.as_deref(),
        Some(&b"theirs"[..]),
        "outside the prefix: never the set's"
    );
    assert_eq!(
        kv_get(&js, "b", "app/kept").await.as_deref(),
        Some(&b"1"[..])
    );
}

#[tokio::test]
async fn a_key_given_by_both_an_item_and_a_config_map_is_refused_naming_both() {
    let s = setup("set-collide").await;
    let (_operator, sets) = operator_with_bucket(&s).await;
    config_map(&s, "settings", json!({"color": "blue"})).await;
    let spec = json!({
        "bucketRef": {"name": "b"},
        "entries": [{"key": "color", "value": "red"}],
        "from": [{"configMapRef": {"name": "settings"}}],
    });
    create(&sets, &entry_set("s", spec)).await;
    let set = wait_set(&sets, "s", false, Some("InvalidSpec")).await;
    let message = set
        .status
        .as_ref()
        .and_then(|status| condition_of(&status.conditions, "Ready"))
        .map(|(_, _, message)| message)
        .unwrap_or_default();
    assert!(
        message.contains("spec.entries[0]") && message.contains("ConfigMap settings"),
        "{message}"
    );
    let js = s.nats.jetstream().await;
    assert_eq!(kv_get(&js, "b", "color").await, None, "nothing written");
}

#[tokio::test]
async fn deletion_policies_delete_purge_or_retain_the_keys_still_holding_the_sets_write() {
    let s = setup("set-delete").await;
    let (_operator, sets) = operator_with_bucket(&s).await;
    for (name, policy) in [("del", "Delete"), ("purge", "Purge"), ("keep", "Retain")] {
        let spec = json!({
            "bucketRef": {"name": "b"},
            "keyPrefix": format!("{name}/"),
            "deletionPolicy": policy,
            "entries": [{"key": "x", "value": "v"}, {"key": "y", "value": "v"}],
        });
        create(&sets, &entry_set(name, spec)).await;
    }
    for name in ["del", "purge", "keep"] {
        wait_set(&sets, name, true, Some("Synced")).await;
    }
    // Written by someone else since: no longer the set's to remove. The set is paused
    // first, or it would put its value back (drift) before it is deleted.
    let pause = json!({"metadata": {"annotations": {"kvop.dev/paused": "true"}}});
    merge(&sets, "del", pause).await.expect("pause");
    wait_set(&sets, "del", true, Some("ReconcilePaused")).await;
    put_foreign(&s, "del/y", "theirs").await;
    for name in ["del", "purge", "keep"] {
        sets.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    for name in ["del", "purge", "keep"] {
        wait_until(&format!("set {name} gone"), WAIT, || async {
            sets.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
    }
    let js = s.nats.jetstream().await;
    let operation = |key: &'static str| {
        let js = js.clone();
        async move { kv_entry(&js, "b", key).await.map(|entry| entry.operation) }
    };
    use async_nats::jetstream::kv::Operation;
    assert_eq!(operation("del/x").await, Some(Operation::Delete));
    assert_eq!(
        kv_get(&js, "b", "del/y").await.as_deref(),
        Some(&b"theirs"[..])
    );
    assert_eq!(operation("purge/x").await, Some(Operation::Purge));
    assert_eq!(kv_get(&js, "b", "keep/x").await.as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn an_entry_and_a_set_or_two_sets_declaring_one_key_refuse_the_later_without_a_write_loop() {
    let s = setup("set-claims").await;
    let (_operator, sets) = operator_with_bucket(&s).await;
    // An entry first, a set later: the set is refused the entry's key.
    create(&s.entries, &entry("e", "b", "shared", "entry", json!({}))).await;
    wait_entry(&s.entries, "e", true, None).await;
    let spec = json!({
        "bucketRef": {"name": "b"},
        "entries": [{"key": "shared", "value": "set"}, {"key": "mine", "value": "set"}],
    });
    create(&sets, &entry_set("later", spec)).await;
    let set = wait_set(&sets, "later", false, Some("ClaimedElsewhere")).await;
    let status = set.status.expect("status");
    assert_eq!(status.conflicts.len(), 1);
    assert_eq!(status.conflicts[0].key, "shared");
    assert!(
        status.conflicts[0]
            .holder
            .contains(&format!("{}/e", s.namespace)),
        "{:?}",
        status.conflicts[0]
    );
    let js = s.nats.jetstream().await;
    assert_eq!(
        kv_get(&js, "b", "shared").await.as_deref(),
        Some(&b"entry"[..])
    );
    assert_eq!(kv_get(&js, "b", "mine").await.as_deref(), Some(&b"set"[..]));

    // A set first, an entry later: the entry is refused, naming the set.
    let spec = json!({"bucketRef": {"name": "b"}, "entries": [{"key": "held", "value": "set"}]});
    create(&sets, &entry_set("first", spec)).await;
    wait_set(&sets, "first", true, Some("Synced")).await;
    create(&s.entries, &entry("late", "b", "held", "entry", json!({}))).await;
    let late = wait_entry(&s.entries, "late", false, Some("ClaimedElsewhere")).await;
    let message = late
        .status
        .as_ref()
        .and_then(|status| condition_of(&status.conditions, "Ready"))
        .map(|(_, _, message)| message)
        .unwrap_or_default();
    assert!(
        message.contains(&format!("{}/KeyValueEntrySet/first", s.namespace)),
        "{message}"
    );
    // Two sets: the later one is refused.
    let spec = json!({"bucketRef": {"name": "b"}, "entries": [{"key": "held", "value": "other"}]});
    create(&sets, &entry_set("second", spec)).await;
    wait_set(&sets, "second", false, Some("ClaimedElsewhere")).await;
    assert_eq!(kv_get(&js, "b", "held").await.as_deref(), Some(&b"set"[..]));

    // No write loop: every declaration reconciled once more (a request each, handled)
    // writes nothing.
    let before = last_sequence(&js, "b").await;
    let requested = "2026-12-07T00:00:00Z";
    let annotate =
        json!({"metadata": {"annotations": {"kvop.dev/reconcile-requested-at": requested}}});
    for name in ["later", "first", "second"] {
        merge(&sets, name, annotate.clone()).await.expect("request");
    }
    for name in ["e", "late"] {
        merge(&s.entries, name, annotate.clone())
            .await
            .expect("request");
    }
    for name in ["later", "first", "second"] {
        wait_until(&format!("{name} handled the request"), WAIT, || async {
            let set = sets.get(name).await.ok()?;
            (set.status?.last_handled_reconcile_at.as_deref() == Some(requested)).then_some(())
        })
        .await;
    }
    for name in ["e", "late"] {
        wait_until(&format!("{name} handled the request"), WAIT, || async {
            let entry = s.entries.get(name).await.ok()?;
            (entry.status?.last_handled_reconcile_at.as_deref() == Some(requested)).then_some(())
        })
        .await;
    }
    assert_eq!(last_sequence(&js, "b").await, before, "nothing was written");
}

#[tokio::test]
async fn a_set_of_5000_keys_near_the_apiservers_object_size_limit_becomes_ready() {
    let s = setup("set-large").await;
    let (operator, sets) = operator_with_bucket(&s).await;
    let value = "v".repeat(250);
    let entries: Vec<Value> = (0..5000)
        .map(|i| json!({"key": format!("k{i:05}"), "value": value}))
        .collect();
    let set = entry_set(
        "large",
        json!({"bucketRef": {"name": "b"}, "keyPrefix": "big/", "entries": entries}),
    );
    println!(
        "set object: {} bytes as JSON",
        serde_json::to_vec(&set).expect("json").len()
    );
    // Every write to the set object (create, finalizer, status) arrives as one watch
    // event: counted, to print what a set costs the apiserver.
    let writes = Arc::new(AtomicUsize::new(0));
    let watch = {
        let (sets, writes) = (sets.clone(), writes.clone());
        tokio::spawn(async move {
            let config = watcher::Config::default().fields("metadata.name=large");
            let mut events = std::pin::pin!(watcher(sets, config));
            while let Some(event) = events.next().await {
                if let Ok(watcher::Event::Apply(_)) = event {
                    writes.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    create(&sets, &set).await;
    let created = started.elapsed();
    let ready = wait_set_for(
        &sets,
        "large",
        true,
        Some("Synced"),
        Duration::from_secs(180),
    )
    .await;
    println!(
        "5,000-key set: created in {created:?}, Ready {:?} after the create",
        started.elapsed()
    );
    let status = ready.status.expect("status");
    assert_eq!(status.keys, Some(5000));
    assert_eq!(
        status.key_prefix.as_deref(),
        Some("big/"),
        "the PREFIX column"
    );
    assert!(
        serde_json::to_vec(&status).expect("json").len() < 2048,
        "the status does not grow with the keys"
    );
    let js = s.nats.jetstream().await;
    assert_eq!(
        kv_get(&js, "b", "big/k04999").await.as_deref(),
        Some(value.as_bytes())
    );
    let mut keys = BTreeMap::new();
    let store = js.get_key_value("b").await.expect("bucket");
    let mut listed = store.keys().await.expect("keys");
    while let Some(key) = listed.next().await {
        keys.insert(key.expect("key"), ());
    }
    assert_eq!(
        keys.keys().filter(|key| key.starts_with("big/")).count(),
        5000
    );
    let reconciles = operator.reconciles("KeyValueEntrySet").await;
    println!(
        "to Ready: {reconciles} set reconciles, {} writes to the set object (create included)",
        writes.load(Ordering::SeqCst)
    );
    // One more reconcile, asked for: what a reconcile of an unchanged set writes.
    let before = writes.load(Ordering::SeqCst);
    let requested = "2026-12-07T00:00:00Z";
    let annotate =
        json!({"metadata": {"annotations": {"kvop.dev/reconcile-requested-at": requested}}});
    let asked = Instant::now();
    merge(&sets, "large", annotate).await.expect("request");
    wait_until("the request handled", Duration::from_secs(60), || async {
        let set = sets.get("large").await.ok()?;
        (set.status?.last_handled_reconcile_at.as_deref() == Some(requested)).then_some(())
    })
    .await;
    let handled = asked.elapsed();
    // The annotation and the status that says it was handled, both seen by the watch.
    wait_until("both writes watched", WAIT, || async {
        (writes.load(Ordering::SeqCst) >= before + 2).then_some(())
    })
    .await;
    println!(
        "a requested reconcile of the unchanged set: handled in {handled:?}, {} writes to the set object (the request's own annotation included)",
        writes.load(Ordering::SeqCst) - before
    );
    watch.abort();
}

#[tokio::test]
async fn a_key_held_by_a_set_deleted_with_retain_passes_to_the_entry_that_declares_it() {
    let s = setup("set-release").await;
    let (_operator, sets) = operator_with_bucket(&s).await;
    let spec = json!({
        "bucketRef": {"name": "b"},
        "deletionPolicy": "Retain",
        "entries": [{"key": "k", "value": "set"}],
    });
    create(&sets, &entry_set("holder", spec)).await;
    wait_set(&sets, "holder", true, Some("Synced")).await;
    create(&s.entries, &entry("e", "b", "k", "entry", json!({}))).await;
    wait_entry(&s.entries, "e", false, Some("ClaimedElsewhere")).await;
    // The holder names its rival while it stays Ready.
    let holder = wait_until("the holder names its rival", WAIT, || async {
        let set = sets.get("holder").await.ok()?;
        let (_, _, message) = condition_of(&set.status.as_ref()?.conditions, "Ready")?;
        message
            .contains(&format!("{}/e", s.namespace))
            .then_some(message)
    })
    .await;
    assert!(holder.contains("refused"), "{holder}");

    sets.delete("holder", &DeleteParams::default())
        .await
        .expect("delete");
    wait_entry(&s.entries, "e", true, None).await;
    wait_value(&s.nats, "b", "k", Some("entry")).await;
}

#[tokio::test]
async fn a_key_the_set_no_longer_declares_passes_to_the_entry_it_refused() {
    let s = setup("set-handover").await;
    let (_operator, sets) = operator_with_bucket(&s).await;
    let spec = json!({
        "bucketRef": {"name": "b"},
        "entries": [{"key": "k", "value": "set"}, {"key": "other", "value": "set"}],
    });
    create(&sets, &entry_set("holder", spec)).await;
    wait_set(&sets, "holder", true, Some("Synced")).await;
    create(&s.entries, &entry("e", "b", "k", "entry", json!({}))).await;
    wait_entry(&s.entries, "e", false, Some("ClaimedElsewhere")).await;

    merge(
        &sets,
        "holder",
        json!({"spec": {"entries": [{"key": "other", "value": "set"}]}}),
    )
    .await
    .expect("drop the key");
    wait_entry(&s.entries, "e", true, None).await;
    wait_value(&s.nats, "b", "k", Some("entry")).await;
    wait_set(&sets, "holder", true, Some("Synced")).await;
}
