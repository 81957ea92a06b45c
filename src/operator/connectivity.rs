//! A lost NATS connection reported at once: when the default connection goes down or
//! comes back, every bucket, entry and entry set is reconciled again. A reconcile checks the
//! connection before anything else, so conditions say "not connected to NATS" within a
//! moment of the loss, instead of staying `Ready` until some request times out (entries
//! read their bucket's live view, which never asks NATS), and recover as soon as it is
//! back.

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::watch;

use crate::api::{KeyValueBucket, KeyValueEntry, KeyValueEntrySet};

/// Re-queues everything on each change of `connected`; runs until the sender is gone.
pub async fn requeue_on_change(
    mut connected: watch::Receiver<bool>,
    buckets: Store<KeyValueBucket>,
    entries: Store<KeyValueEntry>,
    bucket_trigger: UnboundedSender<ObjectRef<KeyValueBucket>>,
    entry_trigger: UnboundedSender<ObjectRef<KeyValueEntry>>,
    sets: (
        Store<KeyValueEntrySet>,
        UnboundedSender<ObjectRef<KeyValueEntrySet>>,
    ),
) {
    let (sets, set_trigger) = sets;
    while connected.changed().await.is_ok() {
        for bucket in buckets.state() {
            let _ = bucket_trigger.unbounded_send(ObjectRef::from_obj(&*bucket));
        }
        for entry in entries.state() {
            let _ = entry_trigger.unbounded_send(ObjectRef::from_obj(&*entry));
        }
        for set in sets.state() {
            let _ = set_trigger.unbounded_send(ObjectRef::from_obj(&*set));
        }
    }
}
