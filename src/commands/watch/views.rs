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

/// Wait before following a bucket again after its view ended or was told to restart,
/// and before asking for the pass that follows: nats-server 2.15.1 announces a
/// deletion (the view's consumer deleted, the stream advisory, "stream not found")
/// before it has moved the stream's files away, and a stream of the same name created
/// in between takes those files over, then loses them: it reports the old stream's
/// revisions and never acknowledges a write, until it is deleted again. Measured
/// against 2.15.1 on a loaded machine: re-created as soon as announced, up to 1 stream
/// in 8 came out broken; re-created 5 ms or more later, none in 240.
const FIRST_REFOLLOW_DELAY: Duration = Duration::from_millis(500);
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
        // Deleted, created again or edited out of band: the server says so at once. The
        // key view is opened again, so that it follows the stream as it is now, and it
        // asks for the pass (not this announcement: a deletion is announced before the
        // server is done with it, see FIRST_REFOLLOW_DELAY).
        let stream = tokio::spawn(async move {
            bucket.follow_stream_changes(|| restart.notify_one()).await;
        });
        ViewTasks([keys, stream])
    }
}

/// Follows one bucket's keys until aborted, following again whenever the view ends (the
/// stream deleted, the connection lost) or is told to restart. A view that loads, or
/// that ends after having opened, asks for a pass: what changed in between was not
/// seen. So does finding the stream missing, once until it is back: the server's
/// deletion advisory can be lost (2.15.1 queues it to the stream's own sender and stops
/// that sender right after; measured, 11 deletions in 40 went unannounced). A view that
/// ended asks only after FIRST_REFOLLOW_DELAY, so that a pass never creates a deleted
/// bucket again while the server is still deleting it.
async fn follow_keys(
    connection: Connection,
    name: String,
    declared: watch::Receiver<Arc<Declared>>,
    drift: mpsc::UnboundedSender<String>,
    restart: Arc<Notify>,
) {
    let bucket = connection.bucket(&name);
    let mut delay = FIRST_REFOLLOW_DELAY;
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
        let mut missing = false;
        let restarted = tokio::select! {
            ended = following => {
                if let Err(error) = ended {
                    missing = error.is_stream_not_found() && !opened;
                    tracing::debug!(bucket = %name, %error, "bucket view ended; following again");
                }
                false
            }
            () = restart.notified() => true,
        };
        let asks = opened || (missing && !missing_said);
        if opened {
            missing_said = false;
            delay = FIRST_REFOLLOW_DELAY;
        }
        missing_said |= missing;
        tokio::time::sleep(if restarted {
            FIRST_REFOLLOW_DELAY
        } else {
            delay
        })
        .await;
        if asks {
            let _ = drift.send(name.clone());
        }
        if !restarted {
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
