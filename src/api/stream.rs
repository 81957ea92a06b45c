//! Stream-level settings of a bucket: placement, republish, mirror and sources.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the bucket's stream is placed in a NATS cluster or supercluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Placement {
    /// The cluster to place the stream in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Server tags the stream's servers must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Republishes every stored message of the bucket to another subject.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Republish {
    /// Subject filter of the messages to republish, e.g. `$KV.config.>`.
    pub source: String,
    /// Destination subject (may use subject-mapping tokens).
    pub destination: String,
    /// Republish headers only, without the value.
    #[serde(default)]
    pub headers_only: bool,
}

/// Another bucket this bucket mirrors or sources from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamSource {
    /// The name of the origin bucket (without the `KV_` prefix).
    #[schemars(length(min = 1, max = 252), regex(pattern = r"^[a-zA-Z0-9_-]+$"))]
    pub name: String,
    /// Only take keys matching this subject filter, e.g. `$KV.origin.app.>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<String>,
    /// Start from this stream sequence of the origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub start_seq: Option<i64>,
    /// Start from this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Reach an origin in another account or domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSource>,
    /// The JetStream domain of the origin (shorthand for `external.apiPrefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// The API and delivery prefixes of an origin in another account or domain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalSource {
    /// The JetStream API prefix, e.g. `$JS.hub.API`.
    pub api_prefix: String,
    /// The delivery prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_prefix: Option<String>,
}
