//! Custom resource types: the user-facing contract, shared by the operator and the CLI.
//!
//! Everything here becomes CRD schema and `kubectl explain` text; keep `///` comments
//! written for users and put developer notes in `//`.

pub mod bucket;
pub mod condition;
pub mod connection;
pub mod duration;
pub mod entry;
pub mod entry_set;
pub mod stream;

pub use bucket::{
    BucketDeletionPolicy, KeyValueBucket, KeyValueBucketSpec, KeyValueBucketStatus,
    ManagementPolicy, StorageType,
};
pub use condition::{Condition, ConditionStatus};
pub use connection::BucketConnection;
pub use entry::{
    BucketRef, EntryDeletionPolicy, KeyValueEntry, KeyValueEntrySpec, KeyValueEntryStatus,
    UpdatePolicy, ValueFrom,
};
pub use entry_set::{
    KeyValueEntrySet, KeyValueEntrySetSpec, KeyValueEntrySetStatus, NameRef, SetConflict, SetItem,
    SetOutcomes, SetPrune, SetSource,
};

/// The API group of every kind.
pub const GROUP: &str = "kvop.dev";
/// The served and stored version of every kind.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "kvop.dev/v1alpha1";

/// Pattern of a NATS bucket name (also enforced by the loader).
pub const BUCKET_NAME_PATTERN: &str = "^[a-zA-Z0-9_-]+$";
/// Longest bucket name: the stream `KV_<bucket>` may have at most 255 characters.
pub const BUCKET_NAME_MAX_LEN: usize = 252;
/// Pattern of a key: the characters every NATS client accepts.
pub const KEY_PATTERN: &str = "^[-/_=.a-zA-Z0-9]+$";
/// Longest key: far below the server's 4 KiB control line, which drops the connection.
pub const KEY_MAX_LEN: usize = 1024;
/// Pattern of a duration such as `90s`, `1h30m`, `30d`, `250ms`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$";
