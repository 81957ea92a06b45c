//! Apply: carries out a [`Plan`] with revision checks, pipelined per bucket, and reports
//! the outcome of every change. The plan's buckets here; each bucket's stream (also the
//! operator's entry points) in `bucket`; their keys, written in rounds that re-read and
//! re-decide after conflicts and transient failures, in `keys`.

mod bucket;
mod keys;
mod outcome;

use futures::{FutureExt, StreamExt};

use crate::desired::BucketClaim;
use crate::desired::Desired;
use crate::nats::{BucketWrites, Connection, MAX_IN_FLIGHT};
use crate::plan::{BucketAction, BucketPlan, ClaimScope, Claimant, Plan};

pub use bucket::{BucketApplied, BucketStep, Removed, apply_bucket_action, apply_bucket_removal};
pub use outcome::{BucketOutcome, EntryOutcome, EntryResult, Outcome};

/// Buckets applied at once (fewer when `--window` is so large that their writes together
/// would pass [`MAX_IN_FLIGHT`]); each one pipelines its own writes. With
/// 4, each wave of buckets waited for its streams to be created while the connection
/// idled: 10 new buckets of 1,000 keys took 133 ms to apply, 100 ms with all at once
/// (the raw pipelined put of the same keys: 90 ms).
const CONCURRENT_BUCKETS: usize = 16;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub manager: String,
    /// Whose writes count as the run's own when a key is decided again.
    pub scope: ClaimScope,
    /// Publishes in flight per bucket.
    pub window: usize,
    /// Retry transient failures within this run (the CLI). The operator says no: its
    /// per-object backoff retries, and a reconcile should not hold for seconds.
    pub ride_out: bool,
}

/// Applies every bucket of the plan. `on_write` is called after each acknowledged or
/// failed write (for progress).
pub async fn apply(
    connection: &Connection,
    plan: &Plan,
    desired: &Desired,
    options: &ApplyOptions,
    on_write: &(dyn Fn() + Sync),
) -> Outcome {
    apply_to(
        &|name| connection.bucket(name),
        plan,
        desired,
        options,
        on_write,
    )
    .await
}

/// [`apply`], to the buckets `open` gives by name: NATS buckets, or in tests scripted
/// ones (see [`BucketWrites`]).
pub(crate) async fn apply_to<B: BucketWrites>(
    open: &(dyn Fn(&str) -> B + Sync),
    plan: &Plan,
    desired: &Desired,
    options: &ApplyOptions,
    on_write: &(dyn Fn() + Sync),
) -> Outcome {
    // Futures are built before streaming them: a closure returning an async block that
    // borrows its argument is not general enough to be Send.
    let pending: Vec<_> = plan
        .buckets
        .iter()
        .enumerate()
        .map(|(index, bucket)| {
            apply_bucket(open, bucket, desired, options, on_write)
                .map(move |outcome| (index, outcome))
        })
        .collect();
    let mut results: Vec<(usize, BucketOutcome)> = futures::stream::iter(pending)
        .buffer_unordered((MAX_IN_FLIGHT / options.window.max(1)).clamp(1, CONCURRENT_BUCKETS))
        .collect()
        .await;
    results.sort_by_key(|(index, _)| *index);
    Outcome {
        buckets: results.into_iter().map(|(_, outcome)| outcome).collect(),
    }
}

async fn apply_bucket<B: BucketWrites>(
    open: &(dyn Fn(&str) -> B + Sync),
    plan: &BucketPlan,
    desired: &Desired,
    options: &ApplyOptions,
    on_write: &(dyn Fn() + Sync),
) -> BucketOutcome {
    let mut outcome = BucketOutcome {
        bucket: plan.bucket.clone(),
        action: plan.action.verb(),
        error: None,
        entries: Vec::new(),
    };
    let bucket = open(&plan.bucket);
    let declared = desired
        .buckets
        .iter()
        .find(|declared| declared.name == plan.bucket);
    // A file run's claim: its manager, and the manifest that declares the bucket.
    let claimant = Claimant {
        claim: BucketClaim {
            manager: options.manager.clone(),
            owner: plan.owner.to_string(),
            uid: None,
        },
        per_object: false,
        released: false,
        adopt: declared.is_some_and(|declared| declared.adopt),
    };
    let step = BucketStep {
        action: &plan.action,
        claimant: &claimant,
        desired: declared,
    };
    let applied = bucket::carry_out(&bucket, step, options.ride_out).await;
    // Keys cannot be written into a bucket that does not exist; a failed update leaves
    // the bucket usable. A create refused because another claimant made the bucket
    // meanwhile keeps its error (the run failed) and tells the keys who holds it.
    let blocked = match (&plan.action, &applied.action, &applied.error) {
        (BucketAction::Create { .. }, BucketAction::Refused { refusal }, Some(_)) => {
            Some(refusal.explain())
        }
        (BucketAction::Create { .. }, _, Some(error)) => {
            Some(format!("the bucket could not be created: {error}"))
        }
        (BucketAction::Missing, _, _) => Some("the bucket does not exist".to_string()),
        (BucketAction::Refused { refusal }, _, _) => Some(refusal.explain()),
        _ => None,
    };
    outcome.error = applied.error;
    if let Some(reason) = blocked {
        outcome.entries = plan
            .entries
            .iter()
            .map(|entry| EntryOutcome {
                key: entry.key.clone(),
                owner: entry.owner.clone(),
                result: EntryResult::NotAttempted {
                    reason: reason.clone().into(),
                },
                conflicts: 0,
                retries: 0,
            })
            .collect();
        return outcome;
    }
    outcome.entries = keys::apply_entries(&bucket, plan, desired, options, on_write).await;
    outcome
}

#[cfg(test)]
mod tests;
