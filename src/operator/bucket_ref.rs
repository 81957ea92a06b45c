//! The bucket resource an entry or an entry set names (`spec.bucketRef`), found in the
//! operator's cache and waited for until it is ready, with its connection: what both
//! key-writing controllers need before they can decide anything; and the connection a
//! deleted one's cleanup uses, whose bucket resource may be gone.

use std::sync::Arc;

use kube::Resource;
use kube::runtime::reflector::ObjectRef as StoreRef;

use super::connection;
use super::context::Context;
use super::error::ControllerError;
use super::status::{PAUSED, READY};
use super::{object_ref, origin};
use crate::api::{ConditionStatus, KeyValueBucket};
use crate::desired::DesiredBucket;
use crate::nats::{Connection, NatsError};
use crate::spec;

/// The bucket resource `name` of `namespace`, as declared, and its connection, once it
/// is ready (`BucketNotReady` until then). `reader` records the Secrets the bucket's
/// `spec.connection` reads for whoever asks, so that a rotation re-queues it.
pub async fn ready_bucket(
    context: &Context,
    namespace: &str,
    name: &str,
    reader: &connection::Reader,
) -> Result<(Arc<KeyValueBucket>, DesiredBucket, Connection), ControllerError> {
    let reference = StoreRef::<KeyValueBucket>::new(name).within(namespace);
    let Some(bucket) = context.buckets.get(&reference) else {
        return Err(ControllerError::BucketNotReady(format!(
            "KeyValueBucket {namespace}/{name} does not exist"
        )));
    };
    // The connection first: while it is down the bucket is not ready either, and the
    // object should say why, not only that its bucket is not ready.
    let (_, nats) = connection::for_bucket(context, &bucket, reader).await?;
    nats.require_connected()?;
    // A paused bucket that exists takes its keys' writes: the pause holds back only the
    // bucket's own changes.
    let bucket_ready = bucket.status.as_ref().is_some_and(|status| {
        status.conditions.iter().any(|condition| {
            condition.type_ == READY
                && (condition.status == ConditionStatus::True
                    || (condition.reason == PAUSED && status.created.is_some()))
        })
    });
    if !bucket_ready || bucket.meta().deletion_timestamp.is_some() {
        return Err(ControllerError::BucketNotReady(format!(
            "KeyValueBucket {namespace}/{name} is not ready"
        )));
    }
    let desired =
        spec::desired_bucket(object_ref(&*bucket), origin(&*bucket), &bucket).map_err(|_| {
            ControllerError::BucketNotReady(format!(
                "KeyValueBucket {namespace}/{name} has an invalid spec"
            ))
        })?;
    Ok((bucket, desired, nats))
}

/// Why a departing object's connection cannot be made.
pub enum Unreachable {
    /// Its configuration is gone (a Secret, the namespace's rule): waiting changes nothing.
    ForGood(ControllerError),
    /// For now: try again.
    Now(NatsError),
}

/// The connection of a deleted object's bucket, for its cleanup: the bucket resource may
/// be gone already, and then its namespace's connection is the best guess (never another
/// namespace's: a key is removed only while it holds the object's own write anyway).
pub async fn departing_connection(
    context: &Context,
    namespace: &str,
    name: &str,
    reader: &connection::Reader,
) -> Result<Connection, Unreachable> {
    let classify = |error: ControllerError| match error {
        ControllerError::Nats(error) => Unreachable::Now(error),
        error @ (ControllerError::ReferenceNotFound(_) | ControllerError::Refused(_)) => {
            Unreachable::ForGood(error)
        }
        other => Unreachable::Now(NatsError::other(other.to_string()).caused_by(other)),
    };
    let reference = StoreRef::<KeyValueBucket>::new(name).within(namespace);
    match context.buckets.get(&reference) {
        Some(bucket) => connection::for_bucket(context, &bucket, reader)
            .await
            .map(|(_, connection)| connection)
            .map_err(classify),
        None => match connection::namespace_connection(context, namespace).map_err(classify)? {
            None => Ok(context.nats.clone()),
            Some(settings) => context
                .pool
                .get(settings)
                .await
                .map(|(_, connection)| connection)
                .map_err(Unreachable::Now),
        },
    }
}
