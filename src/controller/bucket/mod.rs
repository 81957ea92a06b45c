//! The `KeyValueBucket` controller. Each reconcile:
//! 1. validates the spec (the same rules as `kvop reconcile`);
//! 2. observes the bucket's stream and plans its configuration (create, update, blocked,
//!    observe, missing), through the shared planner;
//! 3. creates or updates the stream by read-modify-write;
//! 4. starts the bucket's live view, which serves and re-queues its entries;
//! 5. writes `.status` (conditions and statistics) only when it changed;
//!
//! and on deletion applies `deletionPolicy` behind the `kvop.dev/cleanup` finalizer.

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::ObjectRef as StoreRef;

use super::connection;
use super::context::Context;
use super::error::ControllerError;
use super::status::{apply_status, now, ready_and_synced};
use super::{FINALIZER, object_ref, origin};
use crate::api::{BucketDeletionPolicy, KeyValueBucket, KeyValueBucketStatus, ManagementPolicy};
use crate::desired::DesiredBucket;
use crate::nats::{Bucket, Deleted, NatsError};
use crate::observed::{ObservedBucket, ObservedStream};
use crate::plan::{BucketAction, decide_bucket};
use crate::report::bucket_status;
use crate::spec;

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
    let result = finalizer(&api, FINALIZER, bucket, |event| async {
        match event {
            Event::Apply(bucket) => apply(&bucket, &context, &api).await,
            Event::Cleanup(bucket) => cleanup(&bucket, &context, &api).await,
        }
    })
    .await
    .map_err(ControllerError::from);
    context
        .metrics
        .reconciled("KeyValueBucket", started.elapsed().as_secs_f64());
    result
}

