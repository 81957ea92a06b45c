//! What wakes a controller: a change someone made to an object, never kvop's own writes.
//! The watch of each kind passes an object on only when what kvop reads of it changed:
//! its generation (the spec), its annotations (pause, reconcile-now, adopt, take-over),
//! its finalizers or its deletion. A status write, which every reconcile may end with,
//! wakes nothing: it cost a second reconcile per object. kvop's own finalizer wakes a
//! kind that is finalized before its first apply (the patch starts that apply), and
//! nothing of a kind finalized right after it (`FirstApply`): there, its watch event
//! cost a second pass, which for a set of 1,000 keys rewrote its status (bench S1).

use std::hash::{DefaultHasher, Hash, Hasher};

use futures::{Stream, TryStreamExt};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};

use super::FINALIZER;
use super::finalizing::FirstApply;
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

/// The part of an object whose change deserves a reconcile, as a hash; kvop's own
/// finalizer is part of it unless the kind is finalized after its first apply.
pub fn declared<K: Resource>(object: &K, first_apply: FirstApply) -> Option<u64> {
    let meta = object.meta();
    let mut hasher = DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.finalizers
        .iter()
        .flatten()
        .filter(|name| first_apply == FirstApply::AfterFinalizer || *name != FINALIZER)
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
    first_apply: FirstApply,
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
        .predicate_filter(
            move |object: &K| declared(object, first_apply),
            Default::default(),
        );
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
    fn kvops_status_wakes_nothing_its_finalizer_only_kinds_finalized_first_and_the_rest_does() {
        let mut entry: KeyValueEntry = serde_json::from_value(serde_json::json!({
            "apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntry",
            "metadata": {"name": "e", "namespace": "n", "generation": 1, "resourceVersion": "1"},
            "spec": {"bucketRef": {"name": "b"}, "key": "k", "value": "v"}
        }))
        .expect("entry");
        for first_apply in [FirstApply::AfterFinalizer, FirstApply::BeforeFinalizer] {
            let declared = |entry: &KeyValueEntry| declared(entry, first_apply);
            entry.metadata.finalizers = None;
            let first = declared(&entry);
            entry.metadata.resource_version = Some("2".into());
            entry.status = Some(Default::default());
            assert_eq!(declared(&entry), first, "kvop's status write");
            entry.metadata.finalizers = Some(vec![FINALIZER.into()]);
            let finalized = declared(&entry);
            match first_apply {
                // The patch starts the first apply.
                FirstApply::AfterFinalizer => assert_ne!(finalized, first),
                // Added once the first apply is done: nothing to start.
                FirstApply::BeforeFinalizer => assert_eq!(finalized, first),
            }
            entry
                .metadata
                .finalizers
                .get_or_insert_default()
                .push("example.com/backup".into());
            let other = declared(&entry);
            assert_ne!(other, finalized, "another controller's finalizer");
            entry
                .metadata
                .annotations
                .get_or_insert_default()
                .insert("kvop.dev/paused".into(), "true".into());
            assert_ne!(declared(&entry), other, "a pause");
            let paused = declared(&entry);
            entry.metadata.generation = Some(2);
            assert_ne!(declared(&entry), paused, "a spec change");
            entry.metadata.generation = Some(1);
            entry.metadata.annotations = None;
        }
    }
}
