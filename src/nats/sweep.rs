//! One sweep of a bucket: the last message of every key (or of the declared keys) through
//! a single pull consumer, never one request per key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{consumer, stream::Stream};
use bytes::Bytes;
use futures::StreamExt;

use super::errors::{Cause, NatsError};
use super::refusals::RefusalLog;
use crate::observed::{ObservedKey, Operation};
use crate::ownership::{MANAGER_HEADER, OWNER_HEADER, SENSITIVE_HEADER, Writer};

/// How long to wait for a message before asking the consumer whether anything is left.
const QUIET_WAIT: Duration = Duration::from_secs(2);
/// How long a sweep may go without progress before it fails.
const STALL_LIMIT: Duration = Duration::from_secs(30);
/// Sweeps started again from scratch after the consumer was lost.
const SWEEP_ATTEMPTS: usize = 3;

/// Which keys to read.
#[derive(Debug, Clone)]
pub(crate) enum Scope<'a> {
    /// Every key of the bucket.
    All,
    /// Only these keys (a narrower consumer filter when few keys are declared).
    Keys(&'a [Arc<str>]),
}

/// What a sweep keeps of a value it reads: given the key and the value read, bytes equal
/// to them that already exist (the declared value), or `None` to copy the value.
pub type Reuse<'a> = &'a (dyn Fn(&str, &[u8]) -> Option<Bytes> + Sync);

/// Reads the last message of each key in scope with one ephemeral pull consumer.
///
/// Not the async-nats ordered consumer: when it loses its consumer it silently makes a
/// new one that starts from an older position, so a count-bounded read would return old
/// revisions. Here a lost consumer restarts the whole sweep instead. The sweep ends when
/// a message reports no more pending (the count at creation is not reliable: messages
/// can expire or be purged meanwhile, and are then never delivered), or when the
/// consumer itself reports nothing pending.
pub(crate) async fn sweep(
    refusals: &RefusalLog,
    stream: &Stream,
    bucket: &str,
    scope: Scope<'_>,
    reuse: Reuse<'_>,
) -> Result<HashMap<String, ObservedKey>, NatsError> {
    let mut last_error = None;
    for _ in 0..SWEEP_ATTEMPTS {
        match sweep_once(refusals, stream, bucket, &scope, reuse).await {
            Ok(keys) => return Ok(keys),
            Err(SweepError::Lost(error)) => last_error = Some(error),
            Err(SweepError::Failed(error)) => return Err(error),
        }
    }
    Err(last_error
        .unwrap_or_else(|| NatsError::other(format!("sweep of bucket {bucket:?} failed"))))
}

enum SweepError {
    /// The consumer went away mid-sweep (deleted, missed heartbeats, leader change).
    Lost(NatsError),
    Failed(NatsError),
}

async fn sweep_once(
    refusals: &RefusalLog,
    stream: &Stream,
    bucket: &str,
    scope: &Scope<'_>,
    reuse: Reuse<'_>,
) -> Result<HashMap<String, ObservedKey>, SweepError> {
    let prefix = format!("$KV.{bucket}.");
    let filters = match scope {
        Scope::All => vec![format!("{prefix}>")],
        Scope::Keys([]) => return Ok(HashMap::new()),
        Scope::Keys(keys) => keys.iter().map(|key| format!("{prefix}{key}")).collect(),
    };
    let config = consumer_config(filters);
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|error| SweepError::Failed(refusals.classify(error)))?;
    let _delete = DeleteWhenDone {
        stream: stream.clone(),
        consumer: consumer.cached_info().name.clone(),
    };
    let pending = consumer.cached_info().num_pending;
    let mut keys = HashMap::with_capacity(usize::try_from(pending).unwrap_or(0));
    if pending == 0 {
        return Ok(keys);
    }
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1000)
        .heartbeat(Duration::from_secs(1))
        .messages()
        .await
        .map_err(|error| SweepError::Failed(refusals.classify(error)))?;
    let mut last_progress = tokio::time::Instant::now();
    let mut managers = Managers::default();
    loop {
        let message = match tokio::time::timeout(QUIET_WAIT, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(error))) => return Err(SweepError::Lost(refusals.classify(error))),
            Ok(None) => {
                return Err(SweepError::Lost(NatsError::other(format!(
                    "the sweep of bucket {bucket:?} ended early"
                ))));
            }
            Err(_) => {
                // Nothing arrived: finished if the consumer has nothing left to deliver.
                let info = consumer
                    .get_info()
                    .await
                    .map_err(|error| SweepError::Lost(refusals.classify(error)))?;
                if info.num_pending == 0 && info.num_ack_pending == 0 {
                    return Ok(keys);
                }
                if last_progress.elapsed() > STALL_LIMIT {
                    return Err(SweepError::Failed(NatsError::timeout(format!(
                        "the sweep of bucket {bucket:?} stalled after {} keys",
                        keys.len()
                    ))));
                }
                continue;
            }
        };
        last_progress = tokio::time::Instant::now();
        let info = message.info().map_err(|error| {
            SweepError::Failed(
                NatsError::other(format!("sweep of bucket {bucket:?}: {error}"))
                    .with_cause(Some(Cause::boxed(error))),
            )
        })?;
        let (revision, remaining) = (info.stream_sequence, info.pending);
        if let Some(key) = message.subject.strip_prefix(&prefix) {
            let observed = ObservedKey {
                revision,
                operation: operation(message.headers.as_ref()),
                // Never the payload itself: it is a slice of the client's read buffer,
                // and kept it would keep every byte read with it (protocol lines,
                // headers), about twice the values of a 100,000-key sweep. A value
                // equal to the declared one (every key of a re-run) shares its bytes.
                value: reuse(key, &message.payload)
                    .unwrap_or_else(|| Bytes::copy_from_slice(&message.payload)),
                writer: managers.writer(message.headers.as_ref()),
            };
            keys.insert(key.to_string(), observed);
        }
        if remaining == 0 {
            return Ok(keys);
        }
    }
}

