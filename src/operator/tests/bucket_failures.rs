//! What the bucket controller does when the apiserver refuses its writes: the error it
//! returns, how soon and with what backoff it retries, what it writes once it can.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use kube::runtime::reflector;
use serde_json::{Value, json};

use super::fake_apiserver::{FakeApiserver, status_failure};
use crate::api::KeyValueBucket;
use crate::metrics::Metrics;
use crate::nats::ConnectionSettings;
use crate::operator::backoff::Backoff;
use crate::operator::bucket_view::BucketViews;
use crate::operator::context::{Context, Settings};
use crate::operator::error::{Retry, STALE_RETRY};
use crate::operator::status::backoff_key;
use crate::operator::{FINALIZER, bucket, error_policy};

const STATUS_PATH: &str = "/apis/kvop.dev/v1alpha1/namespaces/team/keyvaluebuckets/orders/status";
const OBJECT_PATH: &str = "/apis/kvop.dev/v1alpha1/namespaces/team/keyvaluebuckets/orders";

/// A loopback URL nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("bound").port();
    drop(listener);
    format!("nats://127.0.0.1:{port}")
}

/// The operator's shared state, its apiserver `client` and a NATS connection that keeps
/// trying to come up in the background and never does.
pub(super) async fn context(client: kube::Client) -> (Arc<Context>, String) {
    let url = closed_port_url();
    let settings = ConnectionSettings {
        url: url.clone(),
        client_name: "kvop-controller-test".into(),
        retry_initial_connect: true,
        ..Default::default()
    };
    let nats = crate::nats::connect(&settings)
        .await
        .expect("a background connection connects at once");
    let (entries, _) = reflector::store();
    let (buckets, _) = reflector::store();
    let (entry_sets, _) = reflector::store();
    let (trigger, _) = futures::channel::mpsc::unbounded();
    let (bucket_trigger, _) = futures::channel::mpsc::unbounded();
    let context = Context {
        client,
        nats,
        default_connection: settings,
        pool: Default::default(),
        tenancy: Default::default(),
        settings: Settings {
            manager: "kvop".into(),
            resync_interval: Duration::from_secs(600),
            status_interval: Duration::from_secs(30),
            namespace: None,
            secret_refresh_interval: Duration::from_secs(30),
        },
        buckets,
        entries: entries.clone(),
        entry_sets,
        views: BucketViews::new(trigger, bucket_trigger, entries, "kvop".into()),
        rivals: Default::default(),
        secret_versions: Default::default(),
        backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(300)),
        metrics: Arc::new(Metrics::new()),
        series: Default::default(),
        reporter: Reporter {
            controller: "kvop".into(),
            instance: None,
        },
    };
    (Arc::new(context), url)
}

/// A valid bucket `team/orders`, with kvop's finalizer when `finalized`.
fn orders(finalized: bool) -> Arc<KeyValueBucket> {
    let finalizers: Vec<&str> = if finalized { vec![FINALIZER] } else { vec![] };
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "kvop.dev/v1alpha1",
            "kind": "KeyValueBucket",
            "metadata": {
                "name": "orders",
                "namespace": "team",
                "uid": "0b7a6c1e-0000-4000-8000-000000000001",
                "generation": 3,
                "resourceVersion": "41",
                "finalizers": finalizers,
            },
            "spec": { "history": 5 },
        }))
        .expect("a valid KeyValueBucket"),
    )
}

/// The object as the apiserver answers a successful patch.
pub(super) fn stored(bucket: &KeyValueBucket) -> Value {
    serde_json::to_value(bucket).expect("serializable")
}

/// The condition of `type_` in a status patch.
fn condition<'a>(patch: &'a Value, type_: &str) -> &'a Value {
    patch["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {patch}"))
}

/// How many failures the per-object backoff holds for `bucket`, read from the delay
/// it would give next (500 ms·2ⁿ ±20 %); the probe itself counts as one more.
fn failures_before_probe(context: &Context, bucket: &KeyValueBucket) -> u32 {
    let next = context.backoff.next(&backoff_key(bucket));
    (0..8)
        .find(|failures| {
            let nominal = Duration::from_millis(500) * 2u32.pow(*failures);
            (nominal.mul_f64(0.8)..=nominal.mul_f64(1.2)).contains(&next)
        })
        .unwrap_or_else(|| panic!("{next:?} is no backoff delay"))
}

#[tokio::test]
async fn a_status_write_answered_500_is_backed_off_and_the_next_attempt_writes_the_condition() {
    let apiserver = FakeApiserver::new();
    let bucket = orders(true);
    apiserver
        .then(
            500,
            status_failure(500, "InternalError", "etcdserver: request timed out"),
        )
        .then(200, stored(&bucket));
    let (context, url) = context(apiserver.client()).await;

    let error = bucket::reconcile(bucket.clone(), context.clone())
        .await
        .expect_err("the status write failed");
    assert_eq!(error.reason(), "KubernetesApiError");
    assert_eq!(error.retry(), Retry::Backoff);
    assert_eq!(
        error.to_string(),
        "Kubernetes API: etcdserver: request timed out (InternalError, 500)",
        "one line, no response struct"
    );
    let action = error_policy(bucket.clone(), &error, context.clone());
    assert_ne!(action, Action::requeue(STALE_RETRY));
    assert_ne!(action, Action::await_change());

    // The next attempt finds NATS still down and, the apiserver answering again, says so.
    let error = bucket::reconcile(bucket.clone(), context.clone())
        .await
        .expect_err("NATS is not connected");
    assert_eq!(error.reason(), "NatsUnavailable");
    assert_eq!(
        error.to_string(),
        format!("not connected to NATS at {url}; reconnecting")
    );
    error_policy(bucket.clone(), &error, context.clone());
    assert_eq!(
        failures_before_probe(&context, &bucket),
        2,
        "both failed attempts count toward the backoff"
    );

    let requests = apiserver.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for request in &requests {
        assert_eq!(request.method, "PATCH");
        assert!(request.uri.starts_with(STATUS_PATH), "{}", request.uri);
        assert!(request.uri.contains("fieldManager=kvop"), "{}", request.uri);
        assert_eq!(request.content_type, "application/apply-patch+yaml");
    }
    assert_eq!(
        requests[0].body, requests[1].body,
        "the refused write is the one written next"
    );
    let patch = &requests[1].body;
    let ready = condition(patch, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "NatsUnavailable");
    assert_eq!(
        ready["message"],
        format!("not connected to NATS at {url}; reconnecting")
    );
    assert_eq!(ready["observedGeneration"], 3);
    let synced = condition(patch, "Synced");
    assert_eq!(synced["status"], "False");
    assert_eq!(synced["reason"], "NatsUnavailable");
}

