//! The `KeyValueBucket` resource: a JetStream Key-Value bucket and its configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::condition::{Condition, conditions_schema};
use super::connection::BucketConnection;
use super::duration;
use super::stream::{Placement, Republish, StreamSource};

/// A NATS JetStream Key-Value bucket, kept exactly as declared.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kvop.dev",
    version = "v1alpha1",
    kind = "KeyValueBucket",
    doc = "A NATS JetStream Key-Value bucket, kept exactly as declared by kvop.",
    namespaced,
    shortname = "kvb",
    category = "kvop",
    category = "nats",
    status = "KeyValueBucketStatus",
    printcolumn(name = "Bucket", type_ = "string", json_path = ".status.bucket"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Keys", type_ = "integer", json_path = ".status.keys"),
    printcolumn(name = "Values", type_ = "integer", json_path = ".status.values"),
    printcolumn(name = "Bytes", type_ = "integer", json_path = ".status.bytes"),
    // History and TTL are what the server holds, never the spec: a spec kvop refuses
    // (`ttl: 10ms`) must not look applied.
    printcolumn(name = "History", type_ = "integer", json_path = ".status.history"),
    printcolumn(name = "TTL", type_ = "string", json_path = ".status.ttl"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("has(oldSelf.spec.bucket) ? (has(self.spec.bucket) && self.spec.bucket == oldSelf.spec.bucket) : (!has(self.spec.bucket) || self.spec.bucket == self.metadata.name)").message("spec.bucket is immutable (it defaults to metadata.name)"),
    validation = Rule::new("!has(oldSelf.spec.limitMarkerTtl) || has(self.spec.limitMarkerTtl)").message("spec.limitMarkerTtl cannot be removed once set: the server cannot disable per-message TTL"),
    validation = Rule::new("!has(self.spec.allowMsgTtl) || self.spec.allowMsgTtl || !has(self.spec.limitMarkerTtl)").message("spec.allowMsgTtl cannot be false with limitMarkerTtl: limit markers need per-message TTL (leave allowMsgTtl out or set it true)"),
    validation = Rule::new("has(self.spec.mirror) == has(oldSelf.spec.mirror) && (!has(self.spec.mirror) || self.spec.mirror == oldSelf.spec.mirror)").message("spec.mirror is immutable"),
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyValueBucketSpec {
    /// The NATS bucket name (the stream is `KV_<bucket>`). Defaults to `metadata.name`.
    /// Letters, digits, `_` and `-`, at most 252 characters. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 252), regex(pattern = r"^[a-zA-Z0-9_-]+$"))]
    pub bucket: Option<String>,

    /// A description stored with the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// How many revisions of each key are kept, 1 to 64.
    #[serde(default = "default_history")]
    #[schemars(range(min = 1, max = 64))]
    pub history: i32,

    /// How long each revision is kept, e.g. `90s`, `1h30m`, `30d`; at least `100ms`.
    /// Absent means values never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = crate::units::DURATION_MAX_LEN),
        regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$")
    )]
    #[x_kube(
        validation = duration::at_least(MIN_TTL),
        validation = duration::stored_by_nats()
    )]
    pub ttl: Option<String>,

    /// The largest value (payload and headers) a key may hold, in bytes or as a quantity
    /// such as `1Mi`. Absent means limited only by the server's `max_payload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value_size: Option<IntOrString>,

    /// The most bytes the bucket may store, in bytes or as a quantity such as `10Gi`.
    /// Absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<IntOrString>,

    /// `file` or `memory`. Memory buckets are lost when the server restarts. Immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.storage is immutable"))]
    pub storage: StorageType,

    /// How many servers hold a copy of the bucket, 1 to 5 (more than 1 needs a cluster).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 5))]
    pub replicas: i32,

    /// Compress stored values (S2).
    #[serde(default)]
    pub compression: bool,

    /// Enables per-message TTL on the bucket's stream: clients may then write a value with
    /// a `Nats-TTL` header, and it expires after that time (without this the server
    /// refuses such writes). Once on it can never be turned off (a server rule): `false`
    /// on a bucket that has it is reported and never applied. Leave it out to keep what
    /// the bucket has (off for a new bucket). `limitMarkerTtl` turns it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // A transition rule runs only while both versions set the field: leaving it out later
    // is allowed (it keeps the stream as it is), setting it false is not.
    #[x_kube(validation = Rule::new("self || !oldSelf").message("spec.allowMsgTtl cannot be turned off once on: the server cannot disable per-message TTL (leave the field out to keep the bucket as it is)"))]
    pub allow_msg_ttl: Option<bool>,

    /// Enables limit markers: when a key expires through `ttl`, the server writes a
    /// marker that lives this long (at least `1s`), so watchers see the expiry. Once set
    /// it can never be removed (a server rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = crate::units::DURATION_MAX_LEN),
        regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$")
    )]
    #[x_kube(
        validation = duration::at_least(MIN_LIMIT_MARKER_TTL),
        validation = duration::stored_by_nats()
    )]
    pub limit_marker_ttl: Option<String>,

    /// Where the bucket is placed in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,

    /// Republish every change to another subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub republish: Option<Republish>,

    /// Make this bucket a read-only mirror of another bucket. Entries may not target a
    /// mirror. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,

    /// Aggregate the keys of other buckets into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSource>,

    /// Metadata stored with the bucket's stream. Server-owned `_nats.*` keys are ignored.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,

    /// Connect to this bucket's NATS servers instead of the operator's default
    /// (Kubernetes mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<BucketConnection>,

    /// What happens to the bucket in NATS when this resource is deleted: `Retain` (the
    /// default) keeps it and its data, `Delete` deletes the bucket.
    #[serde(default)]
    pub deletion_policy: BucketDeletionPolicy,

    /// `Manage` (the default) creates the bucket and keeps its configuration as declared;
    /// `Observe` never changes the bucket's configuration and only reports its status
    /// (for buckets managed elsewhere). Entries may target either.
    #[serde(default)]
    pub management_policy: ManagementPolicy,
}

