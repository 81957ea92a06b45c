//! Step 2 of a bucket reconcile: observe the bucket's stream, plan its configuration
//! and claim through the shared planner, and have `apply` create or update it.

use crate::apply::{BucketApplied, BucketStep, apply_bucket_action};
use crate::desired::DesiredBucket;
use crate::nats::{Bucket, NatsError};
use crate::observed::{ObservedBucket, ObservedStream};
use crate::operator::context::Context;
use crate::operator::holders;
use crate::plan::{BucketAction, Claimant, decide_bucket};

/// How long a bucket that existed before waits to be created again (see `sync`).
const RECREATE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Observes the stream, plans its configuration and claim and applies the plan (unless
/// `paused`: then the plan is only returned). `existed_before`: the status shows the
/// bucket existed, so a missing stream was deleted (by anyone).
pub(super) async fn sync(
    desired: &DesiredBucket,
    bucket: &Bucket,
    context: &Context,
    claimant: &mut Claimant,
    existed_before: bool,
    paused: bool,
) -> Result<(BucketAction, Option<ObservedStream>), NatsError> {
    let observed = ObservedBucket {
        stream: bucket.state().await?,
        ..Default::default()
    };
    claimant.released = holder_gone(context, claimant, observed.stream.as_ref()).await;
    let action = decide_bucket(desired, &observed, claimant);
    if paused {
        return Ok((action, observed.stream));
    }
    if let BucketAction::Create { .. } = &action
        && existed_before
    {
        // nats-server 2.15.1 removes a deleted file stream's directory after it answers
        // the delete: a stream created again at once under the same name can lose its
        // files to that removal and then silently drop every message ("Critical write
        // error ... no such file"). Let the removal finish.
        tokio::time::sleep(RECREATE_DELAY).await;
    }
    let step = BucketStep {
        action: &action,
        claimant,
        desired: Some(desired),
    };
    // No riding out: the controller's per-object backoff retries, and a reconcile does
    // not hold its worker for seconds on a failing server.
    let BucketApplied {
        action: applied,
        error,
    } = apply_bucket_action(bucket, step, false).await;
    if let Some(operation) = operation(&action) {
        context
            .metrics
            .nats_operation(operation, if error.is_none() { "ok" } else { "error" });
    }
    match (applied, error) {
        // Another claimant created the bucket first: reported as refused, naming it.
        (refused @ BucketAction::Refused { .. }, _) => Ok((refused, bucket.state().await?)),
        (_, Some(error)) => Err(error),
        (applied, None) if applied.writes() => Ok((applied, bucket.state().await?)),
        (applied, None) => Ok((applied, observed.stream)),
    }
}

/// The metric label of the NATS operation that carries out `action`, if any.
fn operation(action: &BucketAction) -> Option<&'static str> {
    match action {
        BucketAction::Create { .. } => Some("create_bucket"),
        BucketAction::Update { .. } => Some("update_bucket"),
        BucketAction::Unchanged
        | BucketAction::Blocked { .. }
        | BucketAction::Observe
        | BucketAction::Missing
        | BucketAction::Refused { .. } => None,
    }
}

/// Whether the stream's holder is another bucket resource of this manager that is gone
/// ([`holders::gone`]): its claim passes on.
async fn holder_gone(
    context: &Context,
    claimant: &Claimant,
    stream: Option<&ObservedStream>,
) -> bool {
    match stream.and_then(|stream| stream.claim.as_ref()) {
        Some(held)
            if held.manager == claimant.claim.manager && held.owner != claimant.claim.owner =>
        {
            holders::gone(context, &context.buckets, &held.owner).await
        }
        _ => false,
    }
}
