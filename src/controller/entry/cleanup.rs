//! Removing an entry's key when the resource is deleted (`deletionPolicy`), behind the
//! `kvop.dev/cleanup` finalizer. The decision is the planner's (`decide_removal`: only
//! while the key still holds this manager's write for this entry) and the applier
//! carries it out like any other, conditional on the revision read and decided again
//! after a conflict. The finalizer stays (with `DeletionBlocked`) while NATS cannot be
//! reached.

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;

use super::{OneKey, apply_one};
use crate::api::{EntryDeletionPolicy, KeyValueBucket, KeyValueEntry};
use crate::apply::EntryResult;
use crate::controller::connection;
use crate::controller::context::Context;
use crate::controller::error::ControllerError;
use crate::controller::object_ref;
use crate::controller::status::{Verdict, with_conditions, write_if_changed};
use crate::nats::NatsError;
use crate::plan::{ClaimScope, EntryAction, Removal, decide_removal};

pub(super) async fn cleanup(
    entry: &KeyValueEntry,
    context: &Context,
    api: &Api<KeyValueEntry>,
) -> Result<Action, ControllerError> {
    // Going: nobody's rival any more, and those it refused may take its key.
    super::claims::forget(context, &crate::controller::object_ref(entry));
    let removal = match entry.spec.deletion_policy {
        EntryDeletionPolicy::Retain => return Ok(Action::await_change()),
        EntryDeletionPolicy::Delete => Removal::Delete,
        EntryDeletionPolicy::Purge => Removal::Purge,
    };
    // Never applied, or its bucket is gone: nothing to delete.
    let Some(status) = &entry.status else {
        return Ok(Action::await_change());
    };
    let (Some(bucket), Some(key)) = (status.bucket.clone(), status.key.clone()) else {
        return Ok(Action::await_change());
    };
    match remove_key(context, entry, &bucket, &key, removal).await {
        Ok(()) => Ok(Action::await_change()),
        Err(error) => {
            let verdict = Verdict {
                ready: false,
                reason: "DeletionBlocked",
                message: format!(
                    "cannot remove key {key:?} yet, the finalizer stays until it succeeds: {error}"
                ),
                synced: false,
            };
            let next = with_conditions(entry, status, status.clone(), &verdict);
            write_if_changed(api, entry, status, next).await?;
            Err(ControllerError::Nats(error))
        }
    }
}

/// Deletes or purges the key as `removal` says, while it holds this entry's write.
async fn remove_key(
    context: &Context,
    entry: &KeyValueEntry,
    bucket: &str,
    key: &str,
    removal: Removal,
) -> Result<(), NatsError> {
    let owner = object_ref(entry);
    let connection = entry_connection(context, entry).await?;
    let current = match connection.bucket(bucket).read_key(key).await {
        Ok(current) => current,
        Err(error) if error.is_stream_not_found() => return Ok(()),
        Err(error) => return Err(error),
    };
    let manager = &context.settings.manager;
    let owner_text = owner.to_string();
    let action = decide_removal(current.as_ref(), manager, Some(&owner_text), removal);
    let scope = ClaimScope::Object { released: None };
    let target = OneKey {
        bucket,
        key,
        owner: &owner,
    };
    match apply_one(context, &connection, target, &action, None, scope).await {
        EntryResult::Written { .. } => {
            context.metrics.nats_operation("delete", "ok");
            Ok(())
        }
        EntryResult::Settled(EntryAction::Retain { writer, .. }) => {
            context
                .publish(
                    entry,
                    EventType::Warning,
                    "KeyRetained",
                    format!("key {key:?} was last written by {writer}; it is left in place"),
                )
                .await;
            Ok(())
        }
        EntryResult::Settled(_) => Ok(()),
        EntryResult::Failed { error } => {
            context.metrics.nats_operation("delete", error.reason());
            Err(error)
        }
        EntryResult::NotAttempted { reason } => Err(NatsError::other(reason)),
    }
}

/// The connection of an entry's bucket, for cleanup: the bucket resource may be gone
/// already, and then its namespace's connection is the best guess (never another
/// namespace's: the key is removed only while it holds this entry's own write anyway).
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
                other => NatsError::other(other.to_string()).caused_by(other),
            }),
        None => {
            match connection::namespace_connection(context, &entry.namespace().unwrap_or_default())
            {
                Ok(None) => Ok(context.nats.clone()),
                Ok(Some(settings)) => context
                    .pool
                    .get(settings)
                    .await
                    .map(|(_, connection)| connection),
                Err(error) => Err(NatsError::other(error.to_string()).caused_by(error)),
            }
        }
    }
}
