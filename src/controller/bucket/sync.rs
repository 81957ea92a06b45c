//! Step 2 of a bucket reconcile: observe the bucket's stream, plan its configuration
//! and claim through the shared planner, and create or update it (read-modify-write).

use crate::controller::context::Context;
use crate::controller::holders;
use crate::desired::DesiredBucket;
use crate::nats::{Bucket, NatsError};
use crate::observed::{ObservedBucket, ObservedStream};
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
    let mut observed = ObservedBucket {
        stream: bucket.state().await?,
        ..Default::default()
    };
    claimant.released = holder_gone(context, claimant, observed.stream.as_ref()).await;
    let mut action = decide_bucket(desired, &observed, claimant);
    if paused {
        return Ok((action, observed.stream));
    }
    if let BucketAction::Create { config } = &action {
        if existed_before {
            // nats-server 2.15.1 removes a deleted file stream's directory after it
            // answers the delete: a stream created again at once under the same name
            // can lose its files to that removal and then silently drop every message
            // ("Critical write error ... no such file"). Let the removal finish.
            tokio::time::sleep(RECREATE_DELAY).await;
        }
        let created = bucket.create(config, &claimant.claim).await;
        record(context, "create_bucket", &created);
        if let Err(error) = created {
            // Another claimant created it first (the create is atomic): decide again
            // against what it made, which names it.
            observed.stream = bucket.state().await?;
            if observed.stream.is_none() {
                return Err(error);
            }
            action = decide_bucket(desired, &observed, claimant);
            if !matches!(action, BucketAction::Refused { .. }) {
                return Err(error);
            }
            return Ok((action, observed.stream));
        }
        return Ok((action, bucket.state().await?));
    }
    if let BucketAction::Update { config, .. } = &action {
        let updated = bucket.update(config, &claimant.claim).await;
        record(context, "update_bucket", &updated);
        updated?;
        return Ok((action, bucket.state().await?));
    }
    Ok((action, observed.stream))
}

fn record(context: &Context, operation: &'static str, result: &Result<(), NatsError>) {
    context
        .metrics
        .nats_operation(operation, if result.is_ok() { "ok" } else { "error" });
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
