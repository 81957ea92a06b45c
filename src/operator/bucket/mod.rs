//! The `KeyValueBucket` controller. A reconcile runs these steps:
//! 1. resolve: validate the spec (the same rules as `kvop reconcile`), refuse names the
//!    namespace may not use, connect, refuse origins another namespace holds;
//! 2. the bucket pass (`crate::pass::plan_bucket`): observe the stream and plan its
//!    configuration and claim (create, update, blocked, observe, missing, refused), a
//!    claim whose holder is gone passing on (`holders`);
//! 3. `apply` creates or updates the bucket as planned (never while paused);
//! 4. `report`: the verdict and Event of the action, a warning if the server went
//!    backwards; the bucket's live view started (it serves and re-queues its entries);
//!    `.status` (conditions and statistics) written only when it changed;
//!
//! and on deletion `cleanup` has the pass plan the bucket's fate by `deletionPolicy`
//! (`plan_bucket_removal`) and `apply` carry it out, behind the finalizer.

mod apply;
mod cleanup;
mod report;

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;

use super::context::Context;
use super::error::ControllerError;
use super::finalizing::{FirstApply, Step, finalized};
use super::holders::Watched;
use super::status::{Verdict, backoff_key, report_failure, with_conditions, write_if_changed};
use super::tenancy::Refusal;
use super::{connection, object_ref, origin};
use crate::api::{KeyValueBucket, KeyValueBucketStatus};
use crate::desired::{BucketClaim, DesiredBucket};
use crate::pass;
use crate::plan::{BucketAction, Claimant};
use crate::report::bucket_status;
use crate::spec;
pub use crate::spec::DELETE_ADOPTED_ANNOTATION;

/// Reconciles one bucket resource.
pub async fn reconcile(
    bucket: Arc<KeyValueBucket>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let api: Api<KeyValueBucket> = Api::namespaced(
        context.client.clone(),
        &bucket.namespace().unwrap_or_default(),
    );
    super::status::reset_backoff_on_request(&*bucket, &context.backoff);
    // Every bucket needs it: even `Retain` releases the bucket's claim in NATS.
    let result = finalized(
        &api,
        bucket,
        true,
        FirstApply::AfterFinalizer,
        |step| async {
            match step {
                Step::Apply(bucket) => apply_bucket(&bucket, &context, &api).await,
                // A bucket's cleanup reads its spec only.
                Step::Cleanup(bucket) | Step::Abandoned(bucket) => {
                    cleanup::cleanup(&bucket, &context, &api).await
                }
            }
        },
    )
    .await;
    context
        .metrics
        .reconciled("KeyValueBucket", started.elapsed().as_secs_f64());
    result
}

