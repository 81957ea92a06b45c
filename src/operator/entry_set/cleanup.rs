//! Removing a set's keys when the resource is deleted (`deletionPolicy`), behind the
//! `kvop.dev/cleanup` finalizer. The pass plans it (`plan_set_removal`: every key whose
//! last message is the set's own write, found by one sweep of the bucket; a key written
//! since by anyone else is left) and the applier carries it out, conditional on the
//! revisions read. The finalizer stays (with `DeletionBlocked`) while NATS refuses.

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;

use super::observe::SweptBucket;
use super::report::removal_op;
use super::resolve::owner_of;
use crate::api::{EntryDeletionPolicy, KeyValueEntrySet};
use crate::apply::{ApplyOptions, EntryResult, apply};
use crate::nats::{Connection, DEFAULT_WINDOW, NatsError};
use crate::operator::bucket_ref::{Unreachable, departing_connection};
use crate::operator::connection;
use crate::operator::context::Context;
use crate::operator::error::ControllerError;
use crate::operator::finalizing::deletion_blocked;
use crate::operator::origin;
use crate::pass::plan_set_removal;
use crate::plan::{EntryAction, Removal};

/// `set` as its first apply left it, for a cleanup when it was deleted before its
/// finalizer went on (`Step::Abandoned`): its bucket, found again from its spec.
/// Unchanged when that cannot be resolved: then it wrote nothing.
pub(super) async fn as_applied(set: &KeyValueEntrySet, context: &Context) -> KeyValueEntrySet {
    let mut set = set.clone();
    if let Ok(resolved) = super::resolve::resolve(&set, context).await {
        set.status.get_or_insert_default().bucket = Some(resolved.bucket.name);
    }
    set
}

pub(super) async fn cleanup(
    set: &KeyValueEntrySet,
    context: &Context,
    api: &Api<KeyValueEntrySet>,
) -> Result<Action, ControllerError> {
    // Going: nobody's rival any more, and those it refused may take its keys.
    super::claims::forget(context, &owner_of(set));
    // Its CRD is being deleted (and with it every set): keys stay as they are.
    if crate::operator::crd_gone::crd_going::<KeyValueEntrySet>(&context.client).await {
        return Ok(Action::await_change());
    }
    let removal = match set.spec.deletion_policy {
        EntryDeletionPolicy::Retain => return Ok(Action::await_change()),
        EntryDeletionPolicy::Delete => Removal::Delete,
        EntryDeletionPolicy::Purge => Removal::Purge,
    };
    // Never applied: it wrote nothing.
    let Some(status) = &set.status else {
        return Ok(Action::await_change());
    };
    let Some(bucket) = status.bucket.clone() else {
        return Ok(Action::await_change());
    };
    let reader = connection::Reader::EntrySet(StoreRef::from_obj(set));
    let namespace = set.namespace().unwrap_or_default();
    let departing = departing_connection(context, &namespace, &set.spec.bucket_ref.name, &reader);
    let connection = match departing.await {
        Ok(connection) => connection,
        // Its connection is gone for good: the keys stay, and the set is let go.
        Err(Unreachable::ForGood(error)) => {
            context
                .publish(
                    set,
                    EventType::Warning,
                    "KeyRetained",
                    format!(
                        "the set's keys are kept: its connection cannot be made any more ({error})"
                    ),
                )
                .await;
            return Ok(Action::await_change());
        }
        Err(Unreachable::Now(error)) => {
            return Err(deletion_blocked(api, set, status, "the set's keys", error).await);
        }
    };
    match remove_keys(context, set, &connection, &bucket, removal).await {
        Ok(()) => Ok(Action::await_change()),
        Err(error) => Err(deletion_blocked(api, set, status, "the set's keys", error).await),
    }
}

/// Deletes or purges every key holding the set's own write, as `removal` says.
async fn remove_keys(
    context: &Context,
    set: &KeyValueEntrySet,
    connection: &Connection,
    bucket: &str,
    removal: Removal,
) -> Result<(), NatsError> {
    let manager = &context.settings.manager;
    let source = SweptBucket { connection, bucket };
    let planned = plan_set_removal(
        &source,
        bucket,
        &owner_of(set),
        &origin(set),
        removal,
        manager,
    )
    .await?;
    let options = ApplyOptions {
        manager: manager.clone(),
        scope: planned.scope,
        window: DEFAULT_WINDOW,
        ride_out: false,
    };
    let outcome = apply(
        connection,
        &planned.plan,
        &planned.desired,
        &options,
        &|| (),
    )
    .await;
    let mut retained = 0;
    let mut failure = None;
    for entry in outcome.buckets.iter().flat_map(|bucket| &bucket.entries) {
        match &entry.result {
            EntryResult::Settled(EntryAction::Retain { .. }) => retained += 1,
            EntryResult::Failed { error } => {
                context.metrics.nats_operation("delete", error.reason());
                failure.get_or_insert_with(|| error.clone());
            }
            EntryResult::NotAttempted { reason } => {
                failure.get_or_insert_with(|| NatsError::other(reason.to_string()));
            }
            result => {
                if let Some(op) = removal_op(result) {
                    context.metrics.nats_operation(op, "ok");
                }
            }
        }
    }
    if retained > 0 {
        context
            .publish(
                set,
                EventType::Warning,
                "KeyRetained",
                format!("{retained} of the set's keys were written by someone else since; they are left in place"),
            )
            .await;
    }
    failure.map_or(Ok(()), Err)
}
