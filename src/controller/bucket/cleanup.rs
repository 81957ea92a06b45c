//! Deleting a bucket when its resource is deleted (`deletionPolicy: Delete`), behind the
//! `kvop.dev/cleanup` finalizer; kept (with `DeletionBlocked`) while NATS refuses.
//!
//! Deletion acts only under the resource's own claim (`kvop.dev/claim-*` in the stream
//! metadata): a bucket another object holds is never deleted. Of its own, only a bucket
//! kvop created is deleted (`kvop.dev/created-by`); one that existed before its
//! resource (adopted) is left in place with a `BucketRetained` warning, unless the
//! resource says `kvop.dev/delete-adopted: "true"`. `Retain` releases the claim, so
//! another resource may take the bucket over.

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;

use crate::api::{BucketDeletionPolicy, KeyValueBucket, ManagementPolicy};
use crate::controller::context::Context;
use crate::controller::error::ControllerError;
use crate::controller::status::{Verdict, with_conditions, write_if_changed};
use crate::controller::{connection, object_ref, origin};
use crate::desired::BucketClaim;
use crate::nats::Deleted;
use crate::spec;

pub(super) async fn cleanup(
    bucket: &KeyValueBucket,
    context: &Context,
    api: &Api<KeyValueBucket>,
) -> Result<Action, ControllerError> {
    context.views.remove(&StoreRef::from_obj(bucket));
    // Its CRD is being deleted (and with it every bucket resource): buckets stay.
    if crate::controller::crd_gone::crd_going::<KeyValueBucket>(&context.client).await {
        return Ok(Action::await_change());
    }
    let spec = &bucket.spec;
    if spec.management_policy == ManagementPolicy::Observe {
        return Ok(Action::await_change());
    }
    // A spec too invalid to name its bucket never created one.
    let Ok(desired) = spec::desired_bucket(object_ref(bucket), origin(bucket), bucket) else {
        return Ok(Action::await_change());
    };
    let connection = match connection::for_bucket(
        context,
        bucket,
        &connection::Reader::Bucket(StoreRef::from_obj(bucket)),
    )
    .await
    {
        Ok((_, connection)) => connection,
        // Its connection is gone for good (a Secret deleted with its namespace, a
        // namespace the administrator no longer lists): the data stays, nothing falls
        // back to another identity, and the object is let go.
        Err(error @ (ControllerError::ReferenceNotFound(_) | ControllerError::Refused(_))) => {
            warn(
                context,
                bucket,
                "BucketRetained",
                format!(
                    "bucket {:?} is kept: its connection cannot be made any more ({error})",
                    desired.name
                ),
            )
            .await;
            return Ok(Action::await_change());
        }
        Err(error) => return Err(error),
    };
    let handle = connection.bucket(&desired.name);
    let ours = BucketClaim {
        manager: context.settings.manager.clone(),
        owner: object_ref(bucket).to_string(),
        uid: bucket.metadata.uid.clone(),
    };
    if spec.deletion_policy == BucketDeletionPolicy::Retain {
        // Kept: its claim goes with the resource, so another may take the bucket over.
        // Best effort: keeping data never waits for NATS (a claim left behind passes on
        // anyway once its resource is gone).
        if let Err(error) = handle.release(&ours).await {
            warn(context, bucket, "ClaimNotReleased", format!(
                        "bucket {:?} is kept; its claim could not be removed from the stream metadata: {error}",
                        desired.name
                    ))
            .await;
        }
        return Ok(Action::await_change());
    }
    let stream = match handle.state().await {
        Ok(None) => return Ok(Action::await_change()),
        Ok(Some(stream)) => stream,
        Err(error) => return Err(blocked(api, bucket, &desired.name, error.into()).await),
    };
    // Deletion acts only under the deleting object's own claim (or, for a bucket made
    // before claims, kvop's mark): another object's bucket is never touched.
    let holds = match &stream.claim {
        Some(held) => held.manager == ours.manager && held.owner == ours.owner,
        None => {
            stream.created_by.as_deref() == Some(ours.manager.as_str()) || deletes_adopted(bucket)
        }
    };
    if !holds {
        let holder = stream.claim.as_ref().map_or_else(
            || "nobody (kvop did not create it)".to_string(),
            ToString::to_string,
        );
        warn(
            context,
            bucket,
            "BucketRetained",
            format!(
                "bucket {:?} is left as it is: it is held by {holder}, not by this resource",
                desired.name
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    let adopted = stream.created_by.is_none();
    if adopted && !deletes_adopted(bucket) {
        warn(context, bucket, "BucketRetained", format!(
                    "bucket {:?} was not created by kvop, so deletionPolicy Delete leaves it; annotate the resource {DELETE_ADOPTED_ANNOTATION}=true before deleting it to delete the bucket too",
                    desired.name
                ))
        .await;
        let _ = handle.release(&ours).await;
        return Ok(Action::await_change());
    }
    match handle.delete().await {
        Ok(Deleted::Missing) => Ok(Action::await_change()),
        Ok(Deleted::Deleted) => {
            context.metrics.nats_operation("delete_bucket", "ok");
            context
                .publish(
                    bucket,
                    EventType::Normal,
                    "Deleted",
                    format!("deleted bucket {:?} (deletionPolicy Delete)", desired.name),
                )
                .await;
            Ok(Action::await_change())
        }
        Err(error) => {
            context.metrics.nats_operation("delete_bucket", "error");
            Err(blocked(api, bucket, &desired.name, error.into()).await)
        }
    }
}

/// A Warning Event about the bucket resource (a bucket left as it is, and why).
async fn warn(context: &Context, bucket: &KeyValueBucket, reason: &str, note: String) {
    context
        .publish(bucket, EventType::Warning, reason, note)
        .await;
}

/// The annotation that lets `deletionPolicy: Delete` delete a bucket kvop did not create.
pub const DELETE_ADOPTED_ANNOTATION: &str = "kvop.dev/delete-adopted";

fn deletes_adopted(bucket: &KeyValueBucket) -> bool {
    bucket
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(DELETE_ADOPTED_ANNOTATION))
        .is_some_and(|value| value == "true")
}

/// Writes `DeletionBlocked` and returns the error (or the status write's).
async fn blocked(
    api: &Api<KeyValueBucket>,
    bucket: &KeyValueBucket,
    name: &str,
    error: ControllerError,
) -> ControllerError {
    let previous = bucket.status.clone().unwrap_or_default();
    let verdict = Verdict {
        ready: false,
        reason: "DeletionBlocked",
        message: format!(
            "cannot delete bucket {name:?} yet, the finalizer stays until it succeeds: {error}"
        ),
        synced: false,
    };
    let status = with_conditions(bucket, &previous, previous.clone(), &verdict);
    match write_if_changed(api, bucket, &previous, status).await {
        Ok(()) => error,
        Err(write) => write.into(),
    }
}
