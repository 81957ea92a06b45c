//! The entry controller as `kvop run` starts it: what wakes an entry besides a change to
//! the entry itself. Its bucket resource changing (ready, spec, stream; never a
//! statistics refresh) and a ConfigMap its `valueFrom` names changing come from
//! watches `kvop run` shares with the set controller; a key of its bucket changed by
//! anyone else, a claim's holder or rival, a rotated Secret and a NATS reconnect come as
//! triggers.

use std::future::Future;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef as StoreRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::api::{KeyValueBucket, KeyValueEntry, ValueFrom};
use crate::operator::context::Context;
use crate::operator::error_policy;

/// What wakes entries, beyond their own changes.
pub struct Wakers<B, C, T> {
    /// Bucket resources whose entries must look again.
    pub bucket_changes: B,
    /// ConfigMaps that changed (metadata only: an entry reads the one it names when it
    /// reconciles).
    pub config_map_changes: C,
    /// Entries re-queued by name.
    pub triggered: T,
}

/// Runs the entry controller until `shutdown`.
pub fn run<B, C, T>(
    controller: Controller<KeyValueEntry>,
    wakers: Wakers<B, C, T>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    context: Arc<Context>,
) -> impl Future<Output = ()>
where
    B: Stream<Item = Result<KeyValueBucket, watcher::Error>> + Send + 'static,
    C: Stream<Item = Result<PartialObjectMeta<ConfigMap>, watcher::Error>> + Send + 'static,
    T: Stream<Item = StoreRef<KeyValueEntry>> + Send + 'static,
{
    let by_bucket = controller.store();
    let by_config_map = controller.store();
    controller
        .watches_stream(wakers.bucket_changes, move |bucket: KeyValueBucket| {
            let (namespace, name) = (bucket.namespace(), bucket.name_any());
            by_bucket
                .state()
                .into_iter()
                .filter(|entry| {
                    entry.namespace() == namespace && entry.spec.bucket_ref.name == name
                })
                .map(|entry| StoreRef::from_obj(&*entry))
                .collect::<Vec<_>>()
        })
        .watches_stream(
            wakers.config_map_changes,
            move |config_map: PartialObjectMeta<ConfigMap>| {
                referencing(&by_config_map, &config_map, |from| {
                    from.config_map_key_ref.as_ref().map(|r| r.name.as_str())
                })
            },
        )
        .reconcile_on(wakers.triggered)
        .graceful_shutdown_on(shutdown)
        .run(super::reconcile, error_policy::<KeyValueEntry>, context)
        .for_each(|_| async {})
}

/// Entries in the object's namespace whose `valueFrom` names it.
fn referencing<K: Resource>(
    entries: &Store<KeyValueEntry>,
    object: &K,
    name_of: impl Fn(&ValueFrom) -> Option<&str>,
) -> Vec<StoreRef<KeyValueEntry>> {
    let namespace = object.meta().namespace.clone();
    let name = object.meta().name.clone().unwrap_or_default();
    entries
        .state()
        .into_iter()
        .filter(|entry| {
            entry.namespace() == namespace
                && entry.spec.value_from.as_ref().and_then(&name_of) == Some(name.as_str())
        })
        .map(|entry| StoreRef::from_obj(&*entry))
        .collect()
}
