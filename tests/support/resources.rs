//! Resources and waits for the operator tests: build a bucket or entry from JSON, create
//! and patch them, wait for their conditions and for values in NATS (read with
//! async-nats' own KV API, not kvop's).

use std::time::Duration;

use super::NatsServer;
use super::k8s::{admin, namespace, wait_until};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kvop::api::{KeyValueBucket, KeyValueEntry};
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(30);

pub fn bucket(name: &str, spec: Value) -> KeyValueBucket {
    serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueBucket", "metadata": {"name": name}, "spec": spec})).expect("bucket")
}

pub fn entry(name: &str, bucket: &str, key: &str, value: &str, extra: Value) -> KeyValueEntry {
    let mut spec = json!({"bucketRef": {"name": bucket}, "key": key, "value": value});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntry", "metadata": {"name": name}, "spec": spec})).expect("entry")
}

/// The `Ready` condition's (status, reason), once the object has one.
pub fn ready_of(conditions: &[kvop::api::Condition]) -> Option<(bool, String)> {
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

pub async fn wait_bucket(
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

pub async fn wait_entry(
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

/// Waits until object `name` carries kvop's finalizer, which the operator adds right
/// after the object's first apply, so just after its status said `Ready`.
pub async fn wait_finalized<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_until(&format!("{name} finalized"), WAIT, || async {
        let object = api.get(name).await.ok()?;
        object
            .meta()
            .finalizers
            .as_ref()?
            .iter()
            .any(|finalizer| finalizer == "kvop.dev/cleanup")
            .then_some(())
    })
    .await
}

pub async fn wait_value(nats: &NatsServer, bucket: &str, key: &str, value: Option<&str>) {
    let js = nats.jetstream().await;
    wait_until(&format!("{bucket}/{key} = {value:?}"), WAIT, || async {
        let store = js.get_key_value(bucket).await.ok()?;
        let current = store.get(key).await.ok()?;
        (current.as_deref() == value.map(str::as_bytes)).then_some(())
    })
    .await;
}

pub struct Setup {
    pub nats: NatsServer,
    pub client: kube::Client,
    pub namespace: String,
    pub buckets: Api<KeyValueBucket>,
    pub entries: Api<KeyValueEntry>,
}

pub async fn setup(prefix: &str) -> Setup {
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

pub async fn create<
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

pub async fn merge<
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
>(
    api: &Api<K>,
    name: &str,
    patch: Value,
) -> Result<K, kube::Error> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// The notes of the Events about object `name` with `reason`, oldest first.
pub async fn event_notes(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    reason: &str,
) -> Vec<String> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), namespace);
    let mut found: Vec<(String, String)> = events
        .list(&Default::default())
        .await
        .map(|list| list.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|event| {
            event.involved_object.name.as_deref() == Some(name)
                && event.reason.as_deref() == Some(reason)
        })
        .map(|event| {
            let at = event
                .event_time
                .as_ref()
                .map(|time| format!("{:?}", time.0))
                .unwrap_or_default();
            (at, event.message.unwrap_or_default())
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, note)| note).collect()
}

/// The condition of `type_` (`Ready`, `Synced`): (status, reason, message).
pub fn condition_of(
    conditions: &[kvop::api::Condition],
    type_: &str,
) -> Option<(bool, String, String)> {
    conditions
        .iter()
        .find(|condition| condition.type_ == type_)
        .map(|condition| {
            (
                condition.status == kvop::api::ConditionStatus::True,
                condition.reason.clone(),
                condition.message.clone(),
            )
        })
}

/// Creates Secret `name` with `string_data` through `secrets` (an admin's or a tenant's).
pub async fn create_secret(
    secrets: &Api<k8s_openapi::api::core::v1::Secret>,
    name: &str,
    string_data: Value,
) {
    let secret =
        serde_json::from_value(json!({"metadata": {"name": name}, "stringData": string_data}))
            .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
}
