//! Deleting an entry's key when the resource is deleted (`deletionPolicy`), behind the
//! `kvop.dev/cleanup` finalizer: only while the key still holds this manager's write for
//! this entry, conditional on the revision read, and kept (with `DeletionBlocked`) while
//! NATS cannot be reached.

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;

use super::connection;
use super::context::Context;
use super::entry::{conditions, write_if_changed};
use super::error::ControllerError;
use super::object_ref;
use crate::api::{EntryDeletionPolicy, KeyValueBucket, KeyValueEntry};
use crate::nats::{NatsError, Write, WriteOp, WriteResult};
use crate::observed::Operation;

pub(super) async fn cleanup(
    entry: &KeyValueEntry,
    context: &Context,
    api: &Api<KeyValueEntry>,
) -> Result<Action, ControllerError> {
    if entry.spec.deletion_policy == EntryDeletionPolicy::Retain {
        return Ok(Action::await_change());
    }
    // Never applied, or its bucket is gone: nothing to delete.
    let Some(status) = &entry.status else {
        return Ok(Action::await_change());
    };
    let (Some(bucket), Some(key)) = (status.bucket.clone(), status.key.clone()) else {
        return Ok(Action::await_change());
    };
    match delete_key(context, entry, &bucket, &key).await {
        Ok(()) => Ok(Action::await_change()),
        Err(error) => {
            let previous = status.clone();
            let message = format!(
                "cannot remove key {key:?} yet, the finalizer stays until it succeeds: {error}"
            );
            let mut next = previous.clone();
            next.conditions = conditions(
                &previous,
                entry.metadata.generation,
                false,
                "DeletionBlocked",
                &message,
                false,
            );
            write_if_changed(api, entry, &previous, next).await?;
            Err(ControllerError::Nats(error))
        }
    }
}

/// Deletes or purges the key, conditional on the revision read, and only while its
/// current message was written by this manager for this entry.
async fn delete_key(
    context: &Context,
    entry: &KeyValueEntry,
    bucket: &str,
    key: &str,
) -> Result<(), NatsError> {
    let owner = object_ref(entry).to_string();
    let bucket = entry_connection(context, entry).await?.bucket(bucket);
    for _ in 0..=3 {
        let current = match bucket.read_key(key).await {
            Ok(Some(current)) => current,
            Ok(None) => return Ok(()),
            Err(error) if error.is_stream_not_found() => return Ok(()),
            Err(error) => return Err(error),
        };
        if current.operation != Operation::Put {
            return Ok(());
        }
        if !current.writer.is(&context.settings.manager)
            || current.writer.owner.as_deref() != Some(owner.as_str())
        {
            context
                .publish(
                    entry,
                    EventType::Warning,
                    "KeyRetained",
                    format!("key {key:?} was last written by someone else; it is left in place"),
                )
                .await;
            return Ok(());
        }
        let op = match entry.spec.deletion_policy {
            EntryDeletionPolicy::Purge => WriteOp::Purge,
            EntryDeletionPolicy::Delete | EntryDeletionPolicy::Retain => WriteOp::Delete,
        };
        let write = Write {
            key: key.to_string(),
            op,
            expected_revision: current.revision,
            owner: owner.clone(),
        };
        let result = bucket
            .write_all(&context.settings.manager, &[write], 1, || ())
            .await;
        match result.into_iter().next() {
            Some(WriteResult::Written { .. }) => {
                context.metrics.nats_operation("delete", "ok");
                return Ok(());
            }
            Some(WriteResult::Failed(NatsError::Conflict)) => continue,
            Some(WriteResult::Failed(error) | WriteResult::NotSent(error)) => return Err(error),
            None => return Err(NatsError::Other("the delete was not sent".into())),
        }
    }
    Err(NatsError::Conflict)
}

/// The connection of an entry's bucket, for cleanup: the bucket resource may be gone
/// already, and then the default connection is the best guess.
async fn entry_connection(
    context: &Context,
    entry: &KeyValueEntry,
) -> Result<crate::nats::Connection, NatsError> {
    let reference = StoreRef::<KeyValueBucket>::new(&entry.spec.bucket_ref.name)
        .within(&entry.namespace().unwrap_or_default());
    match context.buckets.get(&reference) {
        Some(bucket) => connection::for_bucket(context, &bucket)
            .await
            .map(|(_, connection)| connection)
            .map_err(|error| match error {
                ControllerError::Nats(error) => error,
                other => NatsError::Other(other.to_string()),
            }),
        None => Ok(context.nats.clone()),
    }
}
