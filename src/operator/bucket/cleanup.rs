//! A bucket resource's departure, behind the `kvop.dev/cleanup` finalizer: gathers what
//! the decision needs (the resource's policies and claim, its connection), has the pass
//! plan it (`plan_bucket_removal`: the stream read when it matters, then delete, release
//! the claim, or leave the bucket) and `apply` carry it out, and reports it. A failed
//! delete keeps the finalizer (with `DeletionBlocked`) until NATS accepts it; a bucket
//! left in place is a `BucketRetained` warning.

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;

use crate::api::KeyValueBucket;
use crate::apply::{Removed, apply_bucket_removal};
use crate::desired::BucketClaim;
use crate::operator::context::Context;
use crate::operator::error::ControllerError;
use crate::operator::status::{Verdict, with_conditions, write_if_changed};
use crate::operator::{connection, object_ref, origin};
use crate::pass::plan_bucket_removal;
use crate::plan::{BucketRemoval, Departure};
use crate::spec::{self, DELETE_ADOPTED_ANNOTATION};

pub(super) async fn cleanup(
    bucket: &KeyValueBucket,
    context: &Context,
    api: &Api<KeyValueBucket>,
) -> Result<Action, ControllerError> {
    context.views.remove(&StoreRef::from_obj(bucket));
    // Its CRD is being deleted (and with it every bucket resource): buckets stay.
    if crate::operator::crd_gone::crd_going::<KeyValueBucket>(&context.client).await {
        return Ok(Action::await_change());
    }
    let spec = &bucket.spec;
    let departure = Departure {
        management: spec.management_policy,
        deletion: spec.deletion_policy,
        delete_adopted: deletes_adopted(bucket),
        claim: BucketClaim {
            manager: context.settings.manager.clone(),
            owner: object_ref(bucket).to_string(),
            uid: bucket.metadata.uid.clone(),
        },
    };
    // Nothing to do in NATS (Observe: never claimed): the resource goes without a
    // connection.
    if !departure.touches_nats() {
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
    let removal = match plan_bucket_removal(&handle, &departure).await {
        Ok(removal) => removal,
        Err(error) => return Err(blocked(api, bucket, &desired.name, error.into()).await),
    };
    if let BucketRemoval::KeepAdopted | BucketRemoval::HeldElsewhere { .. } = &removal {
        let note = format!(
            "bucket {:?} is left as it is: {}",
            desired.name,
            removal.explain()
        );
        warn(context, bucket, "BucketRetained", note).await;
    }
    match apply_bucket_removal(&handle, &removal, &departure.claim).await {
        Ok(Removed::Deleted) => {
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
        Ok(Removed::AlreadyGone | Removed::Released | Removed::Untouched) => {
            Ok(Action::await_change())
        }
        Err(error) if removal == BucketRemoval::Delete => {
            context.metrics.nats_operation("delete_bucket", "error");
            Err(blocked(api, bucket, &desired.name, error.into()).await)
        }
        // Keeping data never waits for NATS: a claim left behind passes on anyway once
        // its resource is gone (`holders::gone`).
        Err(error) => {
            warn(context, bucket, "ClaimNotReleased", format!(
                "bucket {:?} is kept; its claim could not be removed from the stream metadata: {error}",
                desired.name
            ))
            .await;
            Ok(Action::await_change())
        }
    }
}

/// A Warning Event about the bucket resource (a bucket left as it is, and why).
async fn warn(context: &Context, bucket: &KeyValueBucket, reason: &str, note: String) {
    context
        .publish(bucket, EventType::Warning, reason, note)
        .await;
}

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
