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
use crate::plan::{self, EntryAction, Plan, PlanOptions, Removal};

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
    refuse_empty_prune(desired, &plan, options)?;
    Ok(Planned {
        observed,
        plan,
        observing,
    })
}

/// A prune would delete keys while declaring none: `--prune` every key of these
/// buckets, or a set the keys it wrote (or found under its exclusive prefix), and neither
/// `--allow-empty-prune` nor the set's `kvop.dev/allow-empty-prune` says yes.
#[derive(Debug, thiserror::Error)]
pub struct EmptyPrune {
    pub buckets: Vec<String>,
    /// Each set (`namespace/KeyValueEntrySet/name`) with how many keys it would remove.
    pub sets: Vec<(String, usize)>,
}

impl std::fmt::Display for EmptyPrune {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.buckets.is_empty() {
            let one = self.buckets.len() == 1;
            write!(
                f,
                "refusing to prune every key of bucket{} {}: no entries are declared for {}; pass --allow-empty-prune if that is intended",
                if one { "" } else { "s" },
                self.buckets.join(", "),
                if one { "it" } else { "them" }
            )?;
        }
        for (index, (set, keys)) in self.sets.iter().enumerate() {
            if index > 0 || !self.buckets.is_empty() {
                f.write_str("; ")?;
            }
            write!(
                f,
                "refusing to let {set} delete {keys} key{} while it declares none (an emptied ConfigMap or Secret?); annotate it kvop.dev/allow-empty-prune: \"true\" or pass --allow-empty-prune if that is intended",
                if *keys == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

/// A prune on a bucket, or by a set, that declares no keys would delete every key it
/// holds: most often an emptied or mistyped directory or ConfigMap, so it needs an
/// explicit yes.
fn refuse_empty_prune(
    desired: &Desired,
    plan: &Plan,
    options: &PassOptions,
) -> Result<(), EmptyPrune> {
    if options.allow_empty_prune {
        return Ok(());
    }
    let removes = |entry: &crate::plan::EntryPlan, which: &[Removal]| matches!(entry.action, EntryAction::Remove { removal, .. } if which.contains(&removal));
    let buckets: Vec<String> = plan
        .buckets
        .iter()
        .filter(|bucket| {
            let declared = bucket.entries.iter().any(|entry| entry.origin.is_some());
            let pruned = bucket
                .entries
                .iter()
                .any(|entry| removes(entry, &[Removal::Prune]));
            options.prune && !declared && pruned
        })
        .map(|bucket| bucket.bucket.clone())
        .collect();
    let sets: Vec<(String, usize)> = desired
        .sets
        .iter()
        .filter_map(|set| {
            let declares_none = !desired.entries.iter().any(|entry| entry.owner == set.owner);
            let entries = plan
                .buckets
                .iter()
                .filter(|bucket| bucket.bucket == *set.bucket)
                .flat_map(|bucket| &bucket.entries);
            super::set::empty_prune(set, declares_none, entries)
        })
        .collect();
    if buckets.is_empty() && sets.is_empty() {
        return Ok(());
    }
    Err(EmptyPrune { buckets, sets })
}
