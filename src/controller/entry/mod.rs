//! The `KeyValueEntry` controller. Each reconcile:
//! 1. validates the spec and finds its bucket resource, waiting while the bucket is not
//!    ready (`BucketNotReady`);
//! 2. resolves the value (inline, or a Secret or ConfigMap key for `valueFrom`);
//! 3. reads the key from the bucket's live view (or from NATS while the view loads);
//! 4. decides and writes through the shared planner and applier: conditional writes,
//!    ownership headers, conflicts re-read and decided again;
//! 5. writes `.status` only when it changed;
//!
//! and on deletion applies `deletionPolicy` (see `entry_cleanup`) behind the finalizer,
//! deleting or purging the key only while it still holds this manager's write.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::ObjectRef as StoreRef;
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::connection;
use super::context::Context;
use super::error::ControllerError;
use super::status::{READY, apply_status, now, ready_and_synced};
use super::{FINALIZER, object_ref, origin};
use crate::api::{ConditionStatus, KeyValueBucket, KeyValueEntry, KeyValueEntryStatus, ValueFrom};
use crate::apply::{ApplyOptions, EntryResult, apply};
use crate::desired::{Desired, DesiredBucket, DesiredEntry};
use crate::nats::NatsError;
use crate::observed::ObservedKey;
use crate::plan::{BucketAction, BucketPlan, EntryAction, EntryPlan, Plan, decide_entry};
use crate::{ownership, spec};

/// Reconciles one entry resource.
pub async fn reconcile(
    entry: Arc<KeyValueEntry>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let api: Api<KeyValueEntry> = Api::namespaced(
        context.client.clone(),
        &entry.namespace().unwrap_or_default(),
    );
    let result = finalizer(&api, FINALIZER, entry, |event| async {
        match event {
            Event::Apply(entry) => apply_entry(&entry, &context, &api).await,
            Event::Cleanup(entry) => super::entry_cleanup::cleanup(&entry, &context, &api).await,
        }
    })
    .await
    .map_err(ControllerError::from);
    context
        .metrics
        .reconciled("KeyValueEntry", started.elapsed().as_secs_f64());
    result
}

/// Everything an entry needs before it can be decided.
struct Resolved {
    bucket: DesiredBucket,
    entry: DesiredEntry,
    /// The bucket's connection.
    nats: crate::nats::Connection,
}

