//! Apply for one bucket's stream: create or update it as planned, and carry out the
//! decision for a deleted resource's bucket (delete it, or release its claim). The only
//! place kvop writes a stream's configuration: `kvop reconcile` reaches it through
//! [`super::apply`], the operator's bucket controller through the entry points here.

use std::future::Future;

use crate::desired::{BucketClaim, DesiredBucket};
use crate::nats::{Bucket, BucketWrites, Deleted, NatsError};
use crate::observed::ObservedBucket;
use crate::plan::{BucketAction, BucketRemoval, Claimant, decide_bucket};

/// A planned bucket action with what carrying it out needs: the claim it records, and
/// the declaration to decide again by when a create meets a stream made meanwhile.
pub struct BucketStep<'a> {
    pub action: &'a BucketAction,
    pub claimant: &'a Claimant,
    /// `None`: nothing to decide again by (the create's error is reported as it is).
    pub desired: Option<&'a DesiredBucket>,
}

/// What carrying out a bucket action did.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketApplied {
    /// The action carried out or, when the server refused a create because a stream of
    /// that name exists now and deciding again against it refuses the bucket (another
    /// claimant created it first), that refusal: it names the holder.
    pub action: BucketAction,
    /// The write's error, if it failed (kept when the action was decided again).
    pub error: Option<NatsError>,
}

/// What carrying out a [`BucketRemoval`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Deleted,
    /// Deleting found no bucket: someone deleted it first.
    AlreadyGone,
    /// The resource's claim was removed (if it was still the one recorded).
    Released,
    /// Nothing was written.
    Untouched,
}

/// Carries out `step` on the bucket (the operator's bucket controller). `ride_out`
/// retries transient failures for a few seconds (see [`super::ApplyOptions`]); the
/// operator says no, since its per-object backoff retries without holding a reconcile.
pub async fn apply_bucket_action(
    bucket: &Bucket,
    step: BucketStep<'_>,
    ride_out: bool,
) -> BucketApplied {
    carry_out(bucket, step, ride_out).await
}

/// Carries out the decision for a deleted resource's bucket, `claim` being the
/// resource's. One attempt: only the operator removes buckets, and it retries through
/// its backoff while the finalizer holds the resource.
pub async fn apply_bucket_removal(
    bucket: &Bucket,
    removal: &BucketRemoval,
    claim: &BucketClaim,
) -> Result<Removed, NatsError> {
    remove(bucket, removal, claim).await
}

/// [`apply_bucket_action`] on any [`BucketWrites`] (a scripted bucket in tests).
pub(crate) async fn carry_out<B: BucketWrites>(
    bucket: &B,
    BucketStep {
        action,
        claimant,
        desired,
    }: BucketStep<'_>,
    ride_out: bool,
) -> BucketApplied {
    let claim = &claimant.claim;
    // Both are safe to repeat: create is idempotent for an identical config, update is a
    // read-modify-write.
    let written = match action {
        BucketAction::Create { config } => {
            attempt(bucket, ride_out, "creating the bucket", || {
                bucket.create(config, claim)
            })
            .await
        }
        BucketAction::Update { config, .. } => {
            attempt(bucket, ride_out, "updating the bucket", || {
                bucket.update(config, claim)
            })
            .await
        }
        BucketAction::Unchanged
        | BucketAction::Blocked { .. }
        | BucketAction::Observe
        | BucketAction::Missing
        | BucketAction::Refused { .. } => Ok(()),
    };
    let Err(error) = written else {
        return BucketApplied {
            action: action.clone(),
            error: None,
        };
    };
    // The create is atomic: of two claimants creating one bucket at once, the second is
    // refused (10058, a stream of that name exists with another config). Decide again
    // against what the first made, which names its holder. Only after the server's own
    // answer: a timeout or a refused permission would make the read wait or fail too.
    if let (BucketAction::Create { .. }, NatsError::Rejected { .. }, Some(desired)) =
        (action, &error, desired)
        && let Ok(Some(stream)) = bucket.state().await
    {
        let observed = ObservedBucket {
            stream: Some(stream),
            ..Default::default()
        };
        let again = decide_bucket(desired, &observed, claimant);
        if let BucketAction::Refused { .. } = again {
            return BucketApplied {
                action: again,
                error: Some(error),
            };
        }
    }
    BucketApplied {
        action: action.clone(),
        error: Some(error),
    }
}

/// [`apply_bucket_removal`] on any [`BucketWrites`].
pub(crate) async fn remove<B: BucketWrites>(
    bucket: &B,
    removal: &BucketRemoval,
    claim: &BucketClaim,
) -> Result<Removed, NatsError> {
    match removal {
        BucketRemoval::Delete => Ok(match bucket.delete().await? {
            Deleted::Deleted => Removed::Deleted,
            Deleted::Missing => Removed::AlreadyGone,
        }),
        BucketRemoval::Retain | BucketRemoval::KeepAdopted => {
            bucket.release(claim).await?;
            Ok(Removed::Released)
        }
        BucketRemoval::HeldElsewhere { .. } | BucketRemoval::Observe | BucketRemoval::Gone => {
            Ok(Removed::Untouched)
        }
    }
}

/// One write, ridden out through transient failures when `ride_out` says so.
async fn attempt<B, F, Fut>(
    bucket: &B,
    ride_out: bool,
    what: &str,
    mut write: F,
) -> Result<(), NatsError>
where
    B: BucketWrites,
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Result<(), NatsError>> + Send,
{
    if ride_out {
        bucket.ride_out(what, write).await
    } else {
        write().await
    }
}
