//! The `KeyValueEntry` controller. A reconcile runs these steps:
//! 1. `resolve`: validate the spec, find its bucket resource (waiting while the bucket is
//!    not ready: `BucketNotReady`), read the value and refuse a mirror;
//! 2. the one-key pass (`crate::pass::plan_one_key`): the key read where `observe` says
//!    (the bucket's live view, or NATS while the view loads), decided within the claims
//!    only the operator knows (`claims`, `holders`), a value it writes checked to fit;
//! 3. `apply` carries the one-key plan out, as for `kvop reconcile`: conditional writes,
//!    ownership headers, conflicts re-read and decided again (never while paused);
//! 4. `report`: the outcome as status conditions, Events and metrics (a pure function),
//!    the status written only when it changed;
//!
//! and on deletion `cleanup` has the pass plan the key's removal by `deletionPolicy` and
//! `apply` carry it out, behind the finalizer, which only an entry whose deletion removes
//! its key carries (`finalizing`).

mod claims;
mod cleanup;
mod observe;
mod report;
mod resolve;
pub mod wiring;

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use sha2::{Digest, Sha256};

use self::report::{Count, Subject};
use self::resolve::Resolved;
use super::context::Context;
use super::error::ControllerError;
use super::finalizing::{FirstApply, Step, finalized};
use super::holders::Watched;
use super::status::{backoff_key, now, report_failure, with_conditions, write_if_changed};
use crate::api::{EntryDeletionPolicy, KeyValueEntry, KeyValueEntryStatus};
use crate::apply::{ApplyOptions, EntryResult, apply};
use crate::desired::ObjectRef;
use crate::nats::Connection;
use crate::pass::{self, DeclaredKey, KeyClaims, KeyPlanned, PassError};

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
    let result = finalized(
        &api,
        entry,
        finalizer_needed,
        FirstApply::AfterFinalizer,
        |step| async {
            match step {
                Step::Apply(entry) => apply_entry(&entry, &context, &api).await,
                Step::Cleanup(entry) => cleanup::cleanup(&entry, &context, &api).await,
                Step::Abandoned(entry) => {
                    let entry = cleanup::as_applied(&entry, &context).await;
                    cleanup::cleanup(&entry, &context, &api).await
                }
            }
        },
    )
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
    // 1. Resolve: the spec, its bucket resource and the value.
    let resolved = match resolve::resolve(entry, context).await {
        Ok(resolved) => resolved,
        Err(error) => return Err(report_failure(api, entry, &previous, error).await),
    };
    // 2. The pass: observe the key, decide it within its claims, check what it writes.
    let planned = match plan(entry, context, &resolved, &previous).await {
        Ok(planned) => planned,
        Err(error) => return Err(report_failure(api, entry, &previous, error.into()).await),
    };
    let own = &resolved.entry.owner;
    claims::note(context, own, planned.refused_by.as_deref());
    let paused = match crate::spec::paused(entry.metadata.annotations.as_ref()) {
        Ok(paused) => paused,
        Err(problem) => {
            let error = ControllerError::InvalidSpec(vec![problem]);
            return Err(report_failure(api, entry, &previous, error).await);
        }
    };
    // 3. Apply, unless paused: then observed and reported, never written, and what the
    // write would be is said.
    let result = if paused {
        match &planned.action {
            action if action.writes() => EntryResult::NotAttempted {
                reason: "paused".into(),
            },
            action => EntryResult::Settled(action.clone()),
        }
    } else {
        apply_one(context, &resolved.nats, &planned).await
    };
    // 4. Report.
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
        &planned.action,
        &result,
        &now(),
    );
    if paused {
        report.verdict = super::pause::verdict(&planned.action, "key");
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

/// Step 2: the one-key pass, with what only the operator knows: where it reads the key
/// (`observe`), which entry refused this one before and which holders are gone
/// (`claims`, `holders`).
async fn plan(
    entry: &KeyValueEntry,
    context: &Context,
    resolved: &Resolved,
    previous: &KeyValueEntryStatus,
) -> Result<KeyPlanned, PassError> {
    let source = observe::LiveKey {
        context,
        entry,
        resolved,
        previous,
    };
    let declared = DeclaredKey {
        entry: &resolved.entry,
        bucket: &resolved.bucket,
        max_payload: resolved.nats.max_payload(),
    };
    let claims = KeyClaims {
        holders: &Watched::entries(context),
        refused_by: claims::remembered_refusal(
            context,
            &resolved.entry.owner,
            &resolved.bucket.name,
            &resolved.entry.key,
        ),
    };
    pass::plan_one_key(&source, &declared, claims, &context.settings.manager).await
}

/// Step 3: carries a one-key plan out through the same applier as `kvop reconcile`
/// (re-read and decided again after a revision conflict: by the declaration, or as a
/// removal when the plan has none).
async fn apply_one(
    context: &Context,
    connection: &Connection,
    planned: &KeyPlanned,
) -> EntryResult {
    let options = ApplyOptions {
        manager: context.settings.manager.clone(),
        scope: planned.scope,
        window: 1,
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