async fn apply(
    bucket: &KeyValueBucket,
    context: &Context,
    api: &Api<KeyValueBucket>,
) -> Result<Action, ControllerError> {
    let previous = bucket.status.clone().unwrap_or_default();
    let generation = bucket.metadata.generation;
    let desired = match spec::desired_bucket(object_ref(bucket), origin(bucket), bucket) {
        Ok(desired) => desired,
        Err(problems) => {
            let message = problems
                .iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect::<Vec<_>>()
                .join("; ");
            let status = with_conditions(
                &previous,
                generation,
                false,
                "InvalidSpec",
                &message,
                Some(false),
            );
            write_if_changed(api, bucket, &previous, status).await?;
            return Err(ControllerError::InvalidSpec(message));
        }
    };
    let connected = connection::for_bucket(context, bucket).await;
    let (connection_key, connection) = match connected {
        Ok(connected) => connected,
        Err(error) => return Err(report_failure(api, bucket, &previous, error).await),
    };
    let handle = connection.bucket(&desired.name);
    let synced = sync(&desired, &handle, context, previous.created.is_some()).await;
    let (action, stream) = match synced {
        Ok(done) => done,
        Err(error) => return Err(report_failure(api, bucket, &previous, error.into()).await),
    };
    publish_bucket_event(context, bucket, &action).await;
    if let Some(stream) = &stream
        && let Some((seen, now)) = went_backwards(context, bucket, &previous, stream)
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
    let mut status = match &stream {
        Some(stream) => bucket_status(&desired.name, stream, keys),
        None => KeyValueBucketStatus {
            bucket: Some(desired.name.clone()),
            ..Default::default()
        },
    };
    let (ready, reason, message) = readiness(&action);
    status.conditions =
        with_conditions(&previous, generation, ready, reason, &message, None).conditions;
    status.observed_generation = generation;
    write_if_changed(api, bucket, &previous, status).await?;
    context.backoff.reset(&bucket_key(bucket));
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

/// The revision kvop saw before, when the same stream (same creation time) is now at a
/// lower one: writes the server acknowledged are gone. Seen by the live view, or kept in
/// the status from before an operator restart.
fn went_backwards(
    context: &Context,
    bucket: &KeyValueBucket,
    previous: &KeyValueBucketStatus,
    stream: &ObservedStream,
) -> Option<(u64, u64)> {
    let now = stream.stats.last_revision;
    let view = context.views.get(&StoreRef::from_obj(bucket));
    // Seen by the view when it reopened: the entries may be re-applied by now, so the
    // stream need not be behind any more.
    if let Some(seen) = view.as_ref().and_then(|view| view.take_went_backwards()) {
        return Some(seen);
    }
    let viewed = view.map(|view| view.highest_revision()).unwrap_or(0);
    let same_stream = previous.created.as_deref() == Some(stream.stats.created.as_str());
    let recorded = match previous.last_revision {
        Some(revision) if same_stream => u64::try_from(revision).unwrap_or(0),
        _ => 0,
    };
    let seen = viewed.max(recorded);
    (seen > now).then_some((seen, now))
}

/// Writes `Ready=False` and `Synced=False` with the error's reason, and returns the
/// error (or the status write's, if that failed too).
async fn report_failure(
    api: &Api<KeyValueBucket>,
    bucket: &KeyValueBucket,
    previous: &KeyValueBucketStatus,
    error: ControllerError,
) -> ControllerError {
    let status = with_conditions(
        previous,
        bucket.metadata.generation,
        false,
        error.reason(),
        &error.to_string(),
        Some(false),
    );
    match write_if_changed(api, bucket, previous, status).await {
        Ok(()) => error,
        Err(write) => write.into(),
    }
}

/// How long a bucket that existed before waits to be created again (see `sync`).
const RECREATE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Observes the stream, plans its configuration and applies the plan. `existed_before`:
/// the status shows the bucket existed, so a missing stream was deleted (by anyone).
async fn sync(
    desired: &DesiredBucket,
    bucket: &Bucket,
    context: &Context,
    existed_before: bool,
) -> Result<(BucketAction, Option<ObservedStream>), NatsError> {
    let observed = ObservedBucket {
        stream: bucket.state().await?,
        ..Default::default()
    };
    let action = decide_bucket(desired, &observed);
    let applied = match &action {
        BucketAction::Create { config } => {
            if existed_before {
                // nats-server 2.15.1 removes a deleted file stream's directory after it
                // answers the delete: a stream created again at once under the same name
                // can lose its files to that removal and then silently drop every message
                // ("Critical write error ... no such file"). Let the removal finish.
                tokio::time::sleep(RECREATE_DELAY).await;
            }
            Some(("create_bucket", bucket.create(config).await))
        }
        BucketAction::Update { config, .. } => Some(("update_bucket", bucket.update(config).await)),
        _ => None,
    };
    if let Some((operation, result)) = applied {
        context
            .metrics
            .nats_operation(operation, if result.is_ok() { "ok" } else { "error" });
        result?;
        return Ok((action, bucket.state().await?));
    }
    Ok((action, observed.stream))
}

/// `Ready` for each planned bucket action.
fn readiness(action: &BucketAction) -> (bool, &'static str, String) {
    match action {
        BucketAction::Create { .. } => (true, "Created", "the bucket was created".into()),
        BucketAction::Update { changes, .. } => (
            true,
            "Updated",
            format!(
                "updated {}",
                changes
                    .iter()
                    .map(|change| change.field)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        BucketAction::Unchanged => (true, "Ready", "the bucket matches its spec".into()),
        BucketAction::Observe => (
            true,
            "Observed",
            "the bucket exists; managementPolicy Observe never changes it".into(),
        ),
        BucketAction::Blocked { changes } => (
            false,
            "ImmutableFieldChanged",
            format!(
                "the server cannot change {} on an existing bucket; delete and re-create the bucket or revert the spec",
                changes
                    .iter()
                    .map(|change| format!("{} ({} -> {})", change.field, change.from, change.to))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        BucketAction::Missing => (
            false,
            "BucketMissing",
            "the bucket does not exist and managementPolicy is Observe".into(),
        ),
    }
}

/// The previous status with fresh `Ready` and `Synced` conditions. `synced` defaults to
/// `ready` (a reconcile that reached a verdict is synced unless it failed).
fn with_conditions(
    previous: &KeyValueBucketStatus,
    generation: Option<i64>,
    ready: bool,
    reason: &str,
    message: &str,
    synced: Option<bool>,
) -> KeyValueBucketStatus {
    let synced = synced.unwrap_or(true);
    let mut status = previous.clone();
    status.observed_generation = generation;
    status.conditions = ready_and_synced(
        &previous.conditions,
        generation,
        ready,
        reason,
        message,
        synced,
    );
    status
}

/// Server-side applies the status when it differs from `previous` (ignoring the sync
/// time, which is only refreshed with a real change).
async fn write_if_changed(
    api: &Api<KeyValueBucket>,
    bucket: &KeyValueBucket,
    previous: &KeyValueBucketStatus,
    mut status: KeyValueBucketStatus,
) -> Result<(), kube::Error> {
    status.last_sync_time = previous.last_sync_time.clone();
    if &status == previous && bucket.status.is_some() {
        return Ok(());
    }
    status.last_sync_time = Some(now());
    apply_status(api, bucket, &status).await
}

async fn cleanup(
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
    match connection.bucket(&desired.name).delete().await {
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
            let previous = bucket.status.clone().unwrap_or_default();
            let message = format!(
                "cannot delete bucket {:?} yet, the finalizer stays until it succeeds: {error}",
                desired.name
            );
            let status = with_conditions(
                &previous,
                bucket.metadata.generation,
                false,
                "DeletionBlocked",
                &message,
                Some(false),
            );
            write_if_changed(api, bucket, &previous, status).await?;
            Err(error.into())
        }
    }
}

async fn publish_bucket_event(context: &Context, bucket: &KeyValueBucket, action: &BucketAction) {
    match action {
        BucketAction::Create { .. } => {
            context
                .publish(
                    bucket,
                    EventType::Normal,
                    "Created",
                    "created the bucket".into(),
                )
                .await
        }
        BucketAction::Update { changes, .. } => {
            let fields = changes
                .iter()
                .map(|change| change.field)
                .collect::<Vec<_>>()
                .join(", ");
            context
                .publish(
                    bucket,
                    EventType::Normal,
                    "Updated",
                    format!("updated {fields}"),
                )
                .await
        }
        BucketAction::Blocked { .. } => {
            context
                .publish(
                    bucket,
                    EventType::Warning,
                    "ImmutableFieldChanged",
                    readiness(action).2,
                )
                .await
        }
        _ => {}
    }
}

/// The backoff key of a bucket resource.
pub fn bucket_key(bucket: &KeyValueBucket) -> String {
    format!(
        "KeyValueBucket/{}/{}",
        bucket.namespace().unwrap_or_default(),
        bucket.name_any()
    )
}
