//! A live view of a bucket: the last message of every key, then every change after it,
//! through one long-lived consumer (never one per key); and the server's
//! announcements of changes to the bucket's stream itself. The operator keeps its entries
//! current with it; nothing here knows who listens.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::bucket::Bucket;
use super::errors::NatsError;
use super::stream_info::observed_stream;
use super::stream_name;
use super::sweep::{DeleteWhenDone, Managers, consumer_config, operation};
use crate::observed::{ObservedKey, ObservedStream};

/// Messages asked for at once: a large bucket loads in few round trips.
const LOAD_BATCH: usize = 1000;
/// How often an idle view hears from the server; two missed end the view.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long one pull request waits for messages before the next is sent.
const PULL_EXPIRES: Duration = Duration::from_secs(30);

/// What following a bucket reports, in order: `Opened`, then `Loaded` once, then `Key`
/// for every change.
#[derive(Debug)]
pub enum Change {
    /// The view opened on the bucket's stream, as it is now: a view that saw a higher
    /// revision of the same stream (same creation time) knows the stream went backwards;
    /// one with another creation time is following a stream created again.
    Opened(Box<ObservedStream>),
    /// The last message of every key, as the view loaded it.
    Loaded(HashMap<String, ObservedKey>),
    /// A key changed after loading.
    Key { key: String, observed: ObservedKey },
}

impl Bucket {
    /// Loads the last message of every key, then follows every change, calling `on` for
    /// each; until `on` breaks (`Ok`) or the view fails (a stream that does not exist,
    /// a lost consumer or message, a dropped connection), which a caller answers by
    /// following again.
    ///
    /// kvop's own consumer, not the async-nats ordered consumer: that one re-creates a
    /// lost consumer forever, so a view whose stream was deleted just after it opened
    /// waited, silently, and no pass created the bucket again until the resync (seen in
    /// tests/watch.rs). Here anything lost ends the view: the caller follows again,
    /// finds the stream missing or loads it afresh, and asks for a pass.
    pub async fn follow(
        &self,
        mut on: impl FnMut(Change) -> ControlFlow<()>,
    ) -> Result<(), NatsError> {
        let stream = self.open().await?;
        let opened = Box::new(observed_stream(stream.cached_info()));
        if on(Change::Opened(opened)).is_break() {
            return Ok(());
        }
        let prefix = format!("$KV.{}.", self.name);
        let consumer = stream
            .create_consumer(consumer_config(vec![format!("{prefix}>")]))
            .await
            .map_err(|error| self.connection.classify(error))?;
        let _delete = DeleteWhenDone {
            stream: stream.clone(),
            consumer: consumer.cached_info().name.clone(),
        };
        // Loaded when a message reports nothing pending (a count taken at creation would
        // wait forever for messages that expired meanwhile).
        let mut loading = Some(HashMap::new());
        if consumer.cached_info().num_pending == 0
            && let Some(loaded) = loading.take()
            && on(Change::Loaded(loaded)).is_break()
        {
            return Ok(());
        }
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(LOAD_BATCH)
            .heartbeat(HEARTBEAT)
            .expires(PULL_EXPIRES)
            .messages()
            .await
            .map_err(|error| self.connection.classify(error))?;
        let mut managers = Managers::default();
        let mut delivered = 0;
        while let Some(message) = messages.next().await {
            // A missed heartbeat, the consumer deleted (with its stream), a failed pull.
            let message = message.map_err(|error| self.connection.classify(error))?;
            let Ok(info) = message.info() else { continue };
            // Without acks nothing is delivered twice: a skipped sequence is a message the
            // client dropped (a slow consumer), which the view must not paper over.
            if info.consumer_sequence != delivered + 1 {
                return Err(NatsError::unavailable(format!(
                    "the view of bucket {:?} missed messages {}..{}",
                    self.name,
                    delivered + 1,
                    info.consumer_sequence
                )));
            }
            delivered = info.consumer_sequence;
            let Some(key) = message.subject.strip_prefix(&prefix).map(str::to_string) else {
                continue;
            };
            let observed = ObservedKey {
                revision: info.stream_sequence,
                operation: operation(message.headers.as_ref()),
                // A copy: the payload is a slice of the client's read buffer, and
                // holding it would keep that whole buffer alive for every key.
                value: Bytes::copy_from_slice(&message.payload),
                writer: managers.writer(message.headers.as_ref()),
            };
            let flow = match &mut loading {
                Some(keys) => {
                    keys.insert(key, observed);
                    match info.pending {
                        0 => on(Change::Loaded(loading.take().unwrap_or_default())),
                        _ => ControlFlow::Continue(()),
                    }
                }
                None => on(Change::Key { key, observed }),
            };
            if flow.is_break() {
                return Ok(());
            }
        }
        Err(NatsError::unavailable(format!(
            "the watch of bucket {:?} ended",
            self.name
        )))
    }

    /// Calls `on` whenever the server announces a change to the bucket's stream
    /// (updated or deleted, by anyone); never returns. Without permission to subscribe
    /// to stream advisories it just waits: callers must not depend on it alone.
    pub async fn follow_stream_changes(&self, mut on: impl FnMut()) {
        let subject = format!("$JS.EVENT.ADVISORY.STREAM.*.{}", stream_name(&self.name));
        match self.connection.client.subscribe(subject).await {
            Ok(mut advisories) => {
                while advisories.next().await.is_some() {
                    on();
                }
            }
            Err(error) => {
                tracing::debug!(bucket = %self.name, %error, "no stream advisories");
            }
        }
        std::future::pending::<()>().await;
    }
}
