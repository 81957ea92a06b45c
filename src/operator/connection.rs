//! The NATS connection of a bucket: the operator's default, or `spec.connection` with its
//! credentials read from Secrets in the bucket's namespace. Secret values are never
//! logged or written to status.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use super::context::Context;
use super::error::{ControllerError, reference_not_found};
pub use super::secret_reads::Reader;
use crate::api::KeyValueBucket;
use crate::api::connection::{BucketConnection, SecretKeyRef};
use crate::nats::Material;
use crate::nats::{Connection, ConnectionSettings, Pool};

/// The connection of `bucket` and its pool key (which changes when a credential rotates).
pub async fn for_bucket(
    context: &Context,
    bucket: &KeyValueBucket,
    reader: &Reader,
) -> Result<(u64, Connection), ControllerError> {
    let namespace = bucket.namespace().unwrap_or_default();
    let base = namespace_connection(context, &namespace)?;
    let (key, connection) = match (&bucket.spec.connection, base) {
        (None, None) => (Pool::key(&context.default_connection), context.nats.clone()),
        (None, Some(base)) => context.pool.get(base).await?,
        (Some(overrides), base) => {
            let base = base.unwrap_or(&context.default_connection);
            let settings = settings(context, base, &namespace, overrides, reader).await?;
            context.pool.get(&settings).await?
        }
    };
    Ok((key, connection))
}

/// The connection the administrator gave `namespace` when it is not the operator's own
/// (`None`); refused when the tenants file does not list the namespace.
pub fn namespace_connection<'a>(
    context: &'a Context,
    namespace: &str,
) -> Result<Option<&'a ConnectionSettings>, ControllerError> {
    Ok(context
        .tenancy
        .tenant(namespace)?
        .and_then(|tenant| tenant.connection.as_ref()))
}

/// The namespace's connection with the bucket's overrides, Secrets resolved. The
/// identity of `base` (the operator's or the namespace's) goes only to `base`'s own
/// servers: an object that names servers connects there with the credentials it
/// references itself, or none.
async fn settings(
    context: &Context,
    base: &ConnectionSettings,
    namespace: &str,
    overrides: &BucketConnection,
    reader: &Reader,
) -> Result<ConnectionSettings, ControllerError> {
    let BucketConnection {
        servers,
        js_domain,
        credentials_secret_ref,
        nkey_secret_ref,
        token_secret_ref,
        user_secret_ref,
        tls_secret_ref,
    } = overrides;
    context.tenancy.check_servers(servers)?;
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), namespace);
    let mut settings = if servers.is_empty() {
        base.clone()
    } else {
        // Nothing of the administrator's connection but the client name: no credentials,
        // no TLS material, no JetStream domain or prefix of the administrator's servers.
        ConnectionSettings {
            url: servers.join(","),
            client_name: base.client_name.clone(),
            ..ConnectionSettings::default()
        }
    };
    settings.retry_initial_connect = false;
    if js_domain.is_some() {
        settings.js_domain = js_domain.clone();
        settings.js_api_prefix = None;
    }
    // A bucket that names its own credentials does not inherit the default ones.
    let names_credentials = credentials_secret_ref.is_some()
        || nkey_secret_ref.is_some()
        || token_secret_ref.is_some()
        || user_secret_ref.is_some();
    if names_credentials {
        (
            settings.creds,
            settings.nkey,
            settings.token,
            settings.user,
            settings.password,
        ) = (None, None, None, None, None);
    }
    let secrets = Secrets {
        api: secrets,
        namespace,
        versions: &context.secret_versions,
        reader,
    };
    if let Some(reference) = credentials_secret_ref {
        settings.creds = Some(Material::Inline(
            secret_key(&secrets, reference, namespace).await?,
        ));
    }
    if let Some(reference) = nkey_secret_ref {
        settings.nkey = Some(Material::Inline(
            secret_key(&secrets, reference, namespace).await?,
        ));
    }
    if let Some(reference) = token_secret_ref {
        settings.token = Some(secret_key(&secrets, reference, namespace).await?);
    }
    if let Some(reference) = user_secret_ref {
        let user = SecretKeyRef {
            name: reference.name.clone(),
            key: reference.user_key.clone(),
        };
        let password = SecretKeyRef {
            name: reference.name.clone(),
            key: reference.password_key.clone(),
        };
        settings.user = Some(secret_key(&secrets, &user, namespace).await?);
        settings.password = Some(secret_key(&secrets, &password, namespace).await?);
    }
    if let Some(reference) = tls_secret_ref {
        let key = |name: &str| SecretKeyRef {
            name: reference.name.clone(),
            key: name.to_string(),
        };
        settings.tls_ca = Some(Material::Inline(
            secret_key(&secrets, &key("ca.crt"), namespace).await?,
        ));
        let certificate = optional_secret_key(&secrets, &key("tls.crt")).await?;
        let private_key = optional_secret_key(&secrets, &key("tls.key")).await?;
        settings.tls_cert = certificate.map(Material::Inline);
        settings.tls_key = private_key.map(Material::Inline);
    }
    Ok(settings)
}