/// The shortest `ttl` kvop accepts.
pub const MIN_TTL: Duration = Duration::from_millis(100);
/// The shortest `limitMarkerTtl` kvop accepts.
pub const MIN_LIMIT_MARKER_TTL: Duration = Duration::from_secs(1);

fn default_history() -> i32 {
    1
}

fn default_replicas() -> i32 {
    1
}

/// Where the bucket stores its data.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    /// On disk; survives restarts.
    #[default]
    File,
    /// In memory; lost when the server restarts.
    Memory,
}

/// What deleting the resource does to the bucket.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum BucketDeletionPolicy {
    /// Keep the bucket and its data.
    #[default]
    Retain,
    /// Delete the bucket and all its keys.
    Delete,
}

/// Whether kvop may change the bucket's configuration.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ManagementPolicy {
    /// Create the bucket and keep its configuration as declared.
    #[default]
    Manage,
    /// Never change the bucket; only report its status.
    Observe,
}

/// What kvop last saw of the bucket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyValueBucketStatus {
    /// The `metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and `Synced`; `Reconciling` or `Stalled` while not ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The NATS bucket name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Messages stored, including history and delete markers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<i64>,
    /// Live keys (not deleted), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<i64>,
    /// Revisions kept per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<i64>,
    /// Value lifetime, empty when values never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Bytes stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    /// Always `JetStream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing_store: Option<String>,
    /// `file` or `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// Number of replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    /// Byte limit of the bucket, -1 when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<i64>,
    /// Value size limit, -1 when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value_size: Option<i64>,
    /// The bucket's latest revision (stream sequence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_revision: Option<i64>,
    /// When the bucket was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Cluster placement and replica health, when clustered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
    /// When kvop last read these statistics (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,
    /// The last `kvop.dev/reconcile-requested-at` (or `reconcile.fluxcd.io/requestedAt`)
    /// value handled: equal to the annotation once the requested reconcile ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// The bucket's stream in a cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// The cluster's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The server leading the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The followers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaStatus>,
}

/// One follower of the stream.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// Server name.
    pub name: String,
    /// Whether it is caught up.
    pub current: bool,
    /// Operations it is behind.
    #[serde(default)]
    pub lag: i64,
}