async fn apply_entry(
    entry: &KeyValueEntry,
    context: &Context,
    api: &Api<KeyValueEntry>,
) -> Result<Action, ControllerError> {
    let previous = entry.status.clone().unwrap_or_default();
    let resolved = match resolve(entry, context).await {
        Ok(resolved) => resolved,
        Err(error) => {
            let status = failed_status(&previous, entry, &error);
            write_if_changed(api, entry, &previous, status).await?;
            return Err(error);
        }
    };
    let observed = observe(context, entry, &resolved).await;
    let observed = match observed {
        Ok(observed) => observed,
        Err(error) => {
            let error = ControllerError::Nats(error);
            write_if_changed(
                api,
                entry,
                &previous,
                failed_status(&previous, entry, &error),
            )
            .await?;
            return Err(error);
        }
    };
    warn_if_lost(context, entry, &previous, observed.as_ref()).await;
    let action = decide_entry(
        &resolved.entry,
        observed.as_ref(),
        &context.settings.manager,
    );
    let drift = matches!(&action, EntryAction::Update { drift: Some(_), .. });
    let plan = Plan {
        buckets: vec![BucketPlan {
            bucket: resolved.bucket.name.clone(),
            owner: resolved.bucket.owner.clone(),
            origin: resolved.bucket.origin.clone(),
            action: BucketAction::Unchanged,
            entries: vec![EntryPlan {
                key: resolved.entry.key.clone(),
                owner: resolved.entry.owner.to_string(),
                origin: None,
                action: action.clone(),
            }],
        }],
    };
    let desired = Desired {
        buckets: Vec::new(),
        entries: vec![resolved.entry.clone()],
    };
    let options = ApplyOptions {
        manager: context.settings.manager.clone(),
        window: 1,
        ride_out: false,
    };
    let outcome = apply(&resolved.nats, &plan, &desired, &options, &|| ()).await;
    let result = outcome
        .buckets
        .first()
        .and_then(|bucket| bucket.entries.first())
        .map(|entry| entry.result.clone())
        .unwrap_or(EntryResult::NotAttempted {
            reason: "nothing was decided".into(),
        });
    let generation = entry.metadata.generation;
    let mut status = KeyValueEntryStatus {
        observed_generation: generation,
        bucket: Some(resolved.bucket.name.clone()),
        key: Some(resolved.entry.key.clone()),
        value_digest: Some(digest(&resolved.entry.value)),
        revision: previous.revision,
        created: previous.created.clone(),
        ..Default::default()
    };
    let (ready, reason, message) = match &result {
        EntryResult::Written { revision, .. } => {
            context.metrics.nats_operation("write", "ok");
            if drift {
                context.metrics.drift_corrected();
            }
            let note = format!("wrote key {:?} at revision {revision}", resolved.entry.key);
            if drift {
                context
                    .publish(entry, EventType::Normal, "DriftCorrected", note)
                    .await;
            } else if matches!(action, EntryAction::Create { .. }) && previous.revision.is_none() {
                context.publish_once(entry, "Created", note).await;
            } else if matches!(action, EntryAction::Create { .. }) {
                // Written again after the key or its bucket went away: that may repeat.
                context
                    .publish(entry, EventType::Normal, "Created", note)
                    .await;
            } else {
                context
                    .publish(entry, EventType::Normal, "Updated", note)
                    .await;
            }
            status.revision = Some(to_i64(*revision));
            status.created = Some(now());
            (
                true,
                "Synced",
                format!("revision {revision} holds the declared value"),
            )
        }
        EntryResult::Unchanged { revision } => {
            status.revision = Some(to_i64(*revision));
            if status.created.is_none() {
                status.created = Some(now());
            }
            (
                true,
                "Synced",
                format!("revision {revision} holds the declared value"),
            )
        }
        EntryResult::Skipped { revision } => {
            status.revision = Some(to_i64(*revision));
            (
                true,
                "CreateOnlyKeyExists",
                format!(
                    "updatePolicy CreateOnly: the key already has a value (revision {revision}), left as it is"
                ),
            )
        }
        EntryResult::Conflict { revision, writer } => {
            context.publish(entry, EventType::Warning, "Conflict", format!("revision {revision} was written by {writer}; updatePolicy IfUnchanged leaves it")).await;
            status.revision = Some(to_i64(*revision));
            (
                false,
                "Conflict",
                format!(
                    "updatePolicy IfUnchanged: revision {revision} was written by {writer}, not by this manager"
                ),
            )
        }
        EntryResult::Failed { error } => {
            context.metrics.nats_operation("write", error.reason());
            let error = ControllerError::Nats(error.clone());
            write_if_changed(
                api,
                entry,
                &previous,
                failed_status(&previous, entry, &error),
            )
            .await?;
            return Err(error);
        }
        EntryResult::NotAttempted { reason } => (false, "NotWritten", reason.clone()),
    };
    status.conditions = conditions(&previous, generation, ready, reason, &message, true);
    write_if_changed(api, entry, &previous, status).await?;
    context.backoff.reset(&entry_key(entry));
    Ok(Action::requeue(context.settings.resync_interval))
}