async fn apply_bucket(
    bucket: &KeyValueBucket,
    context: &Context,
    api: &Api<KeyValueBucket>,
) -> Result<Action, ControllerError> {
    let previous = bucket.status.clone().unwrap_or_default();
    // 1. Resolve: the spec, the names it may use, its connection.
    let desired = match spec::desired_bucket(object_ref(bucket), origin(bucket), bucket) {
        Ok(desired) => desired,
        Err(problems) => {
            let error = ControllerError::InvalidSpec(problems);
            return Err(report_failure(api, bucket, &previous, error).await);
        }
    };
    if let Err(refusal) = allowed_names(context, bucket, &desired) {
        return Err(report_failure(api, bucket, &previous, refusal.into()).await);
    }
    let (connection_key, connection) = match connection::for_bucket(
        context,
        bucket,
        &connection::Reader::Bucket(StoreRef::from_obj(bucket)),
    )
    .await
    {
        Ok(connected) => connected,
        Err(error) => return Err(report_failure(api, bucket, &previous, error).await),
    };
    if let Err(error) = connection.require_connected() {
        return Err(report_failure(api, bucket, &previous, error.into()).await);
    }
    match origins_held_elsewhere(bucket, &desired, &connection).await {
        Ok(None) => {}
        Ok(Some(refusal)) => {
            return Err(report_failure(api, bucket, &previous, refusal.into()).await);
        }
        Err(error) => return Err(report_failure(api, bucket, &previous, error.into()).await),
    }
    let handle = connection.bucket(&desired.name);
    let viewed = report::Viewed::of(context, bucket);
    // Managed before claims existed: its own status recorded this very bucket.
    let managed_before =
        previous.created.is_some() && previous.bucket.as_deref() == Some(desired.name.as_str());
    let claimant = Claimant {
        claim: BucketClaim {
            manager: context.settings.manager.clone(),
            owner: object_ref(bucket).to_string(),
            uid: bucket.metadata.uid.clone(),
        },
        per_object: true,
        released: false,
        adopt: desired.adopt || managed_before,
    };
    let paused = match crate::spec::paused(bucket.metadata.annotations.as_ref()) {
        Ok(paused) => paused,
        Err(problem) => {
            let error = ControllerError::InvalidSpec(vec![problem]);
            return Err(report_failure(api, bucket, &previous, error).await);
        }
    };
    // 2. The pass: observe the stream, plan the bucket's configuration and claim.
    let holders = Watched::buckets(context);
    let planned = match pass::plan_bucket(&handle, &desired, claimant, &holders).await {
        Ok(planned) => planned,
        Err(error) => return Err(report_failure(api, bucket, &previous, error.into()).await),
    };
    // 3. Apply, unless paused: then the plan is only reported.
    let applied = if paused {
        Ok((planned.action, planned.stream))
    } else {
        let existed_before = previous.created.is_some();
        apply::apply(planned, &desired, &handle, context, existed_before).await
    };
    let (action, stream) = match applied {
        Ok(done) => done,
        Err(error) => return Err(report_failure(api, bucket, &previous, error.into()).await),
    };
    // 4. Report: the action's Event, a server that went backwards, the live view, the
    // status.
    if let Some(event) = report::bucket_event(&action).filter(|_| !paused) {
        context
            .announce(bucket, event.warning, event.reason, event.note)
            .await;
    }
    if let Some(stream) = &stream
        && let Some((seen, now)) =
            report::went_backwards(context, bucket, &previous, viewed.as_ref(), stream)
    {
        // The view still holds the lost writes and would tell every entry it is in
        // place: a fresh view loads what the server really has and re-queues them all.
        context.views.remove(&StoreRef::from_obj(bucket));
        context
            .publish(
                bucket,
                EventType::Warning,
                "ServerWentBackwards",
                format!(
                    "the bucket's stream went back from revision {seen} to {now}: the server lost writes (restored from an older copy of its store?); re-applying every entry"
                ),
            )
            .await;
    }
    let view = stream.as_ref().and_then(|stream| {
        context.views.ensure(
            bucket,
            &connection,
            &desired.name,
            connection_key,
            &stream.stats.created,
        )
    });
    let keys = view.as_ref().and_then(|view| view.live_keys());
    let status = match &stream {
        Some(stream) => bucket_status(&desired.name, stream, keys),
        None => KeyValueBucketStatus {
            bucket: Some(desired.name.clone()),
            ..Default::default()
        },
    };
    let verdict: Verdict = if paused {
        crate::operator::pause::verdict(&action, "bucket")
    } else {
        report::readiness(&action)
    };
    let status = with_conditions(bucket, &previous, status, &verdict);
    write_if_changed(api, bucket, &previous, status).await?;
    context.backoff.reset(&backoff_key(bucket));
    Ok(match action {
        BucketAction::Missing => Action::requeue(std::time::Duration::from_secs(30)),
        _ => Action::requeue(
            context
                .settings
                .status_interval
                .min(context.settings.resync_interval),
        ),
    })
}

/// A mirror or source of a bucket that an object of another namespace holds would copy
/// its data: refused, as claiming that bucket would be. Origins in another domain or
/// account (`domain`, `external`) cannot be read from here; the administrator's bucket
/// patterns and NATS permissions decide those.
async fn origins_held_elsewhere(
    bucket: &KeyValueBucket,
    desired: &DesiredBucket,
    connection: &crate::nats::Connection,
) -> Result<Option<Refusal>, crate::nats::NatsError> {
    let namespace = bucket.namespace().unwrap_or_default();
    let origins = desired
        .config
        .mirror
        .iter()
        .map(|mirror| ("spec.mirror.name".to_string(), mirror))
        .chain(
            desired
                .config
                .sources
                .iter()
                .enumerate()
                .map(|(index, source)| (format!("spec.sources[{index}].name"), source)),
        );
    for (field, origin) in origins {
        if origin.domain.is_some() || origin.external.is_some() {
            continue;
        }
        let Some(stream) = connection.bucket(&origin.name).state().await? else {
            continue;
        };
        let Some(holder) = stream.claim else {
            continue;
        };
        let same_namespace = crate::desired::ObjectRef::parse(&holder.owner)
            .is_some_and(|held| held.namespace == namespace);
        if !same_namespace {
            return Ok(Some(Refusal::OriginHeldElsewhere {
                field,
                bucket: origin.name.clone(),
                holder: holder.to_string(),
            }));
        }
    }
    Ok(None)
}

/// The bucket, its mirror and its sources must be names the administrator lets this
/// namespace use: a mirror or source of another tenant's bucket would copy its data.
fn allowed_names(
    context: &Context,
    bucket: &KeyValueBucket,
    desired: &DesiredBucket,
) -> Result<(), Refusal> {
    let namespace = bucket.namespace().unwrap_or_default();
    let tenancy = &context.tenancy;
    tenancy.check_bucket(&namespace, "spec.bucket", &desired.name)?;
    if let Some(mirror) = &desired.config.mirror {
        tenancy.check_bucket(&namespace, "spec.mirror.name", &mirror.name)?;
    }
    for (index, source) in desired.config.sources.iter().enumerate() {
        tenancy.check_bucket(
            &namespace,
            &format!("spec.sources[{index}].name"),
            &source.name,
        )?;
    }
    Ok(())
}

/// The `Ready` reason of a planned bucket action (for the reason table's coverage test).
#[cfg(test)]
pub(crate) fn readiness_reason(action: &crate::plan::BucketAction) -> &'static str {
    report::readiness(action).reason
}
