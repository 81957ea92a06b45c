//! What the bucket controller does when a bucket resource is deleted, before NATS is
//! asked anything: the decision made without the stream (`decide_bucket_removal`) lets
//! an observed bucket's resource go at once.

use serde_json::json;

use super::bucket_failures::{context, stored};
use super::fake_apiserver::{FakeApiserver, crd_in_place};
use crate::api::KeyValueBucket;
use crate::operator::{FINALIZER, bucket};

/// Bucket `team/orders`, being deleted, held by kvop's finalizer, with `spec`.
fn departing(spec: serde_json::Value) -> std::sync::Arc<KeyValueBucket> {
    std::sync::Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "kvop.dev/v1alpha1",
            "kind": "KeyValueBucket",
            "metadata": {
                "name": "orders",
                "namespace": "team",
                "uid": "0b7a6c1e-0000-4000-8000-000000000002",
                "generation": 3,
                "resourceVersion": "42",
                "deletionTimestamp": "2026-01-01T00:00:00Z",
                "finalizers": [FINALIZER],
            },
            "spec": spec,
        }))
        .expect("a valid KeyValueBucket"),
    )
}

#[tokio::test]
async fn an_observed_buckets_resource_is_let_go_without_a_connection_or_an_event() {
    let apiserver = FakeApiserver::new();
    let bucket = departing(json!({ "managementPolicy": "Observe", "deletionPolicy": "Delete" }));
    // The CRD is not being deleted; then the finalizer's removal.
    apiserver
        .then(200, crd_in_place("keyvaluebuckets.kvop.dev"))
        .then(200, stored(&bucket));
    // NATS never comes up: a cleanup that asked it anything would fail or wait out a
    // request timeout instead of letting the resource go.
    let (context, _) = context(apiserver.client()).await;

    bucket::reconcile(bucket, context)
        .await
        .expect("the resource is let go");
    let requests = apiserver.requests();
    let asked: Vec<(&str, &str)> = requests
        .iter()
        .map(|request| (request.method.as_str(), request.uri.as_str()))
        .collect();
    assert_eq!(asked.len(), 2, "{asked:#?}");
    assert!(
        asked[0].0 == "GET" && asked[0].1.contains("customresourcedefinitions"),
        "{asked:#?}"
    );
    assert!(
        asked[1].0 == "PATCH" && asked[1].1.contains("keyvaluebuckets/orders"),
        "only the finalizer's removal, no Event: {asked:#?}"
    );
}
