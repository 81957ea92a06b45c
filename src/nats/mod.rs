//! The one seam to NATS: connect, then per bucket ([`Bucket`]) observe, read and write
//! the stream config, read and write keys conditionally and follow changes. Nothing
//! outside this module uses async-nats; everything above it speaks kvop's own types, and
//! every error arrives classified ([`NatsError`]).

mod apply_seam;
mod bucket;
mod classify;
mod connect;
mod errors;
#[cfg(test)]
pub(crate) mod faults;
mod live;
mod observe;
mod pool;
mod refusals;
mod reread;
mod retry;
mod settings;
mod snapshot;
mod stream_config;
mod stream_info;
mod stream_source;
mod sweep;
mod sweep_batches;
mod sweep_filters;
mod urls;
mod write;

use std::time::Duration;

pub(crate) use apply_seam::BucketWrites;
pub use bucket::{Bucket, Deleted};
pub use connect::{Connection, ConnectionSettings, Material, connect, require_jetstream};
pub use errors::{Cause, Doing, NatsError, codes};
pub use live::Change;
pub use observe::observe;
pub use pool::Pool;
pub use reread::Reread;
pub use snapshot::Snapshot;
pub use urls::redact_url;
pub use write::{DEFAULT_WINDOW, MAX_IN_FLIGHT, Write, WriteOp, WriteResult};

/// The tracing target of the NATS client's own logs, which kvop turns off by default:
/// it reports the client's errors itself, with context.
pub const CLIENT_LOG_TARGET: &str = "async_nats";

/// How long a request waits for its answer. JetStream API requests use it too (the
/// JetStream context sets no timeout of its own); publish acks wait 5 s.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The stream behind a bucket.
pub fn stream_name(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// The subject of a key.
pub fn key_subject(bucket: &str, key: &str) -> String {
    format!("$KV.{bucket}.{key}")
}
