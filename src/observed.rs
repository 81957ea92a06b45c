//! Observed state: what NATS holds for the declared buckets, read in one sweep each.

use std::collections::HashMap;

use bytes::Bytes;

use crate::desired::{BucketClaim, BucketConfig};
use crate::ownership::Writer;

/// Every declared bucket as found on the server.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub buckets: HashMap<String, ObservedBucket>,
}

/// One bucket: its stream (absent when the bucket does not exist) and its keys.
#[derive(Debug, Clone, Default)]
pub struct ObservedBucket {
    pub stream: Option<ObservedStream>,
    /// Last message of each swept key, live or deleted.
    pub keys: HashMap<String, ObservedKey>,
    /// Whether the sweep covered the whole bucket (needed for prune and key counts)
    /// rather than only the declared keys.
    pub complete: bool,
}

impl ObservedBucket {
    /// Live keys (last operation a put), when the sweep covered the whole bucket.
    pub fn live_keys(&self) -> Option<u64> {
        self.complete.then(|| {
            self.keys
                .values()
                .filter(|key| key.operation == Operation::Put)
                .count() as u64
        })
    }
}

/// The bucket's stream: its configuration projection and statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedStream {
    pub config: BucketConfig,
    pub stats: BucketStats,
    /// The manager that created the stream (`kvop.dev/created-by` in its metadata);
    /// `None` for a bucket kvop did not create.
    pub created_by: Option<String>,
    /// Who holds the bucket (its stream metadata), if anyone.
    pub claim: Option<BucketClaim>,
}

/// Statistics of a bucket's stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketStats {
    /// Messages stored, including history and markers.
    pub values: u64,
    pub bytes: u64,
    pub last_revision: u64,
    /// RFC 3339.
    pub created: String,
    pub cluster: Option<ClusterStats>,
}

/// Where a clustered stream lives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterStats {
    pub name: Option<String>,
    pub leader: Option<String>,
    /// (server, current, lag) of each follower.
    pub replicas: Vec<(String, bool, u64)>,
}

/// The last message of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedKey {
    /// The message's stream sequence: the revision checks compare against it.
    pub revision: u64,
    pub operation: Operation,
    pub value: Bytes,
    pub writer: Writer,
}

/// What the last message of a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Put,
    Delete,
    Purge,
}
