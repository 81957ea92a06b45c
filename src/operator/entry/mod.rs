//! The `KeyValueEntry` controller. A reconcile runs these steps, each in its own module:
//! 1. `resolve`: validate the spec, find its bucket resource (waiting while the bucket is
//!    not ready: `BucketNotReady`), read the value and check it fits;
//! 2. `observe`: read the key from the bucket's live view (or from NATS while the view
//!    loads);
//! 3. decide and apply through the shared planner and applier, as a one-key plan:
//!    conditional writes, ownership headers, conflicts re-read and decided again;
//! 4. `report`: the outcome as status conditions, Events and metrics (a pure function),
//!    the status written only when it changed;
//!
//! and on deletion `cleanup` applies `deletionPolicy` behind the finalizer, which only an
//! entry whose deletion removes its key carries (`finalizing`).

mod claims;
mod cleanup;
mod observe;
mod report;
mod resolve;

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use sha2::{Digest, Sha256};

use self::report::{Count, Subject};
use super::context::Context;
use super::error::ControllerError;
use super::finalizing::{Step, finalized};
use super::status::{backoff_key, now, report_failure, with_conditions, write_if_changed};
use crate::api::{EntryDeletionPolicy, KeyValueEntry};
use crate::apply::{ApplyOptions, EntryResult, apply};
use crate::desired::{Desired, DesiredEntry, ObjectRef, Origin};
use crate::nats::Connection;
use crate::plan::{
    BucketAction, BucketPlan, ClaimScope, ConflictCause, EntryAction, EntryPlan, Plan,
    decide_entry, held_through_drift,
};

/// Entries the watch saw deleted are nobody's rivals or holders any more (an entry with
/// a finalizer was already forgotten by its cleanup; forgetting twice is harmless).
pub async fn forget_departed(
    context: Arc<Context>,
    departed: futures::channel::mpsc::UnboundedReceiver<ObjectRef>,
) {
    use futures::StreamExt;
    departed
        .for_each(|entry| {
            claims::forget(&context, &entry);
            async {}
        })
        .await;
}

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
    super::status::reset_backoff_on_request(&*entry, &context.backoff);
    // Only an entry whose deletion removes its key needs the finalizer.
    let finalizer_needed = entry.spec.deletion_policy != EntryDeletionPolicy::Retain;
    let result = finalized(&api, entry, finalizer_needed, |step| async {
        match step {
            Step::Apply(entry) => apply_entry(&entry, &context, &api).await,
            Step::Cleanup(entry) => cleanup::cleanup(&entry, &context, &api).await,
        }
    })
    .await;
    context
        .metrics
        .reconciled("KeyValueEntry", started.elapsed().as_secs_f64());
    result
}

