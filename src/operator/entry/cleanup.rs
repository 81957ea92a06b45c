//! Removing an entry's key when the resource is deleted (`deletionPolicy`), behind the
//! `kvop.dev/cleanup` finalizer. The pass plans it (`plan_key_removal`: only while the
//! key still holds this manager's write for this entry) and the applier carries it out
//! like any other, conditional on the revision read and decided again after a conflict.
//! The finalizer stays (with `DeletionBlocked`) while NATS cannot be reached.

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;

use super::apply_one;
use super::observe::LeaderKey;
use crate::api::{EntryDeletionPolicy, KeyValueEntry};
use crate::apply::EntryResult;
use crate::nats::NatsError;
use crate::operator::bucket_ref::{Unreachable, departing_connection};
use crate::operator::connection;
use crate::operator::context::Context;
use crate::operator::error::ControllerError;
use crate::operator::finalizing::deletion_blocked;
use crate::operator::{object_ref, origin};
use crate::pass::{DepartedKey, plan_key_removal};
use crate::plan::{EntryAction, Removal};

/// `entry` as its first apply left it, for a cleanup when it was deleted before its
/// finalizer went on (`Step::Abandoned`): where it wrote, found again from its spec.
/// Unchanged when that cannot be resolved: then it wrote nothing.
pub(super) async fn as_applied(entry: &KeyValueEntry, context: &Context) -> KeyValueEntry {
    let mut entry = entry.clone();
    if let Ok(resolved) = super::resolve::resolve(&entry, context).await {
        let status = entry.status.get_or_insert_default();
        status.bucket = Some(resolved.bucket.name);
        status.key = Some(resolved.entry.key.to_string());
    }
    entry
}

pub(super) async fn cleanup(
    entry: &KeyValueEntry,
    context: &Context,
    api: &Api<KeyValueEntry>,
) -> Result<Action, ControllerError> {
    // Going: nobody's rival any more, and those it refused may take its key.
    super::claims::forget(context, &object_ref(entry));
    // Its CRD is being deleted (and with it every entry): keys stay as they are.
    if crate::operator::crd_gone::crd_going::<KeyValueEntry>(&context.client).await {
        return Ok(Action::await_change());
    }
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
    let reader = connection::Reader::Entry(StoreRef::from_obj(entry));
    let namespace = entry.namespace().unwrap_or_default();
    let departing = departing_connection(context, &namespace, &entry.spec.bucket_ref.name, &reader);
    let connection = match departing.await {
        Ok(connection) => connection,
        // Its connection is gone for good (a Secret deleted with its namespace, a
        // namespace the administrator no longer lists): the key stays, nothing falls
        // back to another identity, and the entry is let go.
        Err(Unreachable::ForGood(error)) => {
            context
                .publish(
                    entry,
                    EventType::Warning,
                    "KeyRetained",
                    format!(
                        "key {key:?} is kept: its connection cannot be made any more ({error})"
                    ),
                )
                .await;
            return Ok(Action::await_change());
        }
        Err(Unreachable::Now(error)) => {
            return Err(deletion_blocked(api, entry, status, &format!("key {key:?}"), error).await);
        }
    };
    match remove_key(context, entry, &connection, &bucket, &key, removal).await {
        Ok(()) => Ok(Action::await_change()),
        Err(error) => {
            Err(deletion_blocked(api, entry, status, &format!("key {key:?}"), error).await)
        }
    }
}

/// Deletes or purges the key as `removal` says, while it holds this entry's write: the
/// pass plans it from the stream leader, apply carries it out.
async fn remove_key(
    context: &Context,
    entry: &KeyValueEntry,
    connection: &crate::nats::Connection,
    bucket: &str,
    key: &str,
    removal: Removal,
) -> Result<(), NatsError> {
    let owner = object_ref(entry);
    let source = LeaderKey {
        connection,
        bucket,
        key,
    };
    let departed = DepartedKey {
        bucket,
        key,
        owner: &owner,
        origin: origin(entry),
        removal,
    };
    let planned = plan_key_removal(&source, departed, &context.settings.manager).await?;
    match apply_one(context, connection, &planned).await {
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