/// Finds the bucket, checks the key and resolves the value.
async fn resolve(entry: &KeyValueEntry, context: &Context) -> Result<Resolved, ControllerError> {
    let owner = object_ref(entry);
    let key = spec::entry_key(&owner, &entry.spec)
        .map_err(|(field, message)| ControllerError::InvalidSpec(format!("{field}: {message}")))?;
    let namespace = entry.namespace().unwrap_or_default();
    let reference = StoreRef::<KeyValueBucket>::new(&entry.spec.bucket_ref.name).within(&namespace);
    let Some(bucket) = context.buckets.get(&reference) else {
        return Err(ControllerError::BucketNotReady(format!(
            "KeyValueBucket {namespace}/{} does not exist",
            entry.spec.bucket_ref.name
        )));
    };
    let bucket_ready = bucket.status.as_ref().is_some_and(|status| {
        status
            .conditions
            .iter()
            .any(|condition| condition.type_ == READY && condition.status == ConditionStatus::True)
    });
    if !bucket_ready || bucket.meta().deletion_timestamp.is_some() {
        return Err(ControllerError::BucketNotReady(format!(
            "KeyValueBucket {namespace}/{} is not ready",
            entry.spec.bucket_ref.name
        )));
    }
    let desired_bucket = spec::desired_bucket(object_ref(&*bucket), origin(&*bucket), &bucket)
        .map_err(|_| {
            ControllerError::BucketNotReady(format!(
                "KeyValueBucket {namespace}/{} has an invalid spec",
                entry.spec.bucket_ref.name
            ))
        })?;
    if desired_bucket.config.mirror.is_some() {
        return Err(ControllerError::InvalidSpec(format!(
            "bucket {:?} is a read-only mirror; declare the entry on the origin bucket",
            desired_bucket.name
        )));
    }
    let value = match spec::entry_value(&entry.spec)
        .map_err(|(field, message)| ControllerError::InvalidSpec(format!("{field}: {message}")))?
    {
        spec::ValueSource::Inline(value) => value,
        spec::ValueSource::From(from) => read_value_from(context, &namespace, from).await?,
    };
    let (_, nats) = connection::for_bucket(context, &bucket).await?;
    let headers = ownership::write_overhead(&context.settings.manager, &owner.to_string());
    let limit = desired_bucket.config.max_value_size;
    if value.len() + headers > nats.max_payload()
        || (limit >= 0 && (value.len() + headers) as i64 > limit)
    {
        return Err(ControllerError::InvalidSpec(format!(
            "the value is {} bytes, plus {headers} bytes of headers, over the bucket's maxValueSize or the server's max_payload",
            value.len()
        )));
    }
    let entry = DesiredEntry {
        owner,
        origin: origin(entry),
        bucket: desired_bucket.name.clone(),
        key,
        value,
        update_policy: entry.spec.update_policy,
        deletion_policy: entry.spec.deletion_policy,
    };
    Ok(Resolved {
        bucket: desired_bucket,
        entry,
        nats,
    })
}

/// Reads a `valueFrom` reference. The value is never logged or put into status.
async fn read_value_from(
    context: &Context,
    namespace: &str,
    from: &ValueFrom,
) -> Result<Bytes, ControllerError> {
    if let Some(reference) = &from.secret_key_ref {
        let secrets: Api<Secret> = Api::namespaced(context.client.clone(), namespace);
        let secret = secrets.get_opt(&reference.name).await?;
        let value =
            secret.and_then(|secret| secret.data.and_then(|mut data| data.remove(&reference.key)));
        return value.map(|bytes| Bytes::from(bytes.0)).ok_or_else(|| {
            ControllerError::ReferenceNotFound(format!(
                "Secret {namespace}/{} has no key {:?}",
                reference.name, reference.key
            ))
        });
    }
    if let Some(reference) = &from.config_map_key_ref {
        let config_maps: Api<ConfigMap> = Api::namespaced(context.client.clone(), namespace);
        let config_map = config_maps.get_opt(&reference.name).await?;
        let value = config_map.and_then(|config_map| {
            let text = config_map
                .data
                .and_then(|mut data| data.remove(&reference.key))
                .map(Bytes::from);
            text.or_else(|| {
                config_map
                    .binary_data
                    .and_then(|mut data| data.remove(&reference.key))
                    .map(|bytes| Bytes::from(bytes.0))
            })
        });
        return value.ok_or_else(|| {
            ControllerError::ReferenceNotFound(format!(
                "ConfigMap {namespace}/{} has no key {:?}",
                reference.name, reference.key
            ))
        });
    }
    Err(ControllerError::InvalidSpec(
        "valueFrom needs secretKeyRef or configMapKeyRef".into(),
    ))
}

