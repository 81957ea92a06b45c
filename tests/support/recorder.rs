//! Every message a bucket stores and every configuration sent for it, as it happens: a
//! core NATS subscription to the bucket's subjects (puts, delete and purge markers) and
//! to the JetStream API subjects that create or update its stream. A test then asserts
//! on the whole history, not only on the final state: no delete marker, no value that
//! was never declared, no configuration on the way to the declared one.

use std::sync::{Arc, Mutex};

use futures::StreamExt;

/// One message stored in the bucket, or one configuration sent for its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    Purge {
        key: String,
    },
    /// The stream configuration of a create or update request, as JSON.
    Config(serde_json::Value),
}

/// Records one bucket until dropped.
pub struct Recorder {
    seen: Arc<Mutex<Vec<Recorded>>>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Recorder {
    /// Starts recording `bucket`; returns once the server has the subscriptions.
    pub async fn start(client: &async_nats::Client, bucket: &str) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let prefix = format!("$KV.{bucket}.");
        let mut messages = client
            .subscribe(format!("{prefix}>"))
            .await
            .expect("subscribe to the bucket");
        let mut requests = client
            .subscribe(format!("$JS.API.STREAM.*.KV_{bucket}"))
            .await
            .expect("subscribe to the stream's API");
        client.flush().await.expect("flush the subscriptions");
        let into = seen.clone();
        let keys = tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                let key = message.subject.trim_start_matches(&prefix).to_string();
                let operation = message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get("KV-Operation"))
                    .map(|value| value.as_str().to_string());
                let record = match operation.as_deref() {
                    Some("DEL") => Recorded::Delete { key },
                    Some("PURGE") => Recorded::Purge { key },
                    _ => Recorded::Put {
                        key,
                        value: String::from_utf8_lossy(&message.payload).into_owned(),
                    },
                };
                into.lock().unwrap().push(record);
            }
        });
        let into = seen.clone();
        let configs = tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let verb = request.subject.split('.').nth(3).unwrap_or_default();
                if !matches!(verb, "CREATE" | "UPDATE") {
                    continue;
                }
                if let Ok(config) = serde_json::from_slice(&request.payload) {
                    into.lock().unwrap().push(Recorded::Config(config));
                }
            }
        });
        Recorder {
            seen,
            _tasks: vec![keys, configs],
        }
    }

    /// Everything recorded so far.
    pub fn all(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }

    /// The delete and purge markers recorded so far.
    pub fn removals(&self) -> Vec<Recorded> {
        self.all()
            .into_iter()
            .filter(|record| matches!(record, Recorded::Delete { .. } | Recorded::Purge { .. }))
            .collect()
    }

    /// Every value stored for `key`, in order.
    pub fn values_of(&self, key: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter_map(|record| match record {
                Recorded::Put { key: put, value } if put == key => Some(value),
                _ => None,
            })
            .collect()
    }

    /// Every value of a stream configuration field sent, in order (`max_msgs_per_subject`
    /// is a bucket's history).
    pub fn config_values(&self, field: &str) -> Vec<serde_json::Value> {
        self.all()
            .into_iter()
            .filter_map(|record| match record {
                Recorded::Config(config) => Some(config[field].clone()),
                _ => None,
            })
            .collect()
    }

    /// Panics unless nothing but `allowed` values were stored for `key`, and no key was
    /// deleted or purged.
    pub fn assert_clean(&self, keys: &[(&str, &[&str])], log: &dyn Fn() -> String) {
        let removals = self.removals();
        assert!(
            removals.is_empty(),
            "markers written: {removals:?}\nthe log:\n{}",
            log()
        );
        for (key, allowed) in keys {
            let stored = self.values_of(key);
            let foreign: Vec<&String> = stored
                .iter()
                .filter(|value| !allowed.contains(&value.as_str()))
                .collect();
            assert!(
                foreign.is_empty(),
                "{key}: values never declared were stored: {foreign:?} (all: {stored:?})\nthe log:\n{}",
                log()
            );
        }
    }
}
