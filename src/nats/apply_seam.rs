//! The seam under apply: the NATS operations `apply` performs on one bucket, as a trait
//! that [`Bucket`] implements.
//!
//! It exists for tests. Apply's round machine (write, re-read after a conflict or a
//! transient failure, decide again) reacts to answers a real server gives only by
//! accident: an election in the middle of a write, a write that timed out but landed, a
//! key taken by another manager between the plan and the write. Scripted answers behind
//! this trait (`src/apply/tests`) test each of those with no server. Everything else
//! still goes through [`Bucket`] itself: the trait holds exactly what apply calls, no
//! more, and stays inside the crate.
//!
//! Errors cross it already classified ([`NatsError`]), as they leave [`Bucket`]: the
//! classification (codes, refusals seen on the connection) is the connection's, tested
//! in `classify` and `refusals`; the round machine only sees its result.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::bucket::{Bucket, Deleted};
use super::errors::NatsError;
use super::reread::Reread;
use super::write::{Write, WriteResult};
use crate::desired::{BucketClaim, BucketConfig};
use crate::observed::ObservedStream;

/// What apply does to one bucket: create, update or delete it (or release its claim),
/// read its stream again when a create was refused, write its keys conditionally, and
/// read again the keys whose write conflicted or failed. See [`Bucket`]'s methods of the
/// same names for what each does against NATS.
//
// Every future is declared `Send`: the operator's controllers run apply on a
// multi-threaded runtime. The two that hold the caller's closures are boxed: inside an
// `impl Future` those closures keep rustc from proving the controllers' futures `Send`
// for every lifetime ("implementation of `Send` is not general enough" in
// `operator/mod.rs`). One allocation per bucket step or write round. `Sync`, so that
// an attempt borrowing the bucket is `Send`.
pub(crate) trait BucketWrites: Sync {
    /// Whether the connection is up now (while it is not, a request would only wait out
    /// its timeout).
    fn is_connected(&self) -> bool;

    /// Creates the bucket's stream with `config`, held by `claim`; safe to repeat.
    fn create(
        &self,
        config: &BucketConfig,
        claim: &BucketClaim,
    ) -> impl Future<Output = Result<(), NatsError>> + Send;

    /// Read-modify-write of the stream config to `config`, recording `claim`; safe to
    /// repeat.
    fn update(
        &self,
        config: &BucketConfig,
        claim: &BucketClaim,
    ) -> impl Future<Output = Result<(), NatsError>> + Send;

    /// The stream as it is now, or `None` if it does not exist.
    fn state(&self) -> impl Future<Output = Result<Option<ObservedStream>, NatsError>> + Send;

    /// Removes `claim` from the stream's metadata if it is still the one recorded there.
    fn release(&self, claim: &BucketClaim) -> impl Future<Output = Result<(), NatsError>> + Send;

    /// Deletes the bucket's stream; a missing one is [`Deleted::Missing`].
    fn delete(&self) -> impl Future<Output = Result<Deleted, NatsError>> + Send;

    /// Runs `attempt` (one of the calls above) until it succeeds, fails for good or the
    /// capped retries of transient failures run out; `what` names it in the logs.
    fn ride_out<'f, T, F, Fut>(
        &'f self,
        what: &'f str,
        attempt: F,
    ) -> BoxFuture<'f, Result<T, NatsError>>
    where
        T: Send + 'f,
        F: FnMut() -> Fut + Send + 'f,
        Fut: Future<Output = Result<T, NatsError>> + Send + 'f;

    /// Reads `keys` again from the stream leader, in the order given.
    fn reread(
        &self,
        keys: &[Arc<str>],
    ) -> impl Future<Output = Result<Vec<Reread>, NatsError>> + Send;

    /// Sends `count` conditional writes, the `index`th being `write_at(index)`, at most
    /// `window` in flight, as `manager`; `on_result` gets each result as it settles.
    fn write_all<'f, 'a: 'f>(
        &'f self,
        manager: &'f str,
        count: usize,
        write_at: impl Fn(usize) -> Write<'a> + Send + 'f,
        window: usize,
        on_result: impl FnMut(usize, WriteResult) + Send + 'f,
    ) -> BoxFuture<'f, ()>;
}

// Each method hands on the inherent one's future (named in full: inherent methods win
// method lookup, so `self.create(..)` would too, but silently).
impl BucketWrites for Bucket {
    fn is_connected(&self) -> bool {
        Bucket::is_connected(self)
    }

    fn create(
        &self,
        config: &BucketConfig,
        claim: &BucketClaim,
    ) -> impl Future<Output = Result<(), NatsError>> + Send {
        Bucket::create(self, config, claim)
    }

    fn update(
        &self,
        config: &BucketConfig,
        claim: &BucketClaim,
    ) -> impl Future<Output = Result<(), NatsError>> + Send {
        Bucket::update(self, config, claim)
    }

    fn state(&self) -> impl Future<Output = Result<Option<ObservedStream>, NatsError>> + Send {
        Bucket::state(self)
    }

    fn release(&self, claim: &BucketClaim) -> impl Future<Output = Result<(), NatsError>> + Send {
        Bucket::release(self, claim)
    }

    fn delete(&self) -> impl Future<Output = Result<Deleted, NatsError>> + Send {
        Bucket::delete(self)
    }

    fn ride_out<'f, T, F, Fut>(
        &'f self,
        what: &'f str,
        attempt: F,
    ) -> BoxFuture<'f, Result<T, NatsError>>
    where
        T: Send + 'f,
        F: FnMut() -> Fut + Send + 'f,
        Fut: Future<Output = Result<T, NatsError>> + Send + 'f,
    {
        self.connection.ride_out(what, attempt).boxed()
    }

    fn reread(
        &self,
        keys: &[Arc<str>],
    ) -> impl Future<Output = Result<Vec<Reread>, NatsError>> + Send {
        Bucket::reread(self, keys)
    }

    fn write_all<'f, 'a: 'f>(
        &'f self,
        manager: &'f str,
        count: usize,
        write_at: impl Fn(usize) -> Write<'a> + Send + 'f,
        window: usize,
        on_result: impl FnMut(usize, WriteResult) + Send + 'f,
    ) -> BoxFuture<'f, ()> {
        Bucket::write_all(self, manager, count, write_at, window, on_result).boxed()
    }
}