/// Warns when the key is at a lower revision than kvop recorded for it, in a stream
/// created before that record (a re-created bucket starts over legitimately): the server
/// lost an acknowledged write, e.g. restored from an older copy of its store. The write
/// that follows puts the declared value back.
async fn warn_if_lost(
    context: &Context,
    entry: &KeyValueEntry,
    previous: &KeyValueEntryStatus,
    observed: Option<&ObservedKey>,
) {
    let recorded = previous
        .revision
        .and_then(|r| u64::try_from(r).ok())
        .unwrap_or(0);
    let now = observed.map_or(0, |key| key.revision);
    if recorded <= now {
        return;
    }
    let reference = StoreRef::<KeyValueBucket>::new(&entry.spec.bucket_ref.name)
        .within(&entry.namespace().unwrap_or_default());
    let stream_created = context
        .buckets
        .get(&reference)
        .and_then(|bucket| bucket.status.clone())
        .and_then(|status| status.created);
    let same_stream = match (stream_created, previous.created.as_deref()) {
        // RFC 3339 in UTC: ordered as text.
        (Some(stream), Some(recorded_at)) => stream.as_str() <= recorded_at,
        _ => false,
    };
    if same_stream {
        context
            .publish(
                entry,
                EventType::Warning,
                "ServerWentBackwards",
                format!(
                    "the key was at revision {recorded}, the server now has {now}: it lost writes (restored from an older copy of its store?); writing the declared value again"
                ),
            )
            .await;
    }
}

/// The key's last message: from the bucket's live view when it is current, else from
/// the stream leader.
async fn observe(
    context: &Context,
    entry: &KeyValueEntry,
    resolved: &Resolved,
) -> Result<Option<ObservedKey>, NatsError> {
    let reference = StoreRef::<KeyValueBucket>::new(&entry.spec.bucket_ref.name)
        .within(&entry.namespace().unwrap_or_default());
    if let Some(cached) = context
        .views
        .get(&reference)
        .and_then(|view| view.key(&resolved.entry.key))
    {
        return Ok(cached);
    }
    resolved
        .nats
        .bucket(&resolved.bucket.name)
        .read_key(&resolved.entry.key)
        .await
}

fn failed_status(
    previous: &KeyValueEntryStatus,
    entry: &KeyValueEntry,
    error: &ControllerError,
) -> KeyValueEntryStatus {
    let mut status = previous.clone();
    status.observed_generation = entry.metadata.generation;
    status.conditions = conditions(
        previous,
        entry.metadata.generation,
        false,
        error.reason(),
        &error.to_string(),
        false,
    );
    status
}

pub(super) fn conditions(
    previous: &KeyValueEntryStatus,
    generation: Option<i64>,
    ready: bool,
    reason: &str,
    message: &str,
    synced: bool,
) -> Vec<crate::api::Condition> {
    ready_and_synced(
        &previous.conditions,
        generation,
        ready,
        reason,
        message,
        synced,
    )
}

pub(super) async fn write_if_changed(
    api: &Api<KeyValueEntry>,
    entry: &KeyValueEntry,
    previous: &KeyValueEntryStatus,
    status: KeyValueEntryStatus,
) -> Result<(), kube::Error> {
    if &status == previous && entry.status.is_some() {
        return Ok(());
    }
    apply_status(api, entry, &status).await
}

/// `sha256:<hex>` of a value: shows that it changed without showing it.
fn digest(value: &[u8]) -> String {
    let hash = Sha256::digest(value);
    format!(
        "sha256:{}",
        hash.iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    )
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The backoff key of an entry resource.
pub fn entry_key(entry: &KeyValueEntry) -> String {
    format!(
        "KeyValueEntry/{}/{}",
        entry.namespace().unwrap_or_default(),
        entry.name_any()
    )
}
