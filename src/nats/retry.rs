//! Capped retries of transient NATS failures (a stream leader election, a stall), so a
//! run rides out a few seconds of unavailability instead of failing, without a hot loop.
//! A refused permission or credential is never transient, and ends an attempt at once.

use std::future::Future;
use std::time::Duration;

use super::errors::NatsError;
use super::refusals::RefusalLog;

/// Waits between attempts: about 7.5 s in all, plus the requests' own timeouts, enough
/// for a leader election (4 to 9 s on a 3-node cluster here).
const DELAYS: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Runs `attempt` (requests on the connection `refusals` belongs to) until it succeeds,
/// fails for good, or the delays run out. Only for operations that are safe to repeat
/// (reads, idempotent stream create/update).
pub(crate) async fn transient<T, F, Fut>(
    refusals: &RefusalLog,
    what: &str,
    mut attempt: F,
) -> Result<T, NatsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, NatsError>>,
{
    for delay in DELAYS {
        match unless_refused(refusals, attempt()).await {
            Err(error) if error.is_transient() && !error.is_conflict() => {
                tracing::warn!(%error, "{what} failed; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
            }
            done => return done,
        }
    }
    unless_refused(refusals, attempt()).await
}

/// Runs one attempt, but fails it as soon as the server refuses a permission or the
/// credentials: it drops a denied request, and a connection refused on reconnecting stays
/// down, so the answer would only be a timeout 10 s later. Any refusal on the connection
/// counts, whichever request caused it: this is the CLI's ride-out, and there a refusal
/// fails the run anyway.
async fn unless_refused<T>(
    refusals: &RefusalLog,
    attempt: impl Future<Output = Result<T, NatsError>>,
) -> Result<T, NatsError> {
    let mut refused = refusals.signal();
    tokio::select! {
        // A finished attempt wins over a refusal reported in the same instant.
        biased;
        result = attempt => result,
        Ok(()) = refused.changed() => Err(refusals.recent().unwrap_or_else(|| {
            NatsError::forbidden("the server refused a request of this connection")
        })),
    }
}
