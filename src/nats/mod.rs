//! The one seam to NATS: connect, read and write stream configs, sweep a bucket, write
//! keys conditionally. Everything above this module speaks kvop's own types.

pub mod connect;
pub mod errors;
pub mod observe;
pub mod pool;
pub mod refusals;
pub mod reread;
pub mod retry;
pub mod stream_config;
pub mod sweep;
pub mod sweep_batches;
pub mod write;

pub use connect::{Connection, ConnectionSettings};
pub use errors::NatsError;

/// The stream behind a bucket.
pub fn stream_name(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// The subject of a key.
pub fn key_subject(bucket: &str, key: &str) -> String {
    format!("$KV.{bucket}.{key}")
}
