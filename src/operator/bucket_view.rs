//! A live view of each bucket resource: the NATS layer's live view of its bucket
//! (`nats::Bucket::follow`, one consumer per bucket, never one per entry) kept in memory.
//! Entry reconciles read it instead of NATS, and a change to a key by anyone else
//! re-queues the entry that declares it at once: drift is corrected in milliseconds, not
//! at the next resync.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::{KeyValueBucket, KeyValueEntry, KeyValueEntrySet};
use crate::nats::{Bucket, Change, Connection};
use crate::observed::{ObservedKey, Operation};

/// How long to wait before re-opening a failed view.
const REOPEN_DELAY: Duration = Duration::from_secs(2);

/// The last message of every key of one bucket, kept current by a watch.
pub struct BucketView {
    /// The creation time of the stream the view was opened for.
    created: String,
    keys: RwLock<HashMap<String, ObservedKey>>,
    current: AtomicBool,
    /// The highest revision the view has seen: a stream whose last revision is lower
    /// has gone backwards (restored from an older copy) under the view.
    highest_revision: AtomicU64,
    /// (seen, found) when the view reopened on a stream behind what it had seen.
    went_backwards: Mutex<Option<(u64, u64)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BucketView {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BucketView {
    /// The last message of `key`: `Some(None)` when the key has none, `None` when the
    /// view is not current (still loading, or reconnecting) and NATS must be asked.
    pub fn key(&self, key: &str) -> Option<Option<ObservedKey>> {
        if !self.current.load(Ordering::Acquire) {
            return None;
        }
        self.keys.read().ok().map(|keys| keys.get(key).cloned())
    }

    /// (highest revision seen, last revision found) if the view reopened on a stream
    /// that had gone backwards since; reported once.
    pub fn take_went_backwards(&self) -> Option<(u64, u64)> {
        self.went_backwards.lock().ok()?.take()
    }

    /// The creation time of the stream the view follows.
    pub fn created(&self) -> &str {
        &self.created
    }

    /// Whether the view follows the stream created at `created` (a bucket deleted and
    /// created again is another stream, whose revisions start over).
    pub fn follows(&self, created: &str) -> bool {
        self.created == created
    }

    /// The highest revision seen since the view started.
    pub fn highest_revision(&self) -> u64 {
        self.highest_revision.load(Ordering::Acquire)
    }

    /// Every key's last message, when current: a set's reconcile reads its bucket
    /// whole (a copy, so the view keeps taking changes meanwhile).
    pub fn snapshot(&self) -> Option<HashMap<String, ObservedKey>> {
        if !self.current.load(Ordering::Acquire) {
            return None;
        }
        self.keys.read().ok().map(|keys| keys.clone())
    }

    /// Live keys (last operation a put), when current.
    pub fn live_keys(&self) -> Option<u64> {
        if !self.current.load(Ordering::Acquire) {
            return None;
        }
        let keys = self.keys.read().ok()?;
        Some(
            keys.values()
                .filter(|key| key.operation == Operation::Put)
                .count() as u64,
        )
    }
}

/// What a view watches: the NATS bucket, the connection (pool key) and the creation
/// time of the bucket's stream.
type Watched = (String, u64, String);

/// A running view and what it watches.
type NamedView = (Watched, Arc<BucketView>);

/// Every bucket's view, by bucket resource.
pub struct BucketViews {
    views: Mutex<HashMap<ObjectRef<KeyValueBucket>, NamedView>>,
    trigger: UnboundedSender<ObjectRef<KeyValueEntry>>,
    bucket_trigger: UnboundedSender<ObjectRef<KeyValueBucket>>,
    entries: Store<KeyValueEntry>,
    sets: Option<SetRequeue>,
    manager: String,
}

/// Where the entry sets of a bucket are re-queued from, when the operator runs them.
#[derive(Clone)]
struct SetRequeue {
    trigger: UnboundedSender<ObjectRef<KeyValueEntrySet>>,
    sets: Store<KeyValueEntrySet>,
}

impl BucketViews {
    /// Views that re-queue entries from `entries` through `trigger`, and their bucket
    /// resource through `bucket_trigger` when the stream itself changes.
    pub fn new(
        trigger: UnboundedSender<ObjectRef<KeyValueEntry>>,
        bucket_trigger: UnboundedSender<ObjectRef<KeyValueBucket>>,
        entries: Store<KeyValueEntry>,
        manager: String,
    ) -> BucketViews {
        BucketViews {
            views: Mutex::new(HashMap::new()),
            trigger,
            bucket_trigger,
            entries,
            sets: None,
            manager,
        }
    }

    /// Views that also re-queue the entry sets of their bucket from `sets` through
    /// `trigger`: a set reads its bucket whole, so any foreign change may be its.
    pub fn with_sets(
        mut self,
        trigger: UnboundedSender<ObjectRef<KeyValueEntrySet>>,
        sets: Store<KeyValueEntrySet>,
    ) -> BucketViews {
        self.sets = Some(SetRequeue { trigger, sets });
        self
    }

    /// Re-queues one entry set (a key's holder, told of a rival or of its going).
    pub fn requeue_set(&self, set: ObjectRef<KeyValueEntrySet>) {
        if let Some(sets) = &self.sets {
            let _ = sets.trigger.unbounded_send(set);
        }
    }

    /// Re-queues one entry (a key's holder, told of a rival or of its going).
    pub fn requeue_entry(&self, entry: ObjectRef<KeyValueEntry>) {
        let _ = self.trigger.unbounded_send(entry);
    }

    /// The view of a bucket resource, started on first use, or again when its NATS
    /// bucket, its connection (a rotated credential makes a new one) or its stream changed.
    /// A stream deleted and created again (by kvop or anyone) has a new creation time: the
    /// old view's keys no longer exist, so a fresh view loads the new stream and re-queues
    /// every entry.
    pub fn ensure(
        &self,
        resource: &KeyValueBucket,
        connection: &Connection,
        bucket: &str,
        connection_key: u64,
        created: &str,
    ) -> Option<Arc<BucketView>> {
        let reference = ObjectRef::from_obj(resource);
        let watched: Watched = (bucket.to_string(), connection_key, created.to_string());
        let mut views = self.views.lock().ok()?;
        if let Some((current, view)) = views.get(&reference)
            && *current == watched
        {
            return Some(view.clone());
        }
        let keys = RwLock::new(HashMap::new());
        let current = AtomicBool::new(false);
        let highest_revision = AtomicU64::new(0);
        let watcher = Watcher {
            bucket: connection.bucket(bucket),
            resource: reference.clone(),
            trigger: self.trigger.clone(),
            bucket_trigger: self.bucket_trigger.clone(),
            entries: self.entries.clone(),
            sets: self.sets.clone(),
            manager: self.manager.clone(),
        };
        let view = Arc::new_cyclic(|weak: &std::sync::Weak<BucketView>| {
            let weak = weak.clone();
            BucketView {
                created: created.to_string(),
                keys,
                current,
                highest_revision,
                went_backwards: Mutex::new(None),
                task: tokio::spawn(async move { watcher.run(weak).await }),
            }
        });
        views.insert(reference, (watched, view.clone()));
        Some(view)
    }

    /// The view of a bucket resource, if one runs.
    pub fn get(&self, resource: &ObjectRef<KeyValueBucket>) -> Option<Arc<BucketView>> {
        self.views
            .lock()
            .ok()?
            .get(resource)
            .map(|(_, view)| view.clone())
    }

    /// Stops the view of a deleted bucket resource.
    pub fn remove(&self, resource: &ObjectRef<KeyValueBucket>) {
        if let Ok(mut views) = self.views.lock() {
            views.remove(resource);
        }
    }
}

/// The task behind a view.
struct Watcher {
    bucket: Bucket,
    resource: ObjectRef<KeyValueBucket>,
    trigger: UnboundedSender<ObjectRef<KeyValueEntry>>,
    bucket_trigger: UnboundedSender<ObjectRef<KeyValueBucket>>,
    entries: Store<KeyValueEntry>,
    sets: Option<SetRequeue>,
    manager: String,
}

impl Watcher {
    async fn run(self, view: std::sync::Weak<BucketView>) {
        let keys = async {
            loop {
                let followed = self.bucket.follow(|change| self.take(&view, change)).await;
                // The last content stays in use until the reopened view replaces it (and
                // re-queues every entry): entries that read NATS meanwhile would re-apply
                // lost writes before the reopen can see the stream went backwards, and
                // any decision on stale content is still caught by its revision check.
                let error = match followed {
                    Err(error) if view.upgrade().is_some() => error,
                    // The view was dropped.
                    _ => return,
                };
                if error.is_stream_not_found() {
                    self.requeue_bucket();
                } else {
                    tracing::warn!(bucket = %self.bucket.name(), %error, "bucket view interrupted; reopening");
                }
                tokio::time::sleep(REOPEN_DELAY).await;
            }
        };
        // Re-queues the bucket resource whenever the server announces a change to its
        // stream (updated or deleted by anyone, kvop included), so a configuration edited
        // or a bucket deleted behind kvop's back is repaired at once, not at the next
        // status refresh. Without permission to subscribe to advisories, the refresh
        // remains.
        let stream_changes = self.bucket.follow_stream_changes(|| self.requeue_bucket());
        tokio::select! {
            () = keys => {}
            () = stream_changes => {}
        }
    }

    /// Takes one change into the view; stops following once the view is dropped.
    fn take(&self, view: &std::sync::Weak<BucketView>, change: Change) -> ControlFlow<()> {
        let Some(alive) = view.upgrade() else {
            return ControlFlow::Break(());
        };
        match change {
            // A stream created again under the view (deleted and re-created by anyone):
            // its revisions start over, which is no rollback. The bucket reconcile
            // replaces the view with one for the new stream.
            Change::Opened(stream) if !alive.follows(&stream.stats.created) => {
                self.requeue_bucket();
                return ControlFlow::Break(());
            }
            Change::Opened(stream) => self.check_not_behind(&alive, stream.stats.last_revision),
            Change::Loaded(keys) => self.publish(&alive, keys),
            Change::Key { key, observed } => {
                let ours = observed.writer.is(&self.manager);
                alive
                    .highest_revision
                    .fetch_max(observed.revision, Ordering::AcqRel);
                if let Ok(mut keys) = alive.keys.write() {
                    keys.insert(key.clone(), observed);
                }
                // kvop's own writes need no second look; anyone else's change does.
                if !ours {
                    self.requeue(Some(&key));
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// A stream (same creation time, or the view would have been replaced) whose last
    /// revision is below one the view saw has lost writes: a server restored from an
    /// older copy of its store. Noted for the bucket reconcile, which reports it.
    fn check_not_behind(&self, alive: &BucketView, last: u64) {
        let seen = alive.highest_revision.load(Ordering::Acquire);
        if last < seen {
            if let Ok(mut noted) = alive.went_backwards.lock() {
                *noted = Some((seen, last));
            }
            self.requeue_bucket();
        }
    }

    fn requeue_bucket(&self) {
        let _ = self.bucket_trigger.unbounded_send(self.resource.clone());
    }

    /// Makes a freshly loaded map the view's content and re-queues every entry of the
    /// bucket, since changes may have been missed while the view was not current.
    fn publish(&self, alive: &BucketView, loaded: HashMap<String, ObservedKey>) {
        let highest = loaded.values().map(|key| key.revision).max().unwrap_or(0);
        alive.highest_revision.fetch_max(highest, Ordering::AcqRel);
        if let Ok(mut keys) = alive.keys.write() {
            *keys = loaded;
        }
        alive.current.store(true, Ordering::Release);
        self.requeue(None);
    }

    /// Re-queues the entries of this bucket that declare `key` (or all, for `None`), and
    /// its entry sets: which keys a set declares (its ConfigMaps' and Secrets') is known
    /// only once it reconciles, and one under its prefix may be its to remove.
    fn requeue(&self, key: Option<&str>) {
        if let Some(requeue) = &self.sets {
            for set in requeue.sets.state() {
                let same_bucket = set.namespace().as_deref() == self.resource.namespace.as_deref()
                    && set.spec.bucket_ref.name == self.resource.name;
                if same_bucket {
                    let _ = requeue.trigger.unbounded_send(ObjectRef::from_obj(&*set));
                }
            }
        }
        for entry in self.entries.state() {
            let same_bucket = entry.namespace().as_deref() == self.resource.namespace.as_deref()
                && entry.spec.bucket_ref.name == self.resource.name;
            let entry_key = entry.spec.key.clone().unwrap_or_else(|| entry.name_any());
            if same_bucket && key.is_none_or(|key| key == entry_key) {
                let _ = self.trigger.unbounded_send(ObjectRef::from_obj(&*entry));
            }
        }
    }
}