/// Deletes a sweep's consumer once the sweep is over, however it ended. Left to its
/// inactive threshold instead, every sweep of the last 30 s kept a consumer on the
/// server: a watch repairing drift many times a second reached the server's consumer
/// limit (error 10026) and every pass failed until they expired. The delete is sent in
/// the background: a pass does not wait a round trip for it.
pub(super) struct DeleteWhenDone {
    pub(super) stream: Stream,
    pub(super) consumer: String,
}

impl Drop for DeleteWhenDone {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let stream = self.stream.clone();
        let consumer = std::mem::take(&mut self.consumer);
        runtime.spawn(async move {
            if let Err(error) = stream.delete_consumer(&consumer).await {
                // Not fatal: the server drops it after its inactive threshold.
                tracing::debug!(%consumer, %error, "could not delete a sweep's consumer");
            }
        });
    }
}

/// The sweep's consumer: the last message of each subject matching `filters`, no acks,
/// in memory, gone soon after the sweep even if kvop dies mid-way.
pub(super) fn consumer_config(filters: Vec<String>) -> consumer::pull::Config {
    let mut config = consumer::pull::Config {
        deliver_policy: consumer::DeliverPolicy::LastPerSubject,
        ack_policy: consumer::AckPolicy::None,
        inactive_threshold: Duration::from_secs(30),
        memory_storage: true,
        num_replicas: 1,
        ..Default::default()
    };
    match <[String; 1]>::try_from(filters) {
        Ok([filter]) => config.filter_subject = filter,
        Err(filters) => config.filter_subjects = filters,
    }
    config
}

/// The operation of a KV message: its `KV-Operation` header, or a server limit marker's
/// `Nats-Marker-Reason` (MaxAge and Purge count as purge, Remove as delete).
pub(crate) fn operation(headers: Option<&HeaderMap>) -> Operation {
    let Some(headers) = headers else {
        return Operation::Put;
    };
    match headers.get("KV-Operation").map(|value| value.as_str()) {
        Some("DEL") => return Operation::Delete,
        Some("PURGE") => return Operation::Purge,
        _ => {}
    }
    match headers
        .get("Nats-Marker-Reason")
        .map(|value| value.as_str())
    {
        Some("Remove") => Operation::Delete,
        Some(_) => Operation::Purge,
        None => Operation::Put,
    }
}

/// Who wrote the message, from kvop's ownership headers.
pub(crate) fn writer(headers: Option<&HeaderMap>) -> Writer {
    Managers::default().writer(headers)
}

/// Reads writers for many messages, sharing one copy of the manager name they repeat.
#[derive(Debug, Default)]
pub(crate) struct Managers {
    last: Option<Arc<str>>,
}

impl Managers {
    /// Who wrote the message, from kvop's ownership headers.
    pub(crate) fn writer(&mut self, headers: Option<&HeaderMap>) -> Writer {
        let header = |name: &str| {
            headers
                .and_then(|headers| headers.get(name))
                .map(|value| value.as_str())
        };
        let manager = header(MANAGER_HEADER).map(|manager| match &self.last {
            Some(last) if **last == *manager => Arc::clone(last),
            _ => Arc::clone(self.last.insert(Arc::from(manager))),
        });
        Writer {
            manager,
            owner: header(OWNER_HEADER).map(str::to_string),
            sensitive: header(SENSITIVE_HEADER) == Some("true"),
        }
    }
}

/// Reads the last message of one key from the stream leader (not a possibly stale
/// replica): used only to re-decide a key after a revision conflict.
pub(crate) async fn read_key(
    refusals: &RefusalLog,
    stream: &Stream,
    bucket: &str,
    key: &str,
) -> Result<Option<ObservedKey>, NatsError> {
    match stream
        .get_last_raw_message_by_subject(&super::key_subject(bucket, key))
        .await
    {
        Ok(message) => Ok(Some(ObservedKey {
            revision: message.sequence,
            operation: operation(Some(&message.headers)),
            value: message.payload,
            writer: writer(Some(&message.headers)),
        })),
        Err(error)
            if matches!(
                error.kind(),
                async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(refusals.classify(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(manager: &str, owner: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(MANAGER_HEADER, manager);
        headers.insert(OWNER_HEADER, owner);
        headers
    }

    #[test]
    fn writers_of_one_manager_share_its_name_and_others_get_their_own() {
        let mut managers = Managers::default();
        let first = managers.writer(Some(&headers("kvop", "default/a")));
        let second = managers.writer(Some(&headers("kvop", "default/b")));
        let other = managers.writer(Some(&headers("ci", "default/c")));
        let unowned = managers.writer(None);
        let (Some(first_name), Some(second_name)) = (&first.manager, &second.manager) else {
            panic!("managers read: {first:?} {second:?}");
        };
        assert!(Arc::ptr_eq(first_name, second_name));
        assert_eq!(second.owner.as_deref(), Some("default/b"));
        assert_eq!(other.manager.as_deref(), Some("ci"));
        assert!(other.is("ci") && !other.is("kvop"));
        assert_eq!(unowned, Writer::default());
    }
}
