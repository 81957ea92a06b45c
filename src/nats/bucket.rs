//! One bucket on one connection. Everything kvop does to a bucket goes through this
//! handle: observe it, read and write its stream config, read and write its keys
//! conditionally, follow its changes (`live`). Its errors are classified against the
//! refusals of its own connection. (Observing it, with the sweep, is `observe`'s `impl`;
//! what a stream's info says is `stream_info`'s.)

use std::sync::Arc;

use async_nats::jetstream::stream::Stream;
use tokio::sync::OnceCell;

use super::connect::Connection;
use super::errors::NatsError;
use super::reread::{Reread, reread_keys};
use super::stream_config;
use super::stream_info::observed_stream;
use super::stream_name;
use super::sweep::read_key;
use super::write::{Write, WriteResult, write_all};
use crate::desired::{BucketClaim, BucketConfig};
use crate::observed::{ObservedKey, ObservedStream};

/// A bucket, by name, on a connection. Cheap to make; make one per use.
pub struct Bucket {
    pub(super) connection: Connection,
    pub(super) name: String,
    /// The stream handle for key reads, opened on first use and kept: a run re-reads keys
    /// in rounds, and opening costs a request. Key reads address the stream by name, so a
    /// handle outliving its stream (deleted and created again) still reads the new one.
    stream: OnceCell<Stream>,
}

/// What deleting a bucket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// There was no such bucket.
    Missing,
}

impl Connection {
    /// The handle for one bucket on this connection.
    pub fn bucket(&self, name: &str) -> Bucket {
        Bucket::new(self.clone(), name)
    }
}

impl Bucket {
    fn new(connection: Connection, name: &str) -> Bucket {
        Bucket {
            connection,
            name: name.to_string(),
            stream: OnceCell::new(),
        }
    }

    /// The bucket's name in NATS.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether its connection is up now; see [`Connection::is_connected`].
    pub fn is_connected(&self) -> bool {
        self.connection.is_connected()
    }

    /// The stream as it is now (config and statistics), or `None` if it does not exist.
    pub async fn state(&self) -> Result<Option<ObservedStream>, NatsError> {
        match self.open().await {
            Ok(stream) => Ok(Some(observed_stream(stream.cached_info()))),
            Err(error) if error.is_stream_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    // Stream writes are `pub(super)`: outside `nats`, only `apply` makes them, through
    // the `BucketWrites` seam (apply_seam.rs).

    /// Creates the bucket's stream, marked as created by the claim's manager and held by
    /// `claim`; an identical existing stream counts as created. The create is atomic:
    /// of two claimants creating one bucket at once, the second is refused (10058, a
    /// stream of that name exists with another config) and then sees the first's claim.
    pub(super) async fn create(
        &self,
        config: &BucketConfig,
        claim: &BucketClaim,
    ) -> Result<(), NatsError> {
        let stream = stream_config::build(&self.name, config, claim)?;
        let create = async {
            self.connection
                .jetstream
                .create_stream(stream)
                .await
                .map(|_| ())
                .map_err(|error| self.connection.classify(error))
        };
        self.unless_denied(create).await
    }

    /// Read-modify-write of the stream config, recording `claim`: fields kvop does not
    /// manage are kept.
    pub(super) async fn update(
        &self,
        config: &BucketConfig,
        claim: &BucketClaim,
    ) -> Result<(), NatsError> {
        let stream = self.open().await?;
        let mut current = stream.cached_info().config.clone();
        stream_config::set_managed_fields(&mut current, &self.name, config)?;
        stream_config::write_claim(&mut current.metadata, Some(claim));
        self.write_config(current).await
    }

    /// Replaces the stream config (the second half of a read-modify-write).
    async fn write_config(
        &self,
        config: async_nats::jetstream::stream::Config,
    ) -> Result<(), NatsError> {
        let update = async {
            self.connection
                .jetstream
                .update_stream(config)
                .await
                .map(|_| ())
                .map_err(|error| self.connection.classify(error))
        };
        self.unless_denied(update).await
    }

    /// `request` (on this bucket's stream), ended as soon as the server denies it rather
    /// than when it times out: a bucket the user may not create is `Forbidden` at once.
    async fn unless_denied<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, NatsError>>,
    ) -> Result<T, NatsError> {
        let naming = format!(".KV_{}\"", self.name);
        self.connection
            .refusals
            .unless_denied(&naming, request)
            .await
    }

    /// Removes `claim` from the stream's metadata, if it is still the one recorded there
    /// (a bucket kept when its object goes, so another object may take it over).
    pub(super) async fn release(&self, claim: &BucketClaim) -> Result<(), NatsError> {
        let stream = match self.open().await {
            Ok(stream) => stream,
            Err(error) if error.is_stream_not_found() => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut current = stream.cached_info().config.clone();
        let held = stream_config::read_claim(&current.metadata);
        if held.is_none_or(|held| held.manager != claim.manager || held.owner != claim.owner) {
            return Ok(());
        }
        stream_config::write_claim(&mut current.metadata, None);
        self.write_config(current).await
    }

    /// Deletes the bucket's stream, every key and its history with it.
    pub(super) async fn delete(&self) -> Result<Deleted, NatsError> {
        match self
            .connection
            .jetstream
            .delete_stream(stream_name(&self.name))
            .await
        {
            Ok(_) => Ok(Deleted::Deleted),
            Err(error) => match self.connection.classify(error) {
                error if error.is_stream_not_found() => Ok(Deleted::Missing),
                error => Err(error),
            },
        }
    }

    /// The last message of one key, from the stream leader (not a possibly stale
    /// replica); `None` when the key has none.
    pub async fn read_key(&self, key: &str) -> Result<Option<ObservedKey>, NatsError> {
        let stream = self.stream().await?;
        read_key(&self.connection.refusals, stream, &self.name, key).await
    }

    /// Re-reads `keys` from the stream leader, concurrently, in the order given; see
    /// [`Reread`]. Fails only when the stream cannot be opened.
    pub async fn reread(&self, keys: &[Arc<str>]) -> Result<Vec<Reread>, NatsError> {
        let stream = self.stream().await?;
        Ok(reread_keys(&self.connection.refusals, stream, &self.name, keys).await)
    }

    /// Sends `count` writes, the `index`th being `write_at(index)`, with at most `window`
    /// in flight, each conditional on its expected revision and carrying `manager`'s
    /// ownership headers; `on_result` gets each result as it settles (see
    /// [`write_all`]).
    pub(super) async fn write_all<'a>(
        &self,
        manager: &str,
        count: usize,
        write_at: impl Fn(usize) -> Write<'a>,
        window: usize,
        on_result: impl FnMut(usize, WriteResult),
    ) {
        write_all(
            &self.connection,
            &self.name,
            manager,
            count,
            write_at,
            window,
            on_result,
        )
        .await
    }

    /// The stream with fresh info (config, statistics).
    pub(super) async fn open(&self) -> Result<Stream, NatsError> {
        self.connection
            .jetstream
            .get_stream(stream_name(&self.name))
            .await
            .map_err(|error| self.connection.classify(error))
    }

    async fn stream(&self) -> Result<&Stream, NatsError> {
        self.stream.get_or_try_init(|| self.open()).await
    }
}
