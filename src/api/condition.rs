//! Status conditions in the metav1 style, shared by both kinds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The state of one aspect of the resource, in the style of `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The aspect: `Ready` (the declared state holds in NATS), `Synced` (the last
    /// reconcile carried the spec out: false when it failed, or when an `IfUnchanged`
    /// conflict keeps the declared value out), and while not ready `Reconciling` (kvop
    /// retries on its own) or `Stalled` (a human must act), present only while true.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// A CamelCase reason, stable enough for alerts.
    pub reason: String,
    /// A human-readable explanation.
    #[serde(default)]
    pub message: String,
    /// The `metadata.generation` this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Tri-state truth of a condition.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// Marks a `conditions` list as a list-map keyed by `type`, so server-side apply merges
/// conditions one by one instead of replacing the list.
pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}