#[tokio::test]
async fn a_status_write_answered_409_is_retried_at_once_without_backoff() {
    let apiserver = FakeApiserver::new();
    apiserver.then(
        409,
        status_failure(
            409,
            "Conflict",
            "Operation cannot be fulfilled on keyvaluebuckets.kvop.dev \"orders\": the object has been modified",
        ),
    );
    let bucket = orders(true);
    let (context, _) = context(apiserver.client()).await;

    let error = bucket::reconcile(bucket.clone(), context.clone())
        .await
        .expect_err("the status write conflicted");
    assert_eq!(error.retry(), Retry::Stale);
    assert_eq!(
        error_policy(bucket.clone(), &error, context.clone()),
        Action::requeue(STALE_RETRY)
    );
    assert_eq!(
        failures_before_probe(&context, &bucket),
        0,
        "a changed object is no failure to back off from"
    );
    assert_eq!(apiserver.requests().len(), 1);
}

#[tokio::test]
async fn a_refused_finalizer_is_reported_in_one_line_and_nothing_else_is_written() {
    let apiserver = FakeApiserver::new();
    apiserver.then(
        403,
        status_failure(
            403,
            "Forbidden",
            "keyvaluebuckets.kvop.dev \"orders\" is forbidden: User \"kvop\" cannot patch resource \"keyvaluebuckets\"",
        ),
    );
    let bucket = orders(false);
    let (context, _) = context(apiserver.client()).await;

    let error = bucket::reconcile(bucket.clone(), context.clone())
        .await
        .expect_err("the finalizer was refused");
    assert_eq!(error.reason(), "FinalizerError");
    assert_eq!(error.retry(), Retry::Backoff);
    assert_eq!(
        error.to_string(),
        "could not add the finalizer: keyvaluebuckets.kvop.dev \"orders\" is forbidden: User \"kvop\" cannot patch resource \"keyvaluebuckets\" (Forbidden, 403)"
    );
    error_policy(bucket.clone(), &error, context.clone());
    assert_eq!(failures_before_probe(&context, &bucket), 1);

    let requests = apiserver.requests();
    assert_eq!(
        requests.len(),
        1,
        "no status before the finalizer: {requests:#?}"
    );
    let request = &requests[0];
    assert_eq!(request.method, "PATCH");
    assert!(request.uri.starts_with(OBJECT_PATH) && !request.uri.contains("/status"));
    assert_eq!(request.content_type, "application/json-patch+json");
    assert_eq!(
        request.body,
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
        ])
    );
}

#[tokio::test]
async fn a_finalizer_patch_that_met_a_changed_object_is_retried_at_once() {
    // The 422 of a JSON patch whose `test` failed: another writer changed the finalizers.
    let apiserver = FakeApiserver::new();
    apiserver.then(
        422,
        status_failure(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        ),
    );
    let bucket = orders(false);
    let (context, _) = context(apiserver.client()).await;

    let error = bucket::reconcile(bucket.clone(), context.clone())
        .await
        .expect_err("the finalizer patch met a changed object");
    assert_eq!(error.retry(), Retry::Stale);
    assert_eq!(
        error_policy(bucket.clone(), &error, context.clone()),
        Action::requeue(STALE_RETRY)
    );
    assert_eq!(failures_before_probe(&context, &bucket), 0);
}

/// A finalizer patch refused because the object changed meanwhile (422) is a benign
/// race the next attempt wins: `kvop_reconcile_failures_total{reason="FinalizerError"}`
/// counted every one of them. A real apiserver failure still counts.
#[tokio::test]
async fn a_stale_finalizer_patch_is_not_counted_as_a_failure() {
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    let (context, _) = context(client).await;
    let refused = |code: u16| {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": code, "message": "refused", "reason": "Invalid"
        }))
        .expect("status");
        crate::operator::error::ControllerError::Finalizer {
            action: "add",
            source: kube::Error::Api(Box::new(status)),
        }
    };
    let failures = |context: &Context| {
        context
            .metrics
            .encode()
            .lines()
            .filter(|line| line.contains("FinalizerError") && !line.starts_with('#'))
            .map(|line| line.rsplit(' ').next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    super::super::error_policy::<KeyValueBucket>(orders(false), &refused(422), context.clone());
    assert!(
        failures(&context).iter().all(|count| count == "0"),
        "{:?}",
        failures(&context)
    );
    super::super::error_policy::<KeyValueBucket>(orders(false), &refused(500), context.clone());
    assert_eq!(failures(&context), ["1"]);
}
