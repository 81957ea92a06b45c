//! Deleting a bucket when its resource is deleted (`deletionPolicy: Delete`), behind the
//! `kvop.dev/cleanup` finalizer; kept (with `DeletionBlocked`) while NATS refuses.
//!
//! Only a bucket kvop created is deleted: kvop marks the streams it creates
//! (`kvop.dev/created-by` in the stream metadata). A bucket that existed before its
//! resource (adopted) is left in place with a `BucketRetained` warning, unless the
//! resource says `kvop.dev/delete-adopted: "true"`.

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;

use crate::api::{BucketDeletionPolicy, KeyValueBucket, ManagementPolicy};
use crate::controller::context::Context;
use crate::controller::error::ControllerError;
use crate::controller::status::{Verdict, with_conditions, write_if_changed};
use crate::controller::{connection, object_ref, origin};
use crate::nats::Deleted;
use crate::spec;

pub(super) async fn cleanup(
    bucket: &KeyValueBucket,
    context: &Context,
    api: &Api<KeyValueBucket>,
) -> Result<Action, ControllerError> {
    context.views.remove(&StoreRef::from_obj(bucket));
    let spec = &bucket.spec;
    let deletes = spec.deletion_policy == BucketDeletionPolicy::Delete
        && spec.management_policy == ManagementPolicy::Manage;
    if !deletes {
        return Ok(Action::await_change());
    }
    // A spec too invalid to name its bucket never created one.
    let Ok(desired) = spec::desired_bucket(object_ref(bucket), origin(bucket), bucket) else {
        return Ok(Action::await_change());
    };
    let (_, connection) = connection::for_bucket(context, bucket).await?;
    let handle = connection.bucket(&desired.name);
    let adopted = match handle.state().await {
        Ok(None) => return Ok(Action::await_change()),
        Ok(Some(stream)) => stream.created_by.is_none(),
        Err(error) => return Err(blocked(api, bucket, &desired.name, error.into()).await),
    };
    if adopted && !deletes_adopted(bucket) {
        context
            .publish(
                bucket,
                EventType::Warning,
                "BucketRetained",
                format!(
                    "bucket {:?} was not created by kvop, so deletionPolicy Delete leaves it; annotate the resource {DELETE_ADOPTED_ANNOTATION}=true before deleting it to delete the bucket too",
                    desired.name
                ),
            )
            .await;
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
