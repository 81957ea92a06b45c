//! Connecting to NATS from flags and environment, with one clear error on failure.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;

use super::errors::{NatsError, chain_text};

/// Credential material: a file given on the command line, or content read from a
/// Kubernetes Secret. `Debug` never shows content.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Material {
    File(PathBuf),
    Inline(String),
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Material::File(path) => write!(f, "{}", path.display()),
            Material::Inline(_) => f.write_str("<from a Secret>"),
        }
    }
}

impl Material {
    /// The content (read from the file when needed).
    fn read(&self, what: &str) -> Result<String, NatsError> {
        match self {
            Material::Inline(text) => Ok(text.clone()),
            Material::File(path) => std::fs::read_to_string(path).map_err(|error| {
                NatsError::Unauthorized(format!("cannot read {what} {}: {error}", path.display()))
            }),
        }
    }

    /// A file holding the content: the file itself, or a private copy of inline content
    /// (async-nats reads TLS material from files only).
    fn path(&self, name: &str) -> Result<PathBuf, NatsError> {
        match self {
            Material::File(path) => Ok(path.clone()),
            Material::Inline(text) => write_private(name, text),
        }
    }
}

/// How to reach NATS. `Debug` never shows a password, token or credential.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ConnectionSettings {
    /// Comma-separated server URLs.
    pub url: String,
    /// A `.creds` file (JWT and NKey seed).
    pub creds: Option<Material>,
    /// An NKey seed.
    pub nkey: Option<Material>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub tls_ca: Option<Material>,
    pub tls_cert: Option<Material>,
    pub tls_key: Option<Material>,
    pub tls_first: bool,
    pub js_domain: Option<String>,
    pub js_api_prefix: Option<String>,
    /// Shown in the server's connection list.
    pub client_name: String,
    /// Keep trying to connect in the background instead of failing (the operator must
    /// start, and report, while NATS is down).
    pub retry_initial_connect: bool,
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |set: bool| if set { "<redacted>" } else { "<none>" };
        f.debug_struct("ConnectionSettings")
            .field("url", &self.url)
            .field("creds", &self.creds)
            .field("nkey", &self.nkey)
            .field("user", &self.user)
            .field("password", &redacted(self.password.is_some()))
            .field("token", &redacted(self.token.is_some()))
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("tls_first", &self.tls_first)
            .field("js_domain", &self.js_domain)
            .field("js_api_prefix", &self.js_api_prefix)
            .finish()
    }
}

/// A live connection and its JetStream context.
#[derive(Clone)]
pub struct Connection {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
}

impl Connection {
    /// The largest message (headers and payload) the server accepts.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// The server's version string, for reports.
    pub fn server_version(&self) -> String {
        self.client.server_info().version
    }
}

/// Connects once, without retrying: a standalone run should fail fast and clearly.
pub async fn connect(settings: &ConnectionSettings) -> Result<Connection, NatsError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(&settings.client_name)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(10)));
    if let Some(creds) = &settings.creds {
        options = options
            .credentials(&creds.read("credentials")?)
            .map_err(|error| {
                NatsError::Unauthorized(format!("invalid credentials ({creds:?}): {error}"))
            })?;
    }
    if let Some(nkey) = &settings.nkey {
        options = options.nkey(nkey.read("NKey seed")?.trim().to_string());
    }
    match (&settings.user, &settings.password) {
        (Some(user), password) => {
            options = options.user_and_password(user.clone(), password.clone().unwrap_or_default());
        }
        (None, Some(_)) => return Err(NatsError::Unauthorized("--password needs --user".into())),
        (None, None) => {}
    }
    if let Some(token) = &settings.token {
        options = options.token(token.clone());
    }
    if let Some(ca) = &settings.tls_ca {
        options = options
            .add_root_certificates(ca.path("ca.crt")?)
            .require_tls(true);
    }
    match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            options = options
                .add_client_certificate(cert.path("tls.crt")?, key.path("tls.key")?)
                .require_tls(true);
        }
        (None, None) => {}
        _ => {
            return Err(NatsError::Unauthorized(
                "a client certificate needs both the certificate and its key".into(),
            ));
        }
    }
    if settings.tls_first {
        options = options.tls_first();
    }
    if settings.retry_initial_connect {
        options = options.retry_on_initial_connect();
    }
    let servers: Vec<async_nats::ServerAddr> = settings
        .url
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse().map_err(|error| {
                NatsError::Unavailable(format!("invalid NATS URL {url:?}: {error}"))
            })
        })
        .collect::<Result<_, _>>()?;
    let shown = redact_url(&settings.url);
    let client = options.connect(servers).await.map_err(|error| {
        let text = chain_text(&error);
        match error.kind() {
            async_nats::ConnectErrorKind::AuthorizationViolation
            | async_nats::ConnectErrorKind::Authentication => {
                NatsError::Unauthorized(format!("{shown} refused the credentials: {text}"))
            }
            _ => NatsError::Unavailable(format!("{shown}: {text}")),
        }
    })?;
    let jetstream = match (&settings.js_domain, &settings.js_api_prefix) {
        (Some(domain), _) => jetstream::with_domain(client.clone(), domain),
        (None, Some(prefix)) => jetstream::with_prefix(client.clone(), prefix),
        (None, None) => jetstream::new(client.clone()),
    };
    Ok(Connection { client, jetstream })
}

/// Writes inline TLS material to a file only this user can read, named by a hash of its
/// content (so rotated material gets a new file and the connection a new identity).
fn write_private(name: &str, content: &str) -> Result<PathBuf, NatsError> {
    use std::hash::{Hash, Hasher};
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    content.hash(&mut hasher);
    let dir = std::env::temp_dir().join(format!("kvop-tls-{}", std::process::id()));
    let failed = |error: std::io::Error| {
        NatsError::Other(format!("cannot write TLS material {name}: {error}"))
    };
    std::fs::create_dir_all(&dir).map_err(failed)?;
    let path = dir.join(format!("{:016x}-{name}", hasher.finish()));
    if !path.exists() {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(failed)?;
        file.write_all(content.as_bytes()).map_err(failed)?;
    }
    Ok(path)
}

/// The URL(s) with any `user:password@` or `token@` replaced by `***@`, for messages.
pub fn redact_url(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let url = url.trim();
            let authority_start = url.find("://").map_or(0, |index| index + 3);
            match url[authority_start..].find('@') {
                Some(at) if !url[authority_start..authority_start + at].contains('/') => {
                    format!(
                        "{}***{}",
                        &url[..authority_start],
                        &url[authority_start + at..]
                    )
                }
                _ => url.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn credentials_in_urls_are_never_shown() {
        assert_eq!(
            redact_url("nats://alice:s3cret@host:4222"),
            "nats://***@host:4222"
        );
        assert_eq!(
            redact_url("nats://tok3n@a:1, tls://b:2"),
            "nats://***@a:1,tls://b:2"
        );
        assert_eq!(redact_url("user:pw@host:4222"), "***@host:4222");
        assert_eq!(redact_url("nats://host:4222"), "nats://host:4222");
    }
}
