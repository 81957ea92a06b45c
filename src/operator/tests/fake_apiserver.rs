//! A scripted apiserver for controller tests of what a real one does not do on demand: it
//! answers each request with the next scripted response (a 500 on a status write, a
//! refused finalizer patch) and keeps every request for the test to check. Not a model of
//! the apiserver: a request the script did not foresee gets a 501 that names it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use kube::client::Body;
use serde_json::{Value, json};

/// One request as the apiserver received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub content_type: String,
    /// The JSON body; `Null` when there was none.
    pub body: Value,
}

/// The script and the requests so far.
#[derive(Default)]
pub struct FakeApiserver {
    answers: Mutex<VecDeque<(u16, Value)>>,
    requests: Mutex<Vec<Request>>,
}

impl FakeApiserver {
    pub fn new() -> Arc<FakeApiserver> {
        Arc::default()
    }

    /// A client whose every request this apiserver answers.
    pub fn client(self: &Arc<Self>) -> kube::Client {
        let apiserver = self.clone();
        let service = tower::service_fn(move |request: http::Request<Body>| {
            let apiserver = apiserver.clone();
            async move { Ok::<_, std::convert::Infallible>(apiserver.answer(request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// The next request gets `status` with `body`.
    pub fn then(&self, status: u16, body: Value) -> &FakeApiserver {
        lock(&self.answers).push_back((status, body));
        self
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.requests).clone()
    }

    async fn answer(&self, request: http::Request<Body>) -> http::Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let seen = Request {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        };
        let (status, body) = lock(&self.answers).pop_front().unwrap_or_else(|| {
            let message = format!("unscripted request {} {}", seen.method, seen.uri);
            (501, status_failure(501, "NotImplemented", &message))
        });
        lock(&self.requests).push(seen);
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string().into_bytes()))
            .expect("a valid response")
    }
}

/// A `metav1.Status` failure, as the apiserver answers a refused request.
pub fn status_failure(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The apiserver's answer to kvop's look at its CRD `name` while it is not being
/// deleted (kvop cleans up as declared then).
pub fn crd_in_place(name: &str) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": { "name": name },
    })
}
