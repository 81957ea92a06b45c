//! Step 2 of a bucket reconcile: observe the bucket's stream, plan its configuration
//! through the shared planner, and create or update it (read-modify-write).

use crate::controller::context::Context;
use crate::desired::DesiredBucket;
use crate::nats::{Bucket, NatsError};
use crate::observed::{ObservedBucket, ObservedStream};
use crate::plan::{BucketAction, decide_bucket};

/// How long a bucket that existed before waits to be created again (see `sync`).
const RECREATE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Observes the stream, plans its configuration and applies the plan. `existed_before`:
/// the status shows the bucket existed, so a missing stream was deleted (by anyone).
pub(super) async fn sync(
    desired: &DesiredBucket,
    bucket: &Bucket,
    context: &Context,
    existed_before: bool,
) -> Result<(BucketAction, Option<ObservedStream>), NatsError> {
    let observed = ObservedBucket {
        stream: bucket.state().await?,
        ..Default::default()
    };
    let action = decide_bucket(desired, &observed);
    let applied = match &action {
        BucketAction::Create { config } => {
            if existed_before {
                // nats-server 2.15.1 removes a deleted file stream's directory after it
                // answers the delete: a stream created again at once under the same name
                // can lose its files to that removal and then silently drop every message
                // ("Critical write error ... no such file"). Let the removal finish.
                tokio::time::sleep(RECREATE_DELAY).await;
            }
            Some((
                "create_bucket",
                bucket.create(config, &context.settings.manager).await,
            ))
        }
        BucketAction::Update { config, .. } => Some(("update_bucket", bucket.update(config).await)),
        _ => None,
    };
    if let Some((operation, result)) = applied {
        context
            .metrics
            .nats_operation(operation, if result.is_ok() { "ok" } else { "error" });
        result?;
        return Ok((action, bucket.state().await?));
    }
    Ok((action, observed.stream))
}
