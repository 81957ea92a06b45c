//! One sweep of a bucket: the last message of every key (or of the declared keys) through
//! a single ordered consumer, never one request per key.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{consumer, stream::Stream};
use futures::StreamExt;

use super::errors::{NatsError, classify};
use crate::observed::{ObservedKey, Operation};
use crate::ownership::{MANAGER_HEADER, OWNER_HEADER, Writer};

/// How long to wait for the next message of a sweep before giving up.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which keys to read.
#[derive(Debug, Clone)]
pub enum Scope<'a> {
    /// Every key of the bucket.
    All,
    /// Only these keys (a narrower consumer filter when few keys are declared).
    Keys(&'a [String]),
}

/// Reads the last message of each key in scope. Ends on the consumer's pending count,
/// which is also right for an empty bucket (a watcher's `seen_current` never comes).
pub async fn sweep(
    stream: &Stream,
    bucket: &str,
    scope: Scope<'_>,
) -> Result<HashMap<String, ObservedKey>, NatsError> {
    let prefix = format!("$KV.{bucket}.");
    let mut config = consumer::pull::OrderedConfig {
        deliver_policy: consumer::DeliverPolicy::LastPerSubject,
        ..Default::default()
    };
    match scope {
        Scope::All => config.filter_subject = format!("{prefix}>"),
        Scope::Keys([]) => return Ok(HashMap::new()),
        Scope::Keys([key]) => config.filter_subject = format!("{prefix}{key}"),
        Scope::Keys(keys) => {
            config.filter_subjects = keys.iter().map(|key| format!("{prefix}{key}")).collect()
        }
    }
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|error| classify(&error))?;
    let pending = consumer.cached_info().num_pending;
    let mut keys = HashMap::with_capacity(usize::try_from(pending).unwrap_or(0));
    if pending == 0 {
        return Ok(keys);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| classify(&error))?;
    for _ in 0..pending {
        let message = match tokio::time::timeout(MESSAGE_TIMEOUT, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(error))) => return Err(classify(&error)),
            Ok(None) => break,
            Err(_) => {
                return Err(NatsError::Timeout(format!(
                    "sweep of bucket {bucket:?} stalled after {} of {pending} keys",
                    keys.len()
                )));
            }
        };
        let Some(key) = message.subject.strip_prefix(&prefix) else {
            continue;
        };
        let revision = message
            .info()
            .map_err(|error| NatsError::Other(format!("sweep of bucket {bucket:?}: {error}")))?
            .stream_sequence;
        let observed = ObservedKey {
            revision,
            operation: operation(message.headers.as_ref()),
            value: message.payload.clone(),
            writer: writer(message.headers.as_ref()),
        };
        keys.insert(key.to_string(), observed);
    }
    Ok(keys)
}

/// The operation of a KV message: its `KV-Operation` header, or a server limit marker's
/// `Nats-Marker-Reason` (MaxAge and Purge count as purge, Remove as delete).
pub fn operation(headers: Option<&HeaderMap>) -> Operation {
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
pub fn writer(headers: Option<&HeaderMap>) -> Writer {
    let header = |name: &str| {
        headers
            .and_then(|headers| headers.get(name))
            .map(|value| value.as_str().to_string())
    };
    Writer {
        manager: header(MANAGER_HEADER),
        owner: header(OWNER_HEADER),
    }
}

/// Reads the last message of one key from the stream leader (not a possibly stale
/// replica): used only to re-decide a key after a revision conflict.
pub async fn read_key(
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
        Err(error) => Err(classify(&error)),
    }
}
