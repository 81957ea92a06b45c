//! Reading the tenants file (`kvop run --tenants`): JSON, as the chart renders it from
//! its values, into [`Tenancy`].

use std::path::Path;

use serde::Deserialize;

use super::tenancy::{ObjectServers, Pattern, Tenancy, Tenant, TenantsFileError};
use crate::nats::{ConnectionSettings, Material};

/// The tenants file (`--tenants`), JSON, as the chart renders it from its values.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TenantsFile {
    tenants: Vec<TenantEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TenantEntry {
    namespaces: Vec<String>,
    #[serde(default)]
    buckets: Vec<String>,
    #[serde(default)]
    connection: Option<TenantConnection>,
}

/// A namespace's NATS identity: files the administrator mounted (from Secrets in the
/// operator's own namespace); never a value in the file itself, except the user name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TenantConnection {
    /// Default: the operator's `--nats-url`.
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    creds: Option<String>,
    #[serde(default)]
    nkey: Option<String>,
    #[serde(default)]
    user: Option<String>,
    /// The user name from a file (a mounted Secret), instead of `user`.
    #[serde(default)]
    user_file: Option<String>,
    #[serde(default)]
    password_file: Option<String>,
    #[serde(default)]
    token_file: Option<String>,
    #[serde(default)]
    tls_ca: Option<String>,
    #[serde(default)]
    tls_cert: Option<String>,
    #[serde(default)]
    tls_key: Option<String>,
    #[serde(default)]
    js_domain: Option<String>,
}

impl Tenancy {
    /// Reads the tenants file; each identity starts from nothing (never from the
    /// operator's credentials) except the server URL and `client_name`.
    pub fn load(
        path: &Path,
        object_servers: ObjectServers,
        operator: &ConnectionSettings,
    ) -> Result<Tenancy, TenantsFileError> {
        let failed = |message: String| TenantsFileError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|error| failed(error.to_string()))?;
        let file: TenantsFile =
            serde_json::from_str(&text).map_err(|error| failed(error.to_string()))?;
        let mut tenants = Vec::new();
        for (index, entry) in file.tenants.into_iter().enumerate() {
            if entry.namespaces.is_empty() {
                return Err(failed(format!("tenants[{index}].namespaces is empty")));
            }
            let read =
                |field: &str, file: &Option<String>| -> Result<Option<String>, TenantsFileError> {
                    file.as_ref()
                        .map(|file| {
                            std::fs::read_to_string(file)
                                .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
                                .map_err(|error| {
                                    failed(format!(
                                        "tenants[{index}].connection.{field} {file}: {error}"
                                    ))
                                })
                        })
                        .transpose()
                };
            let connection = match &entry.connection {
                None => None,
                Some(connection) => Some(ConnectionSettings {
                    url: connection
                        .url
                        .clone()
                        .unwrap_or_else(|| operator.url.clone()),
                    creds: connection.creds.clone().map(|f| Material::File(f.into())),
                    nkey: connection.nkey.clone().map(|f| Material::File(f.into())),
                    user: match read("userFile", &connection.user_file)? {
                        Some(user) => Some(user),
                        None => connection.user.clone(),
                    },
                    password: read("passwordFile", &connection.password_file)?,
                    token: read("tokenFile", &connection.token_file)?,
                    tls_ca: connection.tls_ca.clone().map(|f| Material::File(f.into())),
                    tls_cert: connection
                        .tls_cert
                        .clone()
                        .map(|f| Material::File(f.into())),
                    tls_key: connection.tls_key.clone().map(|f| Material::File(f.into())),
                    tls_first: false,
                    js_domain: connection.js_domain.clone(),
                    js_api_prefix: None,
                    client_name: operator.client_name.clone(),
                    retry_initial_connect: false,
                }),
            };
            tenants.push(Tenant {
                namespaces: entry.namespaces.into_iter().map(Pattern).collect(),
                buckets: entry.buckets.into_iter().map(Pattern).collect(),
                connection,
            });
        }
        Ok(Tenancy {
            object_servers,
            tenants,
        })
    }
}
