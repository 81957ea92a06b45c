//! The `KeyValueEntrySet` resource: many keys of a bucket in one object, from inline
//! items, whole ConfigMaps and whole Secrets, optionally under a prefix the set owns.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::condition::{Condition, conditions_schema};
use super::entry::{
    BASE64_PATTERN, BucketRef, EntryDeletionPolicy, UpdatePolicy, ValueFrom, any_json_value,
    one_value_source,
};

/// The value fields of a set item, as named in messages.
pub const ITEM_VALUE_SOURCES: [&str; 4] = ["value", "binaryValue", "jsonValue", "valueFrom"];

/// The most inline items a set may hold: enough for a set near the apiserver's object
/// size limit, and a bound the apiserver needs to cost the items' CEL rules.
pub const MAX_SET_ITEMS: u32 = 10_000;

/// The most ConfigMaps and Secrets a set may read.
pub const MAX_SET_SOURCES: u32 = 64;

/// Many keys of a KeyValueBucket, kept at their declared values as one set.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kvop.dev",
    version = "v1alpha1",
    kind = "KeyValueEntrySet",
    doc = "Many keys of a KeyValueBucket, from inline items, ConfigMaps and Secrets, kept at their declared values by kvop as one set.",
    namespaced,
    shortname = "kves",
    category = "kvop",
    category = "nats",
    status = "KeyValueEntrySetStatus",
    printcolumn(name = "Bucket", type_ = "string", json_path = ".status.bucket"),
    printcolumn(name = "Prefix", type_ = "string", json_path = ".status.keyPrefix"),
    printcolumn(name = "Keys", type_ = "integer", json_path = ".status.keys"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("!has(self.spec.prune) || self.spec.prune != 'Exclusive' || (has(self.spec.keyPrefix) && self.spec.keyPrefix != '')").message("spec.prune Exclusive needs spec.keyPrefix: a set may own a prefix, never a whole bucket"),
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyValueEntrySetSpec {
    /// The `KeyValueBucket` (in the same namespace) that holds these keys. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.bucketRef is immutable"))]
    pub bucket_ref: BucketRef,

    /// Prepended to every key of the set (items and ConfigMap/Secret keys alike), e.g.
    /// `checkout/`. Letters, digits and `-/_=.`, no leading `.`, no `..`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), regex(pattern = r"^[-/_=.a-zA-Z0-9]*$"))]
    #[x_kube(validation = Rule::new("!self.startsWith('.') && !self.contains('..')").message("a key prefix may not start with '.' nor contain '..'"))]
    pub key_prefix: Option<String>,

    /// Keys with their values, each as a KeyValueEntry declares one (`value`,
    /// `binaryValue`, `jsonValue` or `valueFrom`). Each key appears once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    #[schemars(length(max = MAX_SET_ITEMS))]
    pub entries: Vec<SetItem>,

    /// ConfigMaps and Secrets in the same namespace (in standalone mode, `v1` manifests
    /// of the same files) whose every key becomes a key of the set: a ConfigMap's `data`
    /// and `binaryData`, a Secret's `data` and `stringData`. Secret values are never
    /// logged, shown in status or in a diff.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SET_SOURCES))]
    pub from: Vec<SetSource>,

    /// When kvop may write each key: `Overwrite` (the default), `IfUnchanged` or
    /// `CreateOnly`, as for a KeyValueEntry.
    #[serde(default)]
    pub update_policy: UpdatePolicy,

    /// What happens to the set's keys when the set is deleted: `Delete` (the default),
    /// `Purge` or `Retain`, as for a KeyValueEntry. Only keys that still hold the set's
    /// own write are removed.
    #[serde(default)]
    pub deletion_policy: EntryDeletionPolicy,

    /// Which keys the set removes once it no longer declares them: `Owned` (the default)
    /// deletes a key the set wrote and no longer declares; `Exclusive` also deletes every
    /// other key under `keyPrefix` that no kvop object holds (needs `keyPrefix`). A set
    /// that declares no keys deletes none unless annotated
    /// `kvop.dev/allow-empty-prune: "true"`.
    #[serde(default)]
    pub prune: SetPrune,
}

/// One key of a set and its value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = one_value_source(&ITEM_VALUE_SOURCES))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetItem {
    /// The key, after `keyPrefix`. Letters, digits and `-/_=.`; the whole key may not
    /// start or end with `.` nor contain `..`, and has at most 1024 characters.
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^[-/_=.a-zA-Z0-9]+$"))]
    pub key: String,

    /// The value as UTF-8 text, stored byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,

    /// The value as standard base64-encoded bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = BASE64_PATTERN))]
    pub binary_value: Option<String>,

    /// The value as any JSON (or YAML) value, stored as compact JSON with object keys
    /// sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json_value")]
    pub json_value: Option<serde_json::Value>,

    /// The value from one key of a Secret or ConfigMap in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// A whole ConfigMap or Secret whose keys become keys of the set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.configMapRef) != has(self.secretRef)").message("exactly one of configMapRef and secretRef must be set"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetSource {
    /// A ConfigMap in the set's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<NameRef>,
    /// A Secret in the set's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<NameRef>,
}

/// An object in the same namespace, by name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameRef {
    /// `metadata.name` of the object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Which keys a set removes once it no longer declares them.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum SetPrune {
    /// Delete a key this set wrote once the set no longer declares it.
    #[default]
    Owned,
    /// Also delete every other key under `keyPrefix` that no kvop object holds.
    Exclusive,
}

impl SetPrune {
    /// The name in manifests and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            SetPrune::Owned => "Owned",
            SetPrune::Exclusive => "Exclusive",
        }
    }
}

impl std::fmt::Display for SetPrune {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most conflicts a set's status lists by key: its size must not grow with the set.
pub const MAX_LISTED_CONFLICTS: usize = 10;

/// What kvop last did with the set's keys. Counts, never a list per key, so the status
/// stays small however many keys the set has.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyValueEntrySetStatus {
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
    /// The prefix of the keys last reconciled (from `spec.keyPrefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// How many keys the set declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<i64>,
    /// What the last reconcile did, key by key, counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<SetOutcomes>,
    /// The highest revision among the set's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_revision: Option<i64>,
    /// The first keys (at most 10) left to another writer, with who holds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub conflicts: Vec<SetConflict>,
    /// The last `kvop.dev/reconcile-requested-at` (or `reconcile.fluxcd.io/requestedAt`)
    /// value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// How many keys each outcome had in a reconcile of a set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetOutcomes {
    /// Created or updated.
    pub written: i64,
    /// Already held the declared value.
    pub unchanged: i64,
    /// Left to another writer: another kvop object's claim, or `IfUnchanged`.
    pub conflict: i64,
    /// Left by `CreateOnly`, or a key to remove that holds someone else's value.
    pub skipped: i64,
    /// Removed: no longer declared (pruned), or foreign under an exclusive prefix.
    pub deleted: i64,
}

/// A key of the set left to another writer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetConflict {
    /// The key, with its prefix.
    pub key: String,
    /// Who holds it: `manager "kvop" for shop/other`, or `another client`.
    pub holder: String,
    /// The key's revision.
    pub revision: i64,
}
