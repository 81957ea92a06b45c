//! The entry controller against a scripted apiserver: kvop's finalizer only on entries
//! whose deletion acts in NATS, the exact patches that add and remove it, and an entry
//! deleted before it was ever applied let go without asking NATS anything.

use std::sync::Arc;

use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::bucket_failures::context;
use super::fake_apiserver::{FakeApiserver, crd_in_place};
use crate::api::KeyValueEntry;
use crate::operator::{FINALIZER, entry};

const OBJECT_PATH: &str = "/apis/kvop.dev/v1alpha1/namespaces/team/keyvalueentries/limit";

/// Entry `team/limit` with `spec` (over a bucket reference and a key) and `metadata`.
fn limit(spec: Value, metadata: Value) -> Arc<KeyValueEntry> {
    let mut object = json!({
        "apiVersion": "kvop.dev/v1alpha1",
        "kind": "KeyValueEntry",
        "metadata": {
            "name": "limit",
            "namespace": "team",
            "uid": "0b7a6c1e-0000-4000-8000-000000000003",
            "generation": 1,
            "resourceVersion": "7",
        },
        "spec": { "bucketRef": { "name": "payments" }, "key": "limit", "value": "5" },
    });
    for (field, value) in metadata.as_object().expect("metadata fields") {
        object["metadata"][field] = value.clone();
    }
    for (field, value) in spec.as_object().expect("spec fields") {
        object["spec"][field] = value.clone();
    }
    Arc::new(serde_json::from_value(object).expect("a valid KeyValueEntry"))
}

fn stored(entry: &KeyValueEntry) -> Value {
    serde_json::to_value(entry).expect("serializable")
}

#[tokio::test]
async fn a_new_entry_that_deletes_its_key_gets_the_finalizer_in_one_tested_patch_first() {
    let apiserver = FakeApiserver::new();
    let entry = limit(json!({}), json!({}));
    apiserver.then(200, stored(&entry));
    let (context, _) = context(apiserver.client()).await;

    let action = entry::reconcile(entry, context)
        .await
        .expect("the finalizer is added");
    assert_eq!(
        action,
        Action::await_change(),
        "its change starts the apply"
    );
    let requests = apiserver.requests();
    assert_eq!(requests.len(), 1, "nothing else before it: {requests:#?}");
    assert_eq!(
        (
            requests[0].method.as_str(),
            requests[0].uri.split('?').next()
        ),
        ("PATCH", Some(OBJECT_PATH))
    );
    assert_eq!(requests[0].content_type, "application/json-patch+json");
    assert_eq!(
        requests[0].body,
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
        ])
    );
}

#[tokio::test]
async fn a_retain_entry_is_applied_at_once_with_no_finalizer_patch() {
    let apiserver = FakeApiserver::new();
    let entry = limit(json!({ "deletionPolicy": "Retain" }), json!({}));
    // Its bucket is not known: the apply's first step says so in the status.
    apiserver.then(200, stored(&entry));
    let (context, _) = context(apiserver.client()).await;

    entry::reconcile(entry, context)
        .await
        .expect_err("its bucket is not ready");
    let requests = apiserver.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(
        requests[0].uri.split('?').next(),
        Some(&*format!("{OBJECT_PATH}/status"))
    );
    assert_eq!(
        requests[0].body["status"]["conditions"][0]["reason"],
        "BucketNotReady"
    );
}

#[tokio::test]
async fn an_entry_changed_to_retain_loses_only_kvops_finalizer_by_index_then_is_applied() {
    let apiserver = FakeApiserver::new();
    let entry = limit(
        json!({ "deletionPolicy": "Retain" }),
        json!({ "finalizers": ["example.com/other", FINALIZER] }),
    );
    apiserver
        .then(200, stored(&entry))
        .then(200, stored(&entry));
    let (context, _) = context(apiserver.client()).await;

    entry::reconcile(entry, context)
        .await
        .expect_err("its bucket is not ready");
    let requests = apiserver.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(
        requests[0].body,
        json!([
            { "op": "test", "path": "/metadata/finalizers/1", "value": FINALIZER },
            { "op": "remove", "path": "/metadata/finalizers/1" },
        ]),
        "another controller's finalizer is never touched"
    );
    assert!(
        requests[1]
            .uri
            .starts_with(&format!("{OBJECT_PATH}/status"))
    );
}

#[tokio::test]
async fn an_entry_deleted_before_it_was_ever_applied_is_let_go_without_asking_nats() {
    let apiserver = FakeApiserver::new();
    let entry = limit(
        json!({}),
        json!({ "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [FINALIZER] }),
    );
    // The CRD is not being deleted; then the finalizer's removal.
    apiserver
        .then(200, crd_in_place("keyvalueentries.kvop.dev"))
        .then(200, stored(&entry));
    // NATS never comes up: a cleanup that asked it anything would fail instead.
    let (context, _) = context(apiserver.client()).await;

    entry::reconcile(entry, context)
        .await
        .expect("the entry is let go");
    let requests = apiserver.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(
        requests[0]
            .uri
            .contains("customresourcedefinitions/keyvalueentries.kvop.dev")
    );
    assert_eq!(
        requests[1].body,
        json!([
            { "op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER },
            { "op": "remove", "path": "/metadata/finalizers/0" },
        ])
    );
}
