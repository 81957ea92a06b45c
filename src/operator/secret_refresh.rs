//! Rotated Secrets, followed without listing or watching any: every interval, the
//! metadata (resource version only) of each Secret an object references is read by
//! name, and the objects that reference one that changed, appeared or went are
//! re-queued. The operator can so read only the Secrets objects name (RBAC `get`, no
//! `list` or `watch`), never enumerate the cluster's, and holds none of their contents
//! between reconciles.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use super::connection;
use super::context::Context;
use super::secret_reads::{Reader, SecretRef};
use crate::api::{KeyValueBucket, KeyValueEntry, KeyValueEntrySet};

/// Checks the referenced Secrets every interval until the triggers are gone: the
/// readers of one that differs from what they last read are re-queued.
pub async fn follow(
    context: Arc<Context>,
    bucket_trigger: UnboundedSender<ObjectRef<KeyValueBucket>>,
    entry_trigger: UnboundedSender<ObjectRef<KeyValueEntry>>,
    set_trigger: UnboundedSender<ObjectRef<KeyValueEntrySet>>,
) {
    let mut ticks = tokio::time::interval(context.settings.secret_refresh_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if bucket_trigger.is_closed() && entry_trigger.is_closed() && set_trigger.is_closed() {
            return;
        }
        let referenced = referenced(&context.buckets, &context.entries, &context.entry_sets);
        // Only Secrets read so far: the others are read when their objects reconcile.
        for secret in context.secret_versions.secrets(&referenced) {
            let (namespace, name) = &secret;
            let api: Api<PartialObjectMeta<Secret>> =
                Api::namespaced(context.client.clone(), namespace);
            let current = match api.get_metadata_opt(name).await {
                Ok(found) => found.and_then(|meta| meta.metadata.resource_version),
                // Unreachable now: try again at the next tick, re-queueing nothing.
                Err(error) => {
                    tracing::debug!(%error, secret = %format!("{namespace}/{name}"), "could not read a Secret's version");
                    continue;
                }
            };
            for reader in context.secret_versions.stale(&secret, &current) {
                tracing::debug!(secret = %format!("{namespace}/{name}"), ?reader, "a referenced Secret changed; re-queueing its reader");
                // A closed channel means the operator is stopping: nothing to re-queue.
                match reader {
                    Reader::Bucket(bucket) => drop(bucket_trigger.unbounded_send(bucket)),
                    Reader::Entry(entry) => drop(entry_trigger.unbounded_send(entry)),
                    Reader::EntrySet(set) => drop(set_trigger.unbounded_send(set)),
                }
            }
        }
    }
}

/// Every Secret an entry's `valueFrom`, a set's `from` or items, or a bucket's
/// `spec.connection` names.
fn referenced(
    buckets: &Store<KeyValueBucket>,
    entries: &Store<KeyValueEntry>,
    sets: &Store<KeyValueEntrySet>,
) -> BTreeSet<SecretRef> {
    let mut secrets = BTreeSet::new();
    for set in sets.state() {
        let namespace = set.namespace().unwrap_or_default();
        for name in crate::operator::entry_set::secret_names(&set.spec) {
            secrets.insert((namespace.clone(), name.to_string()));
        }
    }
    for entry in entries.state() {
        if let Some(reference) = entry
            .spec
            .value_from
            .as_ref()
            .and_then(|from| from.secret_key_ref.as_ref())
        {
            secrets.insert((
                entry.namespace().unwrap_or_default(),
                reference.name.clone(),
            ));
        }
    }
    for bucket in buckets.state() {
        if let Some(connection) = &bucket.spec.connection {
            for name in connection::secret_names(connection) {
                secrets.insert((bucket.namespace().unwrap_or_default(), name.to_string()));
            }
        }
    }
    secrets
}
