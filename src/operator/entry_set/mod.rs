//! The `KeyValueEntrySet` controller: many keys of a bucket kept as one object. A
//! reconcile runs the entry controller's steps, for a whole set at once:
//! 1. `resolve`: find its bucket resource (waiting while it is not ready), read the
//!    ConfigMaps and Secrets it names (`objects`), expand its keys by the shared rules
//!    (`spec::entry_set`) and refuse a mirror;
//! 2. the set pass (`crate::pass::plan_set`): the bucket read whole where `observe` says
//!    (its live view, or one sweep), each key decided within the claims only the
//!    operator knows (`holders`), the keys it no longer declares removed as `prune`
//!    says, every value it writes checked to fit, and a set that declares nothing yet
//!    would remove keys refused;
//! 3. `apply` carries the plan out, as for `kvop reconcile`: pipelined conditional
//!    writes, ownership headers (`namespace/KeyValueEntrySet/name`), conflicts re-read
//!    and decided again (never while paused);
//! 4. `report`: counts, never a list per key, as status conditions, Events and metrics,
//!    the status written only when it changed;
//!
//! and on deletion `cleanup` removes the keys still holding the set's write, as
//! `deletionPolicy` says, behind the finalizer (`finalizing`).

mod claims;
mod cleanup;
mod objects;
mod observe;
mod report;
mod resolve;
pub mod wiring;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef as StoreRef;

use self::resolve::Resolved;
use super::context::Context;
use super::error::ControllerError;
use super::finalizing::{FirstApply, Step, finalized};
use super::holders::Watched;
use super::status::{
    PAUSED, Verdict, backoff_key, report_failure, with_conditions, write_if_changed,
};
use crate::api::{EntryDeletionPolicy, KeyValueEntrySet, KeyValueEntrySetSpec};
use crate::apply::{ApplyOptions, Outcome, apply};
use crate::manifest::LoadErrors;
use crate::nats::DEFAULT_WINDOW;
use crate::pass::{self, DeclaredSet, PassError, SetPlanned};
use crate::spec::FieldProblem;

/// The Secrets `spec` reads (whole, or one key of), by name: what `secret_refresh`
/// follows for the set.
pub fn secret_names(spec: &KeyValueEntrySetSpec) -> Vec<&str> {
    objects::referenced(spec)
        .into_iter()
        .filter(|(kind, _)| *kind == crate::spec::entry_set::ObjectKind::Secret)
        .map(|(_, name)| name)
        .collect()
}

/// Whether the set reads the ConfigMap `name` (whole, or one key of it).
pub fn reads_config_map(spec: &KeyValueEntrySetSpec, name: &str) -> bool {
    objects::referenced(spec).contains(&(crate::spec::entry_set::ObjectKind::ConfigMap, name))
}

/// Reconciles one set resource.
pub async fn reconcile(
    set: Arc<KeyValueEntrySet>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let api: Api<KeyValueEntrySet> =
        Api::namespaced(context.client.clone(), &set.namespace().unwrap_or_default());
    super::status::reset_backoff_on_request(&*set, &context.backoff);
    // Only a set whose deletion removes its keys needs the finalizer.
    let finalizer_needed = set.spec.deletion_policy != EntryDeletionPolicy::Retain;
    let result = finalized(
        &api,
        set,
        finalizer_needed,
        FirstApply::BeforeFinalizer,
        |step| async {
            match step {
                Step::Apply(set) => apply_set(&set, &context, &api).await,
                Step::Cleanup(set) => cleanup::cleanup(&set, &context, &api).await,
                Step::Abandoned(set) => {
                    let set = cleanup::as_applied(&set, &context).await;
                    cleanup::cleanup(&set, &context, &api).await
                }
            }
        },
    )
    .await;
    context
        .metrics
        .reconciled("KeyValueEntrySet", started.elapsed().as_secs_f64());
    result
}

