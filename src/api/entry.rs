//! The `KeyValueEntry` resource: one key of a bucket and its declared value.

use kube::core::{Message, Rule};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::condition::{Condition, conditions_schema};

/// One key of a `KeyValueBucket`, kept at its declared value.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kvop.dev",
    version = "v1alpha1",
    kind = "KeyValueEntry",
    doc = "One key of a KeyValueBucket, kept at its declared value by kvop.",
    namespaced,
    shortname = "kve",
    category = "kvop",
    category = "nats",
    status = "KeyValueEntryStatus",
    printcolumn(name = "Bucket", type_ = "string", json_path = ".status.bucket"),
    printcolumn(name = "Key", type_ = "string", json_path = ".status.key"),
    printcolumn(name = "Revision", type_ = "integer", json_path = ".status.revision"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("has(oldSelf.spec.key) ? (has(self.spec.key) && self.spec.key == oldSelf.spec.key) : (!has(self.spec.key) || self.spec.key == self.metadata.name)").message("spec.key is immutable (it defaults to metadata.name)"),
)]
#[x_kube(validation = one_value_source(&VALUE_SOURCES))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyValueEntrySpec {
    /// The `KeyValueBucket` (in the same namespace) that holds this key. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.bucketRef is immutable"))]
    pub bucket_ref: BucketRef,

    /// The key. Defaults to `metadata.name`. Letters, digits and `-/_=.`, no leading or
    /// trailing `.`, no `..`, at most 1024 characters. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^[-/_=.a-zA-Z0-9]+$"))]
    #[x_kube(validation = Rule::new("!self.startsWith('.') && !self.endsWith('.') && !self.contains('..')").message("a key may not start or end with '.' nor contain '..'"))]
    pub key: Option<String>,

    /// The value as UTF-8 text, stored byte for byte (a YAML `|` block keeps its final
    /// newline, `|-` drops it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,

    /// The value as standard base64-encoded bytes (with `+` and `/`, padded with `=`);
    /// line breaks and other whitespace are ignored, so wrapped output of `base64` works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Not `format: byte`: the apiserver's CEL converter decodes such fields as URL-safe
    // base64 (kube-openapi#633), so every CEL rule above one (the one-of rule on `spec`)
    // refused standard base64 holding `+` or `/`. A pattern is checked by OpenAPI
    // validation alone and accepts exactly what `spec::entry_value` decodes.
    #[schemars(regex(pattern = BASE64_PATTERN))]
    pub binary_value: Option<String>,

    /// The value as any JSON (or YAML) value, stored as compact JSON with object keys
    /// sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json_value")]
    pub json_value: Option<serde_json::Value>,

    /// The value from a key of a Secret or ConfigMap in the same namespace (in standalone
    /// mode, a `v1` Secret or ConfigMap manifest of the same files). Secret values are
    /// never logged, shown in status or in a diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,

    /// When kvop may write the key: `Overwrite` (the default) restores the declared value
    /// whenever it differs; `IfUnchanged` writes only while the key still holds kvop's
    /// last write and reports `Conflict` otherwise; `CreateOnly` writes only when the key
    /// is absent or deleted (a seed value that applications may change later).
    #[serde(default)]
    pub update_policy: UpdatePolicy,

    /// What happens to the key when this resource is deleted: `Delete` (the default)
    /// writes a delete marker and keeps history, `Purge` removes the key's history,
    /// `Retain` leaves the key.
    #[serde(default)]
    pub deletion_policy: EntryDeletionPolicy,
}

/// Standard base64 with canonical padding (the unused low bits of the last symbol are
/// zero), ASCII whitespace (`[\t\n\f\r ]`, spelled out: `\s` differs between RE2 and
/// Rust's regex) allowed anywhere: what `spec::entry_value` decodes, as the
/// apiserver's OpenAPI validation checks it (RE2, linear time, no CEL cost).
pub const BASE64_PATTERN: &str = r"^[\t\n\f\r ]*(?:(?:[A-Za-z0-9+/][\t\n\f\r ]*){4})*(?:[A-Za-z0-9+/][\t\n\f\r ]*[AQgw][\t\n\f\r ]*=[\t\n\f\r ]*=|(?:[A-Za-z0-9+/][\t\n\f\r ]*){2}[AEIMQUYcgkosw048][\t\n\f\r ]*=)?[\t\n\f\r ]*$";

/// The value sources of a spec, as named in messages.
pub const VALUE_SOURCES: [&str; 4] = [
    "spec.value",
    "spec.binaryValue",
    "spec.jsonValue",
    "spec.valueFrom",
];

