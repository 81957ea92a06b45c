//! Observe: the stream config, statistics and one key sweep of each declared bucket.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::bucket::Bucket;
use super::connect::Connection;
use super::errors::{Doing, NatsError};
use super::stream_info::observed_stream;
use super::sweep::{Reuse, Scope, sweep};
use super::sweep_batches::split;
use crate::desired::{Desired, DesiredEntry};
use crate::observed::{Observed, ObservedBucket};

/// Buckets observed at once.
const CONCURRENT_BUCKETS: usize = 8;

/// A filtered sweep lists every key in the consumer request; past this many keys one
/// sweep of the whole bucket is cheaper.
const MAX_FILTERED_KEYS: usize = 256;

/// What each consumer after the first of a split filtered sweep costs, in keys of a whole-bucket
/// sweep: a create round trip is about 1 ms, sweeping 5,000 keys about 28 ms (O40).
const KEYS_PER_CONSUMER: u64 = 200;

/// Reads every declared bucket. With `complete`, sweeps whole buckets (prune and key
/// counts need every key); otherwise only the declared keys when that is narrower. A
/// bucket a set writes to is always swept whole: the set removes keys it no longer
/// declares, which only a whole sweep finds.
pub async fn observe(
    connection: &Connection,
    desired: &Desired,
    complete: bool,
) -> Result<Observed, NatsError> {
    let buckets = futures::stream::iter(desired.buckets.iter().map(|bucket| {
        let mut entries: Vec<&DesiredEntry> = desired.entries_of(&bucket.name).collect();
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let keys: Vec<Arc<str>> = entries.iter().map(|entry| entry.key.clone()).collect();
        let complete = complete || desired.sets_of(&bucket.name).next().is_some();
        // A re-run reads back every declared value unchanged: sharing the declared bytes
        // instead of holding a copy of each saves the values' size again.
        let declared_value = move |key: &str, value: &[u8]| {
            let found = entries
                .binary_search_by(|entry| (*entry.key).cmp(key))
                .ok()?;
            let declared = &entries[found].value;
            (declared.as_ref() == value).then(|| declared.clone())
        };
        async move {
            let doing = Doing::Observing {
                bucket: bucket.name.clone(),
            };
            let what = doing.to_string();
            let handle = connection.bucket(&bucket.name);
            connection
                .ride_out(&what, || handle.observe(&keys, &declared_value, complete))
                .await
                .map(|observed| (bucket.name.clone(), observed))
                // A refusal already names the refused subject, and may have ended this
                // bucket's attempt on behalf of another bucket's request (a refusal ends
                // every ride-out of its connection): saying which bucket would mislead.
                .map_err(|error| match error {
                    NatsError::Forbidden { .. } | NatsError::Unauthorized { .. } => error,
                    error => error.context(doing),
                })
        }
    }))
    .buffer_unordered(CONCURRENT_BUCKETS)
    .try_collect()
    .await?;
    Ok(Observed { buckets })
}

impl Bucket {
    /// The stream config, statistics and one sweep of the keys; a missing bucket is
    /// observed as having no stream. With `complete`, sweeps every key (prune and key
    /// counts need them all); otherwise only `declared_keys` when that is narrower.
    /// `reuse` may give bytes to keep instead of a copy of a value read.
    pub async fn observe(
        &self,
        declared_keys: &[Arc<str>],
        reuse: Reuse<'_>,
        complete: bool,
    ) -> Result<ObservedBucket, NatsError> {
        let stream = match self.open().await {
            Ok(stream) => stream,
            Err(error) if error.is_stream_not_found() => return Ok(ObservedBucket::default()),
            Err(error) => return Err(error),
        };
        let info = stream.cached_info().clone();
        let subjects = info.state.subjects_count;
        let refusals = &self.connection.refusals;
        // A filter only helps when it is much narrower than the bucket, and its requests
        // must fit the server's max_payload: split, unless that makes too many requests.
        let batches = (!complete && declared_keys.len() <= MAX_FILTERED_KEYS)
            .then(|| split(&self.name, declared_keys, self.connection.max_payload()))
            .flatten()
            .filter(|batches| {
                let declared = declared_keys.len() as u64;
                declared * 2 < subjects
                    && declared + batches.len().saturating_sub(1) as u64 * KEYS_PER_CONSUMER
                        < subjects
            });
        let filtered = batches.is_some();
        let keys = match batches {
            Some(batches) => {
                let mut keys = HashMap::with_capacity(declared_keys.len());
                for batch in batches {
                    keys.extend(
                        sweep(refusals, &stream, &self.name, Scope::Keys(batch), reuse).await?,
                    );
                }
                keys
            }
            None => sweep(refusals, &stream, &self.name, Scope::All, reuse).await?,
        };
        Ok(ObservedBucket {
            stream: Some(observed_stream(&info)),
            keys,
            complete: !filtered,
        })
    }
}
