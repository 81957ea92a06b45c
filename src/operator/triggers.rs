//! What wakes a controller: a change someone made to an object, never kvop's own writes.
//! The watch of each kind passes an object on only when what kvop reads of it changed:
//! its generation (the spec), its annotations (pause, reconcile-now, adopt, take-over),
//! other controllers' finalizers or its deletion. kvop's own writes wake nothing: a
//! status write, which every reconcile may end with, cost a second reconcile per object;
//! kvop's finalizer is added by the reconcile that applies, right after (`finalizing`),
//! and its watch event cost a second pass, which for a set of 1,000 keys rewrote its
//! status (bench S1). Someone taking kvop's finalizer off by hand is answered at the next
//! resync or change, not at once: that is how an object is let go without its cleanup.

use std::hash::{DefaultHasher, Hash, Hasher};

use futures::{Stream, TryStreamExt};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};

use super::FINALIZER;
use super::watch_retry::WatchRetry;

/// What a kind needs for kube's watcher and a store of it.
pub trait Watchable:
    Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watchable for K where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// The part of an object whose change deserves a reconcile, as a hash.
pub fn declared<K: Resource>(object: &K) -> Option<u64> {
    let meta = object.meta();
    let mut hasher = DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.finalizers
        .iter()
        .flatten()
        .filter(|name| *name != FINALIZER)
        .for_each(|name| name.hash(&mut hasher));
    meta.deletion_timestamp
        .as_ref()
        .map(|time| time.0.to_string())
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// The objects of `api` whose [`declared`] part changed, through a store the controller
/// reads from. `departed` hears of each object the watch sees deleted: one without a
/// finalizer is gone before any reconcile could see it go.
pub fn declared_changes<K>(
    api: Api<K>,
    config: watcher::Config,
    departed: impl Fn(&K) + Send + 'static,
) -> (
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    Store<K>,
)
where
    K: Watchable,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .backoff(WatchRetry::default())
        .reflect(writer)
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(object) = event {
                departed(object);
            }
        })
        .applied_objects()
        .predicate_filter(declared::<K>, Default::default());
    (stream, reader)
}

/// The objects of `api` that change, as metadata (name, namespace, versions): enough to
/// know which objects to re-queue, never their contents.
pub fn changed_metadata<K>(
    api: Api<PartialObjectMeta<K>>,
) -> impl Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: Watchable,
{
    watcher(api, watcher::Config::default().any_semantic()).touched_objects()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::KeyValueEntry;

    #[test]
    fn kvops_own_status_and_finalizer_wake_nothing_and_annotations_or_other_finalizers_do() {
        let mut entry: KeyValueEntry = serde_json::from_value(serde_json::json!({
            "apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntry",
            "metadata": {"name": "e", "namespace": "n", "generation": 1, "resourceVersion": "1"},
            "spec": {"bucketRef": {"name": "b"}, "key": "k", "value": "v"}
        }))
        .expect("entry");
        let first = declared(&entry);
        entry.metadata.resource_version = Some("2".into());
        entry.status = Some(Default::default());
        assert_eq!(declared(&entry), first, "kvop's status write");
        entry.metadata.finalizers = Some(vec![FINALIZER.into()]);
        assert_eq!(
            declared(&entry),
            first,
            "kvop's finalizer, added as it applies"
        );
        entry
            .metadata
            .finalizers
            .get_or_insert_default()
            .push("example.com/backup".into());
        let finalized = declared(&entry);
        assert_ne!(finalized, first, "another controller's finalizer");
        entry
            .metadata
            .annotations
            .get_or_insert_default()
            .insert("kvop.dev/paused".into(), "true".into());
        assert_ne!(declared(&entry), finalized, "a pause");
        let paused = declared(&entry);
        entry.metadata.generation = Some(2);
        assert_ne!(declared(&entry), paused, "a spec change");
    }
}
