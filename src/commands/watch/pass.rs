//! One pass of the watch over some buckets: the shared pass (`crate::pass`: observe,
//! check, plan, guard), then hold back deletions that have not settled, apply, and log
//! one line per change made. The same steps as a one-shot `kvop reconcile`, with the log
//! in place of the report.

use std::collections::BTreeSet;

use super::log::{Before, log_changes, log_kept};
use super::memory::{Memory, PassSummary};
use crate::apply::{ApplyOptions, Outcome, apply};
use crate::desired::Desired;
use crate::metrics::Metrics;
use crate::nats::Connection;
use crate::pass::{PassError, PassOptions, Planned, plan_against_server};
use crate::plan::ClaimScope;

/// The metrics' `kind` label of a watch pass.
pub const PASS_KIND: &str = "Watch";

/// How passes write.
#[derive(Debug, Clone)]
pub struct PassSettings {
    pub manager: String,
    pub prune: bool,
    pub allow_empty_prune: bool,
    pub window: usize,
}

/// What a pass works from: the declarations to apply and those in force before them
/// (the same for a repair; `None` before the first). A bucket declared as before that
/// NATS lost or changed corrects drift; a key no longer declared is said to go or stay.
pub struct Declarations<'a> {
    pub desired: &'a Desired,
    pub before: Option<&'a Desired>,
}

/// Brings `buckets` (every declared bucket when `None`) in line with the declarations.
pub async fn pass(
    connection: &Connection,
    declarations: &Declarations<'_>,
    buckets: Option<&BTreeSet<String>>,
    settings: &PassSettings,
    metrics: &Metrics,
    memory: &mut Memory,
) -> Result<PassSummary, PassError> {
    let desired = declarations.desired;
    let narrowed;
    let desired = match buckets {
        Some(names) => {
            narrowed = only(desired, names);
            &narrowed
        }
        None => desired,
    };
    let Planned {
        observed, mut plan, ..
    } = plan_against_server(
        connection,
        desired,
        &PassOptions {
            manager: settings.manager.clone(),
            prune: settings.prune,
            allow_empty_prune: settings.allow_empty_prune,
        },
    )
    .await?;
    let prune_due = memory.held.hold(&mut plan);
    if let Some(before) = declarations.before.filter(|_| settings.prune) {
        log_kept(before, desired, &observed, &settings.manager);
    }
    let outcome = if plan.has_changes() {
        let options = ApplyOptions {
            scope: ClaimScope::Manager,
            manager: settings.manager.clone(),
            window: settings.window,
            ride_out: true,
        };
        apply(connection, &plan, desired, &options, &|| {}).await
    } else {
        Outcome::unapplied(&plan)
    };
    let before = Before::new(declarations.desired, declarations.before);
    let mut summary = log_changes(&plan, &outcome, metrics, memory, &before);
    summary.prune_due = prune_due;
    Ok(summary)
}

/// The declarations of `names` only.
fn only(desired: &Desired, names: &BTreeSet<String>) -> Desired {
    Desired {
        buckets: desired
            .buckets
            .iter()
            .filter(|bucket| names.contains(&bucket.name))
            .cloned()
            .collect(),
        entries: desired
            .entries
            .iter()
            .filter(|entry| names.contains(&*entry.bucket))
            .cloned()
            .collect(),
        sets: desired
            .sets
            .iter()
            .filter(|set| names.contains(&*set.bucket))
            .cloned()
            .collect(),
    }
}
