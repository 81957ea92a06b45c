//! Pause, resume and reconcile-now against the real operator, apiserver and nats-server,
//! driven the way Argo CD drives them: its resource actions (src/operator/argocd.rs,
//! as docs/gitops.md registers them) run under gopher-lua on the live object, and the
//! annotations they change applied to it; health read with the same Lua. A paused
//! object changes nothing in NATS (no update, no drift repair, no bucket change) and
//! says what it would do; resumed, it catches up; a reconcile request is handled and
//! recorded in `status.lastHandledReconcileAt`.

mod support;

use std::collections::BTreeMap;

use kube::api::Api;
use kvop::api::{KeyValueBucket, KeyValueEntry};
use kvop::operator::argocd;
use serde_json::{Value, json};
use support::gitops::gitops_health;
use support::k8s::{Object, Operator, live_json, plane, wait_until};
use support::resources::*;
use support::{kv_get, stream_config};

/// Runs an action's Lua on the live object and applies the annotations it changed, as
/// Argo CD patches the object with what the action returns.
async fn run_action<K>(api: &Api<K>, name: &str, script: &str)
where
    K: Object,
{
    let object = live_json(api, name).await;
    let returned = gitops_health(&["--action"], script, std::slice::from_ref(&object))
        .await
        .remove(0);
    let before = annotations(&object);
    let after = annotations(&returned);
    let mut patch = serde_json::Map::new();
    for key in before.keys().chain(after.keys()) {
        if before.get(key) != after.get(key) {
            patch.insert(key.clone(), after.get(key).cloned().unwrap_or(Value::Null));
        }
    }
    assert!(!patch.is_empty(), "the action changed no annotation");
    merge(api, name, json!({"metadata": {"annotations": patch}}))
        .await
        .expect("apply the action's result");
}

fn annotations(object: &Value) -> BTreeMap<String, Value> {
    object["metadata"]["annotations"]
        .as_object()
        .map(|annotations| {
            annotations
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Which of the actions are offered (not disabled) for the live object.
async fn offered<K>(api: &Api<K>, name: &str) -> Vec<String>
where
    K: Object,
{
    let object = live_json(api, name).await;
    let actions = gitops_health(&["--discovery"], &argocd::discovery_lua(), &[object])
        .await
        .remove(0);
    let mut names: Vec<String> = actions
        .as_object()
        .expect("a table of actions")
        .iter()
        .filter(|(_, action)| action["disabled"] != json!(true))
        .map(|(name, _)| name.clone())
        .collect();
    names.sort();
    names
}

/// Argo CD's health of the live object.
async fn argo_health<K>(api: &Api<K>, name: &str) -> String
where
    K: Object,
{
    let object = live_json(api, name).await;
    gitops_health(&[], &argocd::health_lua(), &[object]).await[0]["argo"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until the entry's `Synced` condition has `reason` for its latest generation.
async fn wait_synced_reason(api: &Api<KeyValueEntry>, name: &str, reason: &str) -> KeyValueEntry {
    wait_until(&format!("{name} Synced reason {reason}"), WAIT, || async {
        let entry = api.get(name).await.ok()?;
        let status = entry.status.as_ref()?;
        (status.observed_generation == entry.metadata.generation).then_some(())?;
        condition_of(&status.conditions, "Synced")
            .filter(|(_, actual, _)| actual == reason)
            .map(|_| entry.clone())
    })
    .await
}

#[tokio::test]
async fn argo_cd_actions_pause_resume_and_reconcile_an_entry_and_a_bucket() {
    let s = setup("actions").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({"history": 2}))).await;
    create(&s.entries, &entry("e", "b", "k", "one", json!({}))).await;
    wait_entry(&s.entries, "e", true, None).await;
    wait_bucket(&s.buckets, "b", true, None).await;
    assert_eq!(offered(&s.entries, "e").await, ["pause", "reconcile"]);

    // Paused: a spec change and a foreign write are left alone, and said.
    run_action(&s.entries, "e", &argocd::pause_lua(true)).await;
    run_action(&s.buckets, "b", &argocd::pause_lua(true)).await;
    assert_eq!(offered(&s.entries, "e").await, ["reconcile", "resume"]);
    merge(&s.entries, "e", json!({"spec": {"value": "two"}}))
        .await
        .expect("edit the value");
    merge(&s.buckets, "b", json!({"spec": {"history": 5}}))
        .await
        .expect("edit the history");
    let paused = wait_synced_reason(&s.entries, "e", "ReconcilePaused").await;
    let ready = condition_of(&paused.status.expect("status").conditions, "Ready").expect("Ready");
    assert!(!ready.0, "NATS does not hold the new value");
    assert!(ready.2.contains("kvop would update the key"), "{}", ready.2);
    let js = s.nats.jetstream().await;
    js.get_key_value("b")
        .await
        .expect("bucket")
        .put("k", "theirs".into())
        .await
        .expect("a foreign write");
    wait_until("the bucket reports its pause", WAIT, || async {
        let bucket: KeyValueBucket = s.buckets.get("b").await.ok()?;
        let status = bucket.status?;
        (status.observed_generation == bucket.metadata.generation).then_some(())?;
        condition_of(&status.conditions, "Synced")
            .filter(|(_, reason, _)| reason == "ReconcilePaused")
            .map(|_| ())
    })
    .await;
    assert_eq!(argo_health(&s.entries, "e").await, "Suspended");
    assert_eq!(argo_health(&s.buckets, "b").await, "Suspended");
    // A resync's worth of time would not change it: the drift stays while paused.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(kv_get(&js, "b", "k").await.as_deref(), Some(&b"theirs"[..]));
    assert_eq!(stream_config(&js, "b").await.max_messages_per_subject, 2);

    // Resumed: both catch up.
    run_action(&s.entries, "e", &argocd::pause_lua(false)).await;
    run_action(&s.buckets, "b", &argocd::pause_lua(false)).await;
    wait_value(&s.nats, "b", "k", Some("two")).await;
    wait_entry(&s.entries, "e", true, Some("Synced")).await;
    wait_until("history 5", WAIT, || async {
        (stream_config(&js, "b").await.max_messages_per_subject == 5).then_some(())
    })
    .await;
    assert_eq!(argo_health(&s.entries, "e").await, "Healthy");

    // Reconcile now: handled, and recorded.
    run_action(&s.entries, "e", &argocd::reconcile_lua()).await;
    let requested = annotations(&serde_json::to_value(s.entries.get("e").await.unwrap()).unwrap())
        ["kvop.dev/reconcile-requested-at"]
        .as_str()
        .expect("the request")
        .to_string();
    wait_until("the request handled", WAIT, || async {
        let entry = s.entries.get("e").await.ok()?;
        (entry.status?.last_handled_reconcile_at.as_deref() == Some(requested.as_str()))
            .then_some(())
    })
    .await;
}
