//! Per-bucket NATS connection override, referencing Secrets in the bucket's namespace.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How to reach the NATS servers of this bucket, overriding the operator's default
/// connection. Every credential comes from a Secret in the bucket's namespace and is
/// never logged or written to status. Not available in standalone mode (use the flags).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketConnection {
    /// NATS server URLs, e.g. `nats://nats.nats.svc:4222`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// JetStream domain of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub js_domain: Option<String>,
    /// A Secret holding a `.creds` file (JWT and NKey seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretKeyRef>,
    /// A Secret holding an NKey seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nkey_secret_ref: Option<SecretKeyRef>,
    /// A Secret holding an authentication token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeyRef>,
    /// A Secret holding a user name and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_secret_ref: Option<UserSecretRef>,
    /// A Secret of type `kubernetes.io/tls` with `ca.crt`, and optionally `tls.crt` and
    /// `tls.key` for a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_ref: Option<LocalSecretRef>,
}

/// A key of a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key within the Secret.
    pub key: String,
}

/// A Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalSecretRef {
    /// The Secret's name.
    pub name: String,
}

/// A Secret holding a user name and a password.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSecretRef {
    /// The Secret's name.
    pub name: String,
    /// The key holding the user name.
    #[serde(default = "default_user_key")]
    pub user_key: String,
    /// The key holding the password.
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_user_key() -> String {
    "user".into()
}

fn default_password_key() -> String {
    "password".into()
}
