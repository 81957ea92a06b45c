//! Re-reading keys after failed or conflicting writes: concurrently, and stopping at
//! the first transient failure. Read one by one against a server that has gone away,
//! every key would wait out its own request timeout: a thousand keys in doubt would hold
//! a run for hours instead of one timeout per round.

use std::sync::Arc;

use async_nats::jetstream::stream::Stream;
use futures::stream::{FuturesUnordered, StreamExt};

use super::errors::NatsError;
use super::refusals::RefusalLog;
use super::sweep::read_key;
use crate::observed::ObservedKey;

/// Reads in flight at once.
const WINDOW: usize = 64;

/// The outcome of re-reading one key.
#[derive(Debug)]
pub enum Reread {
    Read(Option<ObservedKey>),
    Failed(NatsError),
    /// Not read: another read of the round failed transiently, so the server is likely
    /// unavailable and this key waits for the next round.
    Postponed,
}

/// Re-reads `keys` from the stream leader, in the order given.
pub(crate) async fn reread_keys(
    refusals: &RefusalLog,
    stream: &Stream,
    bucket: &str,
    keys: &[Arc<str>],
) -> Vec<Reread> {
    let mut results: Vec<Reread> = keys.iter().map(|_| Reread::Postponed).collect();
    let mut in_flight = FuturesUnordered::new();
    let mut next = 0;
    loop {
        while in_flight.len() < WINDOW && next < keys.len() {
            let index = next;
            next += 1;
            in_flight.push(async move {
                (
                    index,
                    read_key(refusals, stream, bucket, &keys[index]).await,
                )
            });
        }
        let Some((index, result)) = in_flight.next().await else {
            break;
        };
        match result {
            Ok(current) => results[index] = Reread::Read(current),
            Err(error) => {
                let transient = error.is_transient();
                results[index] = Reread::Failed(error);
                if transient {
                    // Reads already in flight are dropped: their keys stay postponed.
                    break;
                }
            }
        }
    }
    results
}
