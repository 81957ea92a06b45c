//! A live view of a bucket: the last message of every key, then every change after it,
//! through one long-lived ordered consumer (never one per key); and the server's
//! announcements of changes to the bucket's stream itself. The operator keeps its entries
//! current with it; nothing here knows who listens.

use std::collections::HashMap;
use std::ops::ControlFlow;

use async_nats::jetstream::consumer;
use bytes::Bytes;
use futures::StreamExt;

use super::bucket::Bucket;
use super::errors::NatsError;
use super::observe::observed_stream;
use super::stream_name;
use super::sweep::{Managers, operation};
use crate::observed::{ObservedKey, ObservedStream};

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
    /// a lost consumer, a dropped connection), which a caller answers by following again.
    ///
    /// The async-nats ordered consumer follows a stream deleted and created again
    /// silently, keeping keys that no longer exist: a caller that must notice compares
    /// the stream's creation time, and follows again.
    pub async fn follow(
        &self,
        mut on: impl FnMut(Change) -> ControlFlow<()>,
    ) -> Result<(), NatsError> {
        let stream = self.open().await?;
        let opened = Box::new(observed_stream(stream.cached_info()));
        if on(Change::Opened(opened)).is_break() {
            return Ok(());
        }
        let config = consumer::pull::OrderedConfig {
            filter_subject: format!("$KV.{}.>", self.name),
            deliver_policy: consumer::DeliverPolicy::LastPerSubject,
            ..Default::default()
        };
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|error| self.connection.classify(error))?;
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
            .messages()
            .await
            .map_err(|error| self.connection.classify(error))?;
        let prefix = format!("$KV.{}.", self.name);
        let mut managers = Managers::default();
        while let Some(message) = messages.next().await {
            let message = message.map_err(|error| self.connection.classify(error))?;
            let Some(key) = message.subject.strip_prefix(&prefix).map(str::to_string) else {
                continue;
            };
            let Ok(info) = message.info() else { continue };
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
