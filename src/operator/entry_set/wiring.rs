//! The set controller as `kvop run` starts it: what wakes a set besides a change to the
//! set itself. Its bucket resource changing (ready, spec, stream) and a ConfigMap it
//! reads changing come from the entry controller's watches (no second watch of either);
//! a key of its bucket changed by anyone else, a claim's holder or rival, a rotated
//! Secret and a NATS reconnect come as triggers.

use std::future::Future;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef as StoreRef;
use kube::runtime::watcher;

use crate::api::{KeyValueBucket, KeyValueEntrySet};
use crate::operator::context::Context;
use crate::operator::error_policy;

/// What wakes sets, beyond their own changes.
pub struct Wakers<B, C, T> {
    /// Bucket resources whose keys' readers must look again.
    pub bucket_changes: B,
    /// ConfigMaps that changed (metadata only).
    pub config_map_changes: C,
    /// Sets re-queued by name.
    pub triggered: T,
}

/// Runs the set controller until `shutdown`.
pub fn run<B, C, T>(
    controller: Controller<KeyValueEntrySet>,
    wakers: Wakers<B, C, T>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    context: Arc<Context>,
) -> impl Future<Output = ()>
where
    B: Stream<Item = KeyValueBucket> + Send + 'static,
    C: Stream<Item = PartialObjectMeta<ConfigMap>> + Send + 'static,
    T: Stream<Item = StoreRef<KeyValueEntrySet>> + Send + 'static,
{
    let by_bucket = controller.store();
    let by_config_map = controller.store();
    controller
        .watches_stream(
            wakers.bucket_changes.map(Ok::<_, watcher::Error>),
            move |bucket: KeyValueBucket| {
                let (namespace, name) = (bucket.namespace(), bucket.name_any());
                by_bucket
                    .state()
                    .into_iter()
                    .filter(|set| set.namespace() == namespace && set.spec.bucket_ref.name == name)
                    .map(|set| StoreRef::from_obj(&*set))
                    .collect::<Vec<_>>()
            },
        )
        // A changed ConfigMap re-queues the sets that read it, whole or one key of it.
        .watches_stream(
            wakers.config_map_changes.map(Ok::<_, watcher::Error>),
            move |config_map: PartialObjectMeta<ConfigMap>| {
                let (namespace, name) = (config_map.namespace(), config_map.name_any());
                by_config_map
                    .state()
                    .into_iter()
                    .filter(|set| {
                        set.namespace() == namespace && super::reads_config_map(&set.spec, &name)
                    })
                    .map(|set| StoreRef::from_obj(&*set))
                    .collect::<Vec<_>>()
            },
        )
        .reconcile_on(wakers.triggered)
        .graceful_shutdown_on(shutdown)
        .run(super::reconcile, error_policy::<KeyValueEntrySet>, context)
        .for_each(|_| async {})
}