// "Exactly one value source" as a CEL rule whose message names the fields (a oneOf of
// `required` lists only says "Found 2 valid alternatives"), as they are named in
// `fields` (`spec.value`, or a set item's `value`). `jsonValue` has no type, so
// `has(self.jsonValue)` does not compile ("undefined field"); through `dyn(self)` the
// check is left to run time, where presence is a plain key lookup.
pub(super) fn one_value_source(fields: &[&str; 4]) -> Rule {
    let present = |field: &str| {
        let name = field.rsplit('.').next().unwrap_or(field);
        if name == "jsonValue" {
            format!("has(dyn(self).{name})")
        } else {
            format!("has(self.{name})")
        }
    };
    let flags: Vec<String> = fields.iter().map(|field| present(field)).collect();
    // `join` is costed as unbounded even on a list of literals (the apiserver refuses
    // the expression), so the names are concatenated and the leading ", " cut off.
    let found: Vec<String> = fields
        .iter()
        .map(|field| format!("({} ? ', {field}' : '')", present(field)))
        .collect();
    Rule::new(format!(
        "[{}].filter(set, set).size() == 1",
        flags.join(", ")
    ))
    .message(Message::Expression(format!(
        "'exactly one of {} must be set, found ' + ({} ? ({}).substring(2) : 'none')",
        fields.join(", "),
        flags.join(" || "),
        found.join(" + ")
    )))
}

// An open schema: the apiserver keeps whatever JSON the user wrote.
pub(super) fn any_json_value(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// Names the bucket resource of an entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketRef {
    /// `metadata.name` of the `KeyValueBucket`.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// A value taken from a Secret or a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.secretKeyRef) != has(self.configMapKeyRef)").message("exactly one of secretKeyRef and configMapKeyRef must be set"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueFrom {
    /// A key of a Secret in the entry's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<ObjectKeyRef>,
    /// A key of a ConfigMap in the entry's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ObjectKeyRef>,
}

/// A key of a Secret or ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectKeyRef {
    /// The object's name.
    pub name: String,
    /// The key within it.
    pub key: String,
}

/// When kvop may write a key.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum UpdatePolicy {
    /// Restore the declared value whenever it differs.
    #[default]
    Overwrite,
    /// Write only while the key still holds this manager's last write.
    IfUnchanged,
    /// Write only when the key is absent or deleted.
    CreateOnly,
}

impl UpdatePolicy {
    /// Every policy, for tests that must cover them all.
    pub const ALL: [UpdatePolicy; 3] = {
        // A new policy breaks this match, so it cannot be left out of `ALL` unnoticed.
        const fn listed(policy: UpdatePolicy) {
            match policy {
                UpdatePolicy::Overwrite | UpdatePolicy::IfUnchanged | UpdatePolicy::CreateOnly => {}
            }
        }
        listed(UpdatePolicy::Overwrite);
        [
            UpdatePolicy::Overwrite,
            UpdatePolicy::IfUnchanged,
            UpdatePolicy::CreateOnly,
        ]
    };

    /// The name in manifests and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdatePolicy::Overwrite => "Overwrite",
            UpdatePolicy::IfUnchanged => "IfUnchanged",
            UpdatePolicy::CreateOnly => "CreateOnly",
        }
    }
}

impl std::fmt::Display for UpdatePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What deleting the resource does to the key.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum EntryDeletionPolicy {
    /// Write a delete marker; history is kept.
    #[default]
    Delete,
    /// Remove the key's history, leaving one purge marker.
    Purge,
    /// Leave the key as it is.
    Retain,
}

/// What kvop last wrote or saw of the key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyValueEntryStatus {
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
    /// The key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key's current revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// When the current revision was written (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `sha256:<hex>` of the stored value, to show that it changed; never the value
    /// itself, and absent for a value from a Secret (a digest of a short secret gives
    /// the secret away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_digest: Option<String>,
    /// The last `kvop.dev/reconcile-requested-at` (or `reconcile.fluxcd.io/requestedAt`)
    /// value handled: equal to the annotation once the requested reconcile ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ALL`'s own match fails to compile when a policy is added; this catches one added
    // to the match but not to the list.
    #[test]
    fn update_policy_all_lists_every_policy_a_manifest_may_name() {
        let schema = serde_json::to_value(schemars::schema_for!(UpdatePolicy)).expect("json");
        // One `{const: name, description}` per policy (the CRD shows them as an enum).
        let mut accepted: Vec<String> = schema["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("one schema per policy: {schema}"))
            .iter()
            .map(|policy| policy["const"].as_str().expect("a name").to_string())
            .collect();
        let mut listed: Vec<String> = UpdatePolicy::ALL
            .iter()
            .map(|policy| policy.as_str().to_string())
            .collect();
        accepted.sort();
        listed.sort();
        assert_eq!(listed, accepted);
    }
}
