//! Conditional writes, pipelined: a bounded window of publishes in flight, each with its
//! revision check and ownership headers. No write is ever unconditional.

use async_nats::HeaderMap;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage as Publish;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};

use super::connect::Connection;
use super::errors::NatsError;
use super::key_subject;
use super::refusals::RefusalLog;
use crate::ownership::{MANAGER_HEADER, OWNER_HEADER, SENSITIVE_HEADER};

/// Publishes in flight at once: enough to keep the server busy, few enough to bound
/// memory and the damage of a dropped connection.
pub const DEFAULT_WINDOW: usize = 256;

/// The most writes in flight on one connection, over all buckets. async-nats lets
/// 5,000 publishes wait for their acks and makes the next one wait for a free slot; a
/// bucket waiting there does not collect its own acks, so more than that in flight at
/// once could wait forever.
pub const MAX_IN_FLIGHT: usize = 4096;

/// One write to a key, borrowing its names from the plan: a large apply holds every
/// write of a bucket at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write<'a> {
    pub key: &'a str,
    pub op: WriteOp,
    /// The revision the key must still have: 0 for a key with no messages, the marker's
    /// revision for a deleted key, the observed revision otherwise.
    pub expected_revision: u64,
    /// `namespace/name` of the declaring object.
    pub owner: &'a str,
    /// The value came from a Secret: the message says so ([`SENSITIVE_HEADER`]).
    pub sensitive: bool,
}

/// What a write does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put(Bytes),
    /// A delete marker; history is kept.
    Delete,
    /// A purge marker that removes the key's history.
    Purge,
}

/// The result of one write. The error is boxed: a round holds one result per write,
/// nearly all of them `Written`, and an inline `NatsError` (80 bytes) made each one
/// 88 bytes instead of 16.
#[derive(Debug, Clone)]
pub enum WriteResult {
    /// Stored at this revision.
    Written {
        revision: u64,
    },
    Failed(Box<NatsError>),
    /// Never sent: an earlier write of the batch failed transiently (the server stopped
    /// answering), so sending more would only queue up more timeouts.
    NotSent(Box<NatsError>),
}

/// Sends `count` writes of one bucket, the `index`th being `write_at(index)`, with at
/// most `window` in flight, and hands each result to `on_result` as it settles (in the
/// order the acknowledgements come, not the order of the writes). Writes are built one
/// at a time as they are sent: a bucket of 100,000 changes never holds its writes as a
/// list. After a transient failure nothing more is sent; every write not sent is then
/// reported `NotSent`, in order.
pub(super) async fn write_all<'a>(
    connection: &Connection,
    bucket: &str,
    manager: &str,
    count: usize,
    write_at: impl Fn(usize) -> Write<'a>,
    window: usize,
    mut on_result: impl FnMut(usize, WriteResult),
) {
    let refusals = &connection.refusals;
    let mut in_flight = FuturesUnordered::new();
    // The first transient failure (a timeout, a lost connection): sending stops there.
    let mut unavailable: Option<NatsError> = None;
    let mut settle = |index: usize,
                      write: &Write<'_>,
                      result: WriteResult,
                      unavailable: &mut Option<NatsError>| {
        record(bucket, write, &result);
        if let WriteResult::Failed(error) = &result
            && error.is_transient()
            && !error.is_conflict()
            && unavailable.is_none()
        {
            *unavailable = Some((**error).clone());
        }
        on_result(index, result);
    };
    let mut sent = 0;
    while sent < count {
        if in_flight.len() >= window.max(1)
            && let Some((done, write, result)) = in_flight.next().await
        {
            settle(done, &write, result, &mut unavailable);
        }
        if unavailable.is_some() {
            break;
        }
        let index = sent;
        sent += 1;
        let write = write_at(index);
        match connection
            .jetstream
            .send_publish(key_subject(bucket, write.key), publish(manager, &write))
            .await
        {
            Ok(ack) => in_flight.push(async move {
                let result = match ack.await {
                    Ok(ack) => WriteResult::Written {
                        revision: ack.sequence,
                    },
                    Err(error) => WriteResult::Failed(Box::new(classify_publish(refusals, error))),
                };
                (index, write, result)
            }),
            Err(error) => settle(
                index,
                &write,
                WriteResult::Failed(Box::new(classify_publish(refusals, error))),
                &mut unavailable,
            ),
        }
    }
    while let Some((done, write, result)) = in_flight.next().await {
        settle(done, &write, result, &mut unavailable);
    }
    if sent < count {
        let unsent = unavailable.unwrap_or_else(|| NatsError::other("write was not sent"));
        // Not attempted, so not in the operation log.
        for index in sent..count {
            on_result(index, WriteResult::NotSent(Box::new(unsent.clone())));
        }
    }
}

/// What a failed publish means. "No stream found for given subject" is a publish no
/// stream answered (no responders) on a bucket kvop has just observed: in a cluster,
/// its stream's leader was lost and the next is not elected yet (a few seconds), when
/// nothing listens on its subjects. Worth riding out like the server's 503; a bucket
/// deleted meanwhile fails the same way until the capped retries run out.
pub(super) fn classify_publish(refusals: &RefusalLog, error: PublishError) -> NatsError {
    if error.kind() == PublishErrorKind::StreamNotFound {
        return NatsError::unavailable(
            "no stream answered for the bucket (its stream is electing a leader, or was deleted)",
        )
        .caused_by(error);
    }
    refusals.classify(error)
}

/// The operation log: one event per write attempt under the `kvop::write` target, so
/// `--log-level warn,kvop::write=debug --log-format json` gives an audit trail of every
/// revision-checked write kvop tried and what the server answered.
fn record(bucket: &str, write: &Write<'_>, result: &WriteResult) {
    let op = match write.op {
        WriteOp::Put(_) => "put",
        WriteOp::Delete => "delete",
        WriteOp::Purge => "purge",
    };
    match result {
        WriteResult::Written { revision } => tracing::debug!(
            target: "kvop::write",
            bucket,
            key = write.key,
            op,
            expected_revision = write.expected_revision,
            outcome = "written",
            revision,
        ),
        WriteResult::Failed(error) | WriteResult::NotSent(error) => tracing::debug!(
            target: "kvop::write",
            bucket,
            key = write.key,
            op,
            expected_revision = write.expected_revision,
            outcome = error.reason(),
            error = %error,
        ),
    }
}

fn publish(manager: &str, write: &Write<'_>) -> Publish {
    let mut headers = HeaderMap::new();
    headers.insert(MANAGER_HEADER, manager);
    headers.insert(OWNER_HEADER, write.owner);
    if write.sensitive && matches!(write.op, WriteOp::Put(_)) {
        headers.insert(SENSITIVE_HEADER, "true");
    }
    let payload = match &write.op {
        WriteOp::Put(value) => value.clone(),
        WriteOp::Delete => {
            headers.insert("KV-Operation", "DEL");
            Bytes::new()
        }
        WriteOp::Purge => {
            headers.insert("KV-Operation", "PURGE");
            headers.insert("Nats-Rollup", "sub");
            Bytes::new()
        }
    };
    Publish::build()
        .payload(payload)
        .headers(headers)
        .expected_last_subject_sequence(write.expected_revision)
}