/// The Secrets of a bucket's namespace, each read recorded (see `secret_refresh`).
struct Secrets<'a> {
    api: Api<Secret>,
    namespace: &'a str,
    versions: &'a super::secret_reads::ReadVersions,
    reader: &'a Reader,
}

async fn secret_key(
    secrets: &Secrets<'_>,
    reference: &SecretKeyRef,
    namespace: &str,
) -> Result<String, ControllerError> {
    match lookup(secrets, reference).await? {
        Lookup::Value(value) => Ok(value),
        Lookup::NoKey => Err(reference_not_found(
            "Secret",
            namespace,
            &reference.name,
            &reference.key,
            true,
        )),
        Lookup::NoSecret => Err(reference_not_found(
            "Secret",
            namespace,
            &reference.name,
            &reference.key,
            false,
        )),
    }
}

/// A key that may be absent from its Secret (a TLS client certificate).
async fn optional_secret_key(
    secrets: &Secrets<'_>,
    reference: &SecretKeyRef,
) -> Result<Option<String>, ControllerError> {
    match lookup(secrets, reference).await? {
        Lookup::Value(value) => Ok(Some(value)),
        Lookup::NoKey | Lookup::NoSecret => Ok(None),
    }
}

/// What reading one key of a Secret found.
enum Lookup {
    Value(String),
    NoKey,
    NoSecret,
}

async fn lookup(
    secrets: &Secrets<'_>,
    reference: &SecretKeyRef,
) -> Result<Lookup, ControllerError> {
    let found = secrets.api.get_opt(&reference.name).await?;
    let version = found
        .as_ref()
        .and_then(|s| s.metadata.resource_version.clone());
    secrets.versions.record(
        secrets.namespace,
        &reference.name,
        secrets.reader.clone(),
        version,
    );
    let Some(secret) = found else {
        return Ok(Lookup::NoSecret);
    };
    let value = secret.data.and_then(|mut data| data.remove(&reference.key));
    Ok(value.map_or(Lookup::NoKey, |bytes| {
        Lookup::Value(String::from_utf8_lossy(&bytes.0).into_owned())
    }))
}

/// The Secrets a connection reads.
pub fn secret_names(connection: &BucketConnection) -> Vec<&str> {
    let BucketConnection {
        servers: _,
        js_domain: _,
        credentials_secret_ref,
        nkey_secret_ref,
        token_secret_ref,
        user_secret_ref,
        tls_secret_ref,
    } = connection;
    [credentials_secret_ref, nkey_secret_ref, token_secret_ref]
        .into_iter()
        .flatten()
        .map(|reference| reference.name.as_str())
        .chain(
            user_secret_ref
                .iter()
                .map(|reference| reference.name.as_str()),
        )
        .chain(
            tls_secret_ref
                .iter()
                .map(|reference| reference.name.as_str()),
        )
        .collect()
}