async fn apply_set(
    set: &KeyValueEntrySet,
    context: &Context,
    api: &Api<KeyValueEntrySet>,
) -> Result<Action, ControllerError> {
    let previous = set.status.clone().unwrap_or_default();
    // 1. Resolve: its bucket, what it reads and its keys.
    let resolved = match resolve::resolve(set, context).await {
        Ok(resolved) => resolved,
        Err(error) => return Err(report_failure(api, set, &previous, error).await),
    };
    let paused = match crate::spec::paused(set.metadata.annotations.as_ref()) {
        Ok(paused) => paused,
        Err(problem) => {
            let error = ControllerError::InvalidSpec(vec![problem]);
            return Err(report_failure(api, set, &previous, error).await);
        }
    };
    // 2. The pass: observe the bucket, decide every key, check and guard.
    let planned = match plan(set, context, &resolved).await {
        Ok(planned) => planned,
        Err(error) => return Err(report_failure(api, set, &previous, invalid(error)).await),
    };
    let own = &resolved.set.owner;
    claims::note(context, own, &planned.refused_by);
    // 3. Apply, unless paused: then observed and reported, never written.
    let outcome = if paused {
        Outcome::unapplied(&planned.plan)
    } else {
        let options = ApplyOptions {
            manager: context.settings.manager.clone(),
            scope: planned.scope,
            window: DEFAULT_WINDOW,
            ride_out: false,
        };
        apply(
            &resolved.nats,
            &planned.plan,
            &planned.desired,
            &options,
            &|| (),
        )
        .await
    };
    // 4. Report.
    let declared: HashSet<&str> = resolved.keys.iter().map(|key| &*key.key).collect();
    let results: Vec<_> = outcome
        .buckets
        .into_iter()
        .flat_map(|bucket| bucket.entries)
        .collect();
    let mut report = report::report(
        &previous,
        set.metadata.generation,
        &resolved.bucket.name,
        &declared,
        &results,
    );
    // What the keys were written under, for the PREFIX column (which reads status).
    report.status.key_prefix = set
        .spec
        .key_prefix
        .clone()
        .filter(|prefix| !prefix.is_empty());
    if paused {
        report.verdict = paused_verdict(&planned);
        report.events.clear();
    }
    claims::name_rivals(context, own, &mut report.verdict);
    if report
        .status
        .outcomes
        .as_ref()
        .is_some_and(|o| o.deleted > 0)
    {
        // A key let go may be the one a refused rival declares: kvop's own delete
        // re-queues nobody through the live view.
        claims::wake_rivals(context, own);
    }
    for outcome in &report.writes {
        context.metrics.nats_operation("write", outcome);
    }
    for event in report.events {
        context
            .announce(set, event.warning, event.reason, event.note)
            .await;
    }
    let status = with_conditions(set, &previous, report.status, &report.verdict);
    write_if_changed(api, set, &previous, status).await?;
    if let Some(error) = report.failure {
        return Err(error.into());
    }
    context.backoff.reset(&backoff_key(set));
    Ok(Action::requeue(context.settings.resync_interval))
}

/// Step 2: the set pass, with what only the operator knows: where it reads the bucket
/// (`observe`) and which holders are gone (`holders`).
async fn plan(
    set: &KeyValueEntrySet,
    context: &Context,
    resolved: &Resolved,
) -> Result<SetPlanned, PassError> {
    let namespace = set.namespace().unwrap_or_default();
    let source = observe::LiveBucket {
        context,
        resource: StoreRef::new(&set.spec.bucket_ref.name).within(&namespace),
        connection: &resolved.nats,
        bucket: &resolved.bucket.name,
    };
    let declared = DeclaredSet {
        set: &resolved.set,
        keys: &resolved.keys,
        bucket: &resolved.bucket,
        max_payload: resolved.nats.max_payload(),
    };
    let holders = Watched::entries(context);
    pass::plan_set(&source, &declared, &holders, &context.settings.manager).await
}

/// A value too large names the key's source (`spec.entries[3]`, `ConfigMap app (key
/// "k")`) in its message: the field alone would not say which of thousands of keys.
fn invalid(error: PassError) -> ControllerError {
    match error {
        PassError::Invalid(LoadErrors(errors)) => ControllerError::InvalidSpec(
            errors
                .into_iter()
                .map(|error| {
                    FieldProblem::new(
                        "spec",
                        format!("{}: {}", error.origin.source, error.message),
                    )
                })
                .collect(),
        ),
        error => error.into(),
    }
}

/// A paused set is Ready while NATS holds every key as declared; it says how many keys
/// kvop would write or remove once resumed.
fn paused_verdict(planned: &SetPlanned) -> Verdict {
    let entries = planned
        .plan
        .buckets
        .iter()
        .flat_map(|bucket| &bucket.entries);
    let pending = entries.filter(|entry| entry.action.writes()).count();
    let message = if pending == 0 {
        "paused by kvop.dev/paused: it changes nothing in NATS until the annotation is removed; NATS holds the declaration".to_string()
    } else {
        format!(
            "paused by kvop.dev/paused: kvop would write or remove {pending} keys; it changes nothing in NATS until the annotation is removed"
        )
    };
    Verdict {
        ready: pending == 0,
        reason: PAUSED,
        message,
        synced: false,
    }
}
