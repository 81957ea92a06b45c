//! Live views of the declared buckets: each follows its bucket's keys and its stream's
//! announcements, and asks for a pass over the bucket when NATS drifts from the files.
//! A change that matches the files (kvop's own writes, mostly) asks for nothing: an
//! idle watch reads no more than the views deliver and writes nothing.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::desired::Desired;
use crate::nats::{Change, Connection};
use crate::observed::{ObservedKey, Operation};

/// Longest wait before following a bucket again after its view ended.
const MAX_REFOLLOW_DELAY: Duration = Duration::from_secs(2);

/// What the files declare, indexed for the views' question "does this change drift?".
#[derive(Debug, Default)]
pub struct Declared {
    buckets: HashMap<String, HashMap<String, Bytes>>,
    manager: String,
    prune: bool,
}

impl Declared {
    pub fn new(desired: &Desired, manager: &str, prune: bool) -> Declared {
        let mut buckets: HashMap<String, HashMap<String, Bytes>> = desired
            .buckets
            .iter()
            .map(|bucket| (bucket.name.clone(), HashMap::new()))
            .collect();
        for entry in &desired.entries {
            if let Some(keys) = buckets.get_mut(&*entry.bucket) {
                keys.insert(entry.key.to_string(), entry.value.clone());
            }
        }
        Declared {
            buckets,
            manager: manager.to_string(),
            prune,
        }
    }

    /// Whether `key` as observed differs from the files: a declared key with another
    /// value or no value, or (with prune) a key this manager wrote that is not declared.
    pub fn drifted(&self, bucket: &str, key: &str, observed: &ObservedKey) -> bool {
        let Some(keys) = self.buckets.get(bucket) else {
            return false;
        };
        match keys.get(key) {
            Some(value) => observed.operation != Operation::Put || observed.value != *value,
            None => {
                self.prune
                    && observed.operation == Operation::Put
                    && observed.writer.is(&self.manager)
            }
        }
    }

    fn bucket_names(&self) -> HashSet<&str> {
        self.buckets.keys().map(String::as_str).collect()
    }
}

/// One view per declared bucket, started and stopped as the files change.
pub struct Views {
    connection: Connection,
    declared: watch::Sender<Arc<Declared>>,
    drift: mpsc::UnboundedSender<String>,
    running: HashMap<String, ViewTasks>,
}

/// A bucket's two followers; stopped when dropped.
struct ViewTasks([JoinHandle<()>; 2]);

impl Drop for ViewTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Views {
    /// Views on `connection` that send a bucket's name on `drift` when it needs a pass.
    pub fn new(connection: Connection, drift: mpsc::UnboundedSender<String>) -> Views {
        Views {
            connection,
            declared: watch::Sender::new(Arc::new(Declared::default())),
            drift,
            running: HashMap::new(),
        }
    }

    /// Follows exactly the buckets `declared` names, comparing with it from now on.
    pub fn follow(&mut self, declared: Declared) {
        let declared = Arc::new(declared);
        let names = declared.bucket_names();
        self.running
            .retain(|bucket, _| names.contains(bucket.as_str()));
        for name in names {
            if !self.running.contains_key(name) {
                let tasks = self.start(name);
                self.running.insert(name.to_string(), tasks);
            }
        }
        self.declared.send_replace(declared);
    }

    fn start(&self, name: &str) -> ViewTasks {
        let restart = Arc::new(Notify::new());
        let keys = tokio::spawn(follow_keys(
            self.connection.clone(),
            name.to_string(),
            self.declared.subscribe(),
            self.drift.clone(),
            restart.clone(),
        ));
        let bucket = self.connection.bucket(name);
        let drift = self.drift.clone();
        let name = name.to_string();
        // Deleted, created again or edited out of band: the server says so at once. The
        // key view is opened again too, so that it follows the stream as it is now (its
        // consumer's loss would end it too, but only once the server says so).
        let stream = tokio::spawn(async move {
            bucket
                .follow_stream_changes(|| {
                    let _ = drift.send(name.clone());
                    restart.notify_one();
                })
                .await;
        });
        ViewTasks([keys, stream])
    }
}

/// Follows one bucket's keys until aborted, following again whenever the view ends (the
/// stream deleted, the connection lost). A view that loads, or that ends after having
/// opened, asks for a pass: what changed in between was not seen. So does finding the
/// stream missing, once until it is back: the stream's own advisory alone is not
/// enough, because a pass it starts may still find the stream being deleted (seen once
/// in CI: the bucket was then not created again until the resync).
async fn follow_keys(
    connection: Connection,
    name: String,
    declared: watch::Receiver<Arc<Declared>>,
    drift: mpsc::UnboundedSender<String>,
    restart: Arc<Notify>,
) {
    let bucket = connection.bucket(&name);
    let mut delay = Duration::from_millis(100);
    let mut missing_said = false;
    loop {
        let mut opened = false;
        let following = bucket.follow(|change| {
            let asks = match change {
                Change::Opened(_) => {
                    opened = true;
                    false
                }
                Change::Loaded(_) => true,
                Change::Key { key, observed } => declared.borrow().drifted(&name, &key, &observed),
            };
            if asks {
                let _ = drift.send(name.clone());
            }
            ControlFlow::Continue(())
        });
        let restarted = tokio::select! {
            ended = following => {
                if let Err(error) = ended {
                    if error.is_stream_not_found() && !opened && !missing_said {
                        missing_said = true;
                        let _ = drift.send(name.clone());
                    }
                    tracing::debug!(bucket = %name, %error, "bucket view ended; following again");
                }
                false
            }
            () = restart.notified() => true,
        };
        if opened {
            missing_said = false;
            let _ = drift.send(name.clone());
            delay = Duration::from_millis(100);
        }
        if !restarted {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_REFOLLOW_DELAY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::Writer;

    fn key(operation: Operation, value: &str, manager: Option<&str>) -> ObservedKey {
        ObservedKey {
            revision: 7,
            operation,
            value: Bytes::copy_from_slice(value.as_bytes()),
            writer: Writer {
                sensitive: false,
                manager: manager.map(Arc::from),
                owner: None,
            },
        }
    }

    fn declared(prune: bool) -> Declared {
        Declared {
            buckets: HashMap::from([(
                "b".to_string(),
                HashMap::from([("k".to_string(), Bytes::from_static(b"v"))]),
            )]),
            manager: "kvop".into(),
            prune,
        }
    }

    #[test]
    fn drift_is_a_difference_from_the_files() {
        let declared = declared(false);
        assert!(!declared.drifted("b", "k", &key(Operation::Put, "v", Some("kvop"))));
        assert!(!declared.drifted("b", "k", &key(Operation::Put, "v", None)));
        assert!(declared.drifted("b", "k", &key(Operation::Put, "w", Some("kvop"))));
        assert!(declared.drifted("b", "k", &key(Operation::Delete, "", None)));
        assert!(declared.drifted("b", "k", &key(Operation::Purge, "", None)));
        assert!(!declared.drifted("b", "other", &key(Operation::Put, "x", Some("kvop"))));
        assert!(!declared.drifted("undeclared", "k", &key(Operation::Put, "w", None)));
    }

    #[test]
    fn with_prune_a_key_this_manager_wrote_and_no_file_declares_drifts() {
        let declared = declared(true);
        assert!(declared.drifted("b", "other", &key(Operation::Put, "x", Some("kvop"))));
        assert!(!declared.drifted("b", "other", &key(Operation::Put, "x", Some("ci"))));
        assert!(!declared.drifted("b", "other", &key(Operation::Delete, "", Some("kvop"))));
    }
}
