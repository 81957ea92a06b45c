//! Capped retries of transient NATS failures (a stream leader election, a stall), so a
//! run rides out a few seconds of unavailability instead of failing, without a hot loop.

use std::future::Future;
use std::time::Duration;

use super::errors::NatsError;

/// Waits between attempts: about 7.5 s in all, plus the requests' own timeouts, enough
/// for a leader election (4 to 9 s on a 3-node cluster here).
const DELAYS: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Runs `attempt` until it succeeds, fails for good, or the delays run out. Only for
/// operations that are safe to repeat (reads, idempotent stream create/update).
pub async fn transient<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, NatsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, NatsError>>,
{
    for delay in DELAYS {
        match attempt().await {
            Err(error) if error.is_transient() && error != NatsError::Conflict => {
                tracing::warn!(%error, "{what} failed; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
            }
            done => return done,
        }
    }
    attempt().await
}