async fn apply_entry(
    entry: &KeyValueEntry,
    context: &Context,
    api: &Api<KeyValueEntry>,
) -> Result<Action, ControllerError> {
    let previous = entry.status.clone().unwrap_or_default();
    let resolved = match resolve::resolve(entry, context).await {
        Ok(resolved) => resolved,
        Err(error) => return Err(report_failure(api, entry, &previous, error).await),
    };
    let observed = match observe::observe(context, entry, &resolved).await {
        Ok(observed) => observed,
        Err(error) => return Err(report_failure(api, entry, &previous, error.into()).await),
    };
    let observed = match observe::warn_if_lost(context, entry, &resolved, &previous, observed).await
    {
        Ok(observed) => observed,
        Err(error) => return Err(report_failure(api, entry, &previous, error.into()).await),
    };
    let own = &resolved.entry.owner;
    let scope = claims::scope_for(context, own, observed.as_ref()).await;
    let held = claims::held_elsewhere(
        context,
        own,
        &resolved.bucket.name,
        &resolved.entry.key,
        observed.as_ref(),
    );
    let action = match &held {
        Some(holder) => held_through_drift(observed.as_ref(), &context.settings.manager, holder),
        None => decide_entry(
            &resolved.entry,
            observed.as_ref(),
            &context.settings.manager,
            scope,
        ),
    };
    if action.writes()
        && let Err(error) = resolve::check_size(&resolved, &context.settings.manager)
    {
        return Err(report_failure(api, entry, &previous, error).await);
    }
    let held_by = held.as_ref().map(ToString::to_string);
    let refused_by = match (&action, &observed) {
        _ if held_by.is_some() => held_by.as_deref(),
        (
            EntryAction::Conflict {
                cause: ConflictCause::Claimed,
                ..
            },
            Some(key),
        ) if key.writer.is(&context.settings.manager) => key.writer.owner.as_deref(),
        _ => None,
    };
    claims::note(context, own, refused_by);
    let target = OneKey {
        bucket: &resolved.bucket.name,
        key: &resolved.entry.key,
        owner: own,
    };
    let paused = match crate::spec::paused(entry.metadata.annotations.as_ref()) {
        Ok(paused) => paused,
        Err(problem) => {
            let error = ControllerError::InvalidSpec(vec![problem]);
            return Err(report_failure(api, entry, &previous, error).await);
        }
    };
    let result = if paused {
        // Observed and reported, never written: what the write would be is said.
        match &action {
            action if action.writes() => EntryResult::NotAttempted {
                reason: "paused".into(),
            },
            action => EntryResult::Settled(action.clone()),
        }
    } else {
        apply_one(
            context,
            &resolved.nats,
            target,
            &action,
            Some(&resolved.entry),
            scope,
        )
        .await
    };
    // A plain digest of a short secret is the secret (a 6-digit PIN is found in a
    // second): values from Secrets get none.
    let from_secret = entry
        .spec
        .value_from
        .as_ref()
        .is_some_and(|from| from.secret_key_ref.is_some());
    let value_digest = (!from_secret).then(|| digest(&resolved.entry.value));
    let subject = Subject {
        bucket: &resolved.bucket.name,
        key: &resolved.entry.key,
        value_digest: value_digest.as_deref(),
    };
    let mut report = report::report(
        &previous,
        entry.metadata.generation,
        subject,
        &action,
        &result,
        &now(),
    );
    if paused {
        report.verdict = super::pause::verdict(&action, "key");
        report.events.clear();
    }
    claims::name_rivals(context, own, &resolved.entry.key, &mut report);
    for count in &report.counts {
        match count {
            Count::Write(outcome) => context.metrics.nats_operation("write", outcome),
            Count::DriftCorrected => context.metrics.drift_corrected(),
        }
    }
    for event in report.events {
        context
            .announce(entry, event.warning, event.reason, event.note)
            .await;
    }
    let status = with_conditions(entry, &previous, report.status, &report.verdict);
    write_if_changed(api, entry, &previous, status).await?;
    if let Some(error) = report.failure {
        return Err(error.into());
    }
    context.backoff.reset(&backoff_key(entry));
    Ok(Action::requeue(context.settings.resync_interval))
}

/// Step 3: carries out the decision for one key, through the same applier as
/// `kvop reconcile` (re-read and decided again after a revision conflict, by the rules
/// for `declared`, or for a removal when it is `None`).
/// The one key a reconcile or cleanup of an entry writes.
#[derive(Clone, Copy)]
struct OneKey<'a> {
    bucket: &'a str,
    key: &'a str,
    owner: &'a ObjectRef,
}

async fn apply_one(
    context: &Context,
    connection: &Connection,
    OneKey { bucket, key, owner }: OneKey<'_>,
    action: &EntryAction,
    declared: Option<&DesiredEntry>,
    scope: ClaimScope,
) -> EntryResult {
    let plan = Plan {
        buckets: vec![BucketPlan {
            bucket: bucket.to_string(),
            owner: owner.clone(),
            origin: Origin {
                source: format!("KeyValueEntry/{owner}").into(),
                line: 0,
            },
            action: BucketAction::Unchanged,
            entries: vec![EntryPlan {
                key: key.into(),
                owner: owner.to_string().into(),
                origin: None,
                action: action.clone(),
            }],
        }],
    };
    let desired = Desired {
        buckets: Vec::new(),
        entries: declared.into_iter().cloned().collect(),
    };
    let options = ApplyOptions {
        manager: context.settings.manager.clone(),
        scope,
        window: 1,
        ride_out: false,
    };
    let outcome = apply(connection, &plan, &desired, &options, &|| ()).await;
    outcome
        .buckets
        .into_iter()
        .next()
        .and_then(|bucket| bucket.entries.into_iter().next())
        .map(|entry| entry.result)
        .unwrap_or(EntryResult::NotAttempted {
            reason: "nothing was decided".into(),
        })
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
