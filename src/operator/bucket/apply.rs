//! Step 3 of a bucket reconcile: have `apply` create or update the bucket as the pass
//! planned it, and read the stream again when it was written (the status reports what
//! the server now has).

use crate::apply::{BucketApplied, BucketStep, apply_bucket_action};
use crate::desired::DesiredBucket;
use crate::nats::{Bucket, NatsError};
use crate::observed::ObservedStream;
use crate::operator::context::Context;
use crate::pass::BucketPlanned;
use crate::plan::BucketAction;

/// How long a bucket that existed before waits to be created again (see `apply`).
const RECREATE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Carries out the planned action on `bucket`: the action as carried out and the
/// stream it left. `existed_before`: the status shows the bucket existed, so a missing
/// stream was deleted (by anyone).
pub(super) async fn apply(
    planned: BucketPlanned,
    desired: &DesiredBucket,
    bucket: &Bucket,
    context: &Context,
    existed_before: bool,
) -> Result<(BucketAction, Option<ObservedStream>), NatsError> {
    let BucketPlanned {
        action,
        stream,
        claimant,
    } = planned;
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
        claimant: &claimant,
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
        (applied, None) => Ok((applied, stream)),
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
