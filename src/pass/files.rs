//! The pass for the front doors that read files (`kvop reconcile`, `--watch`, and the
//! diff they can print): **observe** the declared buckets (one sweep each), **check**
//! what only the server knows (its payload and the buckets' value limits), **plan**, and
//! **guard** (a prune that would empty a bucket needs an explicit yes). Loading comes
//! before it and applying after it; both are the caller's, since a dry run stops here.

use std::time::{Duration, Instant};

use super::PassError;
use super::check_against_server;
use crate::desired::Desired;
use crate::manifest::LoadErrors;
use crate::nats::{Connection, observe};
use crate::observed::Observed;
use crate::plan::{self, EntryAction, Plan, PlanOptions};

/// What a pass is asked to plan.
#[derive(Debug, Clone)]
pub struct PassOptions {
    pub manager: String,
    pub prune: bool,
    pub allow_empty_prune: bool,
}

/// A checked plan and what it was made from.
#[derive(Debug)]
pub struct Planned {
    pub observed: Observed,
    pub plan: Plan,
    /// How long observing took (the rest is planning), for a run's phase log.
    pub observing: Duration,
}

/// Observes, checks, plans and guards `desired` against the server of `connection`.
pub async fn plan_against_server(
    connection: &Connection,
    desired: &Desired,
    options: &PassOptions,
) -> Result<Planned, PassError> {
    let started = Instant::now();
    let observed = observe(connection, desired, options.prune).await?;
    let observing = started.elapsed();
    // Limits only the server knows, checked before the first write.
    let too_big = check_against_server(
        desired,
        &observed,
        &options.manager,
        connection.max_payload(),
    );
    if !too_big.is_empty() {
        return Err(LoadErrors(too_big).into());
    }
    let plan = plan::plan(
        desired,
        &observed,
        &PlanOptions {
            manager: options.manager.clone(),
            prune: options.prune,
        },
    );
    refuse_empty_prune(&plan, options.prune, options.allow_empty_prune)?;
    Ok(Planned {
        observed,
        plan,
        observing,
    })
}

/// `--prune` would delete every key of these buckets, and `--allow-empty-prune` was not
/// given.
#[derive(Debug, thiserror::Error)]
pub struct EmptyPrune {
    pub buckets: Vec<String>,
}

impl std::fmt::Display for EmptyPrune {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one = self.buckets.len() == 1;
        write!(
            f,
            "refusing to prune every key of bucket{} {}: no entries are declared for {}; pass --allow-empty-prune if that is intended",
            if one { "" } else { "s" },
            self.buckets.join(", "),
            if one { "it" } else { "them" }
        )
    }
}

/// `--prune` on a bucket with no declared entries would delete every key this manager
/// wrote: most often an emptied or mistyped directory, so it needs an explicit yes.
fn refuse_empty_prune(plan: &Plan, prune: bool, allow_empty_prune: bool) -> Result<(), EmptyPrune> {
    if !prune || allow_empty_prune {
        return Ok(());
    }
    let emptied: Vec<String> = plan
        .buckets
        .iter()
        .filter(|bucket| {
            let declared = bucket.entries.iter().any(|entry| entry.origin.is_some());
            let pruned = bucket
                .entries
                .iter()
                .any(|entry| matches!(entry.action, EntryAction::Remove { .. }));
            !declared && pruned
        })
        .map(|bucket| bucket.bucket.clone())
        .collect();
    if emptied.is_empty() {
        return Ok(());
    }
    Err(EmptyPrune { buckets: emptied })
}
