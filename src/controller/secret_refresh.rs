//! Rotated Secrets, followed without listing or watching any: every interval, the
//! metadata (resource version only) of each Secret an object references is read by
//! name, and the objects that reference one that changed, appeared or went are
//! re-queued. The operator can so read only the Secrets objects name (RBAC `get`, no
//! `list` or `watch`), never enumerate the cluster's, and holds none of their contents
//! between reconciles.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use super::connection;
use super::context::Context;
use crate::api::{KeyValueBucket, KeyValueEntry};

/// A Secret by namespace and name.
type SecretRef = (String, String);

/// The version of each Secret that reconciles last read (`None`: it did not exist), so
/// that a rotation between that read and the next check is not missed.
#[derive(Default)]
pub struct ReadVersions {
    read: Mutex<HashMap<SecretRef, Option<String>>>,
}

impl ReadVersions {
    /// Records what a reconcile read of `namespace/name`.
    pub fn record(&self, namespace: &str, name: &str, version: Option<String>) {
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        read.insert((namespace.to_string(), name.to_string()), version);
    }

    fn get(&self, secret: &SecretRef) -> Option<Option<String>> {
        let read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        read.get(secret).cloned()
    }

    fn retain(&self, keep: &BTreeSet<SecretRef>) {
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        read.retain(|secret, _| keep.contains(secret));
    }
}

/// Checks the referenced Secrets every interval until the triggers are gone: one that
/// differs from what its readers last read re-queues them.
pub async fn follow(
    context: Arc<Context>,
    bucket_trigger: UnboundedSender<ObjectRef<KeyValueBucket>>,
    entry_trigger: UnboundedSender<ObjectRef<KeyValueEntry>>,
) {
    let mut ticks = tokio::time::interval(context.settings.secret_refresh_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if bucket_trigger.is_closed() && entry_trigger.is_closed() {
            return;
        }
        let (buckets, entries) = (&context.buckets, &context.entries);
        let referenced = referenced(buckets, entries);
        context.secret_versions.retain(&referenced);
        for secret in &referenced {
            // Not read yet: the objects read it when they first reconcile.
            let Some(read) = context.secret_versions.get(secret) else {
                continue;
            };
            let (namespace, name) = secret;
            let api: Api<PartialObjectMeta<Secret>> =
                Api::namespaced(context.client.clone(), namespace);
            let version = match api.get_metadata_opt(name).await {
                Ok(found) => found.and_then(|meta| meta.metadata.resource_version),
                // Unreachable now: try again at the next tick, re-queueing nothing.
                Err(error) => {
                    tracing::debug!(%error, secret = %format!("{namespace}/{name}"), "could not read a Secret's version");
                    continue;
                }
            };
            if read != version {
                tracing::debug!(secret = %format!("{namespace}/{name}"), "a referenced Secret changed; re-queueing its readers");
                requeue(secret, buckets, entries, &bucket_trigger, &entry_trigger);
            }
        }
    }
}

/// Every Secret an entry's `valueFrom` or a bucket's `spec.connection` names.
fn referenced(
    buckets: &Store<KeyValueBucket>,
    entries: &Store<KeyValueEntry>,
) -> BTreeSet<SecretRef> {
    let mut secrets = BTreeSet::new();
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

/// Re-queues the objects that reference `secret` (entries of a bucket whose connection
/// changed follow through the bucket's status).
fn requeue(
    secret: &SecretRef,
    buckets: &Store<KeyValueBucket>,
    entries: &Store<KeyValueEntry>,
    bucket_trigger: &UnboundedSender<ObjectRef<KeyValueBucket>>,
    entry_trigger: &UnboundedSender<ObjectRef<KeyValueEntry>>,
) {
    let (namespace, name) = secret;
    for entry in entries.state() {
        let names_it = entry
            .spec
            .value_from
            .as_ref()
            .and_then(|from| from.secret_key_ref.as_ref())
            .is_some_and(|reference| &reference.name == name);
        if names_it && entry.namespace().as_ref() == Some(namespace) {
            let _ = entry_trigger.unbounded_send(ObjectRef::from_obj(&*entry));
        }
    }
    for bucket in buckets.state() {
        let names_it = bucket.spec.connection.as_ref().is_some_and(|connection| {
            connection::secret_names(connection).contains(&name.as_str())
        });
        if names_it && bucket.namespace().as_ref() == Some(namespace) {
            let _ = bucket_trigger.unbounded_send(ObjectRef::from_obj(&*bucket));
        }
    }
}
