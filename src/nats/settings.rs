//! How to reach NATS: the servers, credentials and TLS material from flags, the
//! environment or Kubernetes Secrets. Nothing here ever shows a secret.

use std::fmt;
use std::path::PathBuf;

use super::errors::NatsError;

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
    pub(super) fn read(&self, what: &str) -> Result<String, NatsError> {
        match self {
            Material::Inline(text) => Ok(text.clone()),
            Material::File(path) => std::fs::read_to_string(path).map_err(|error| {
                NatsError::settings(format!("cannot read {what} {}: {error}", path.display()))
                    .caused_by(error)
            }),
        }
    }

    /// A PEM file for async-nats, checked first: async-nats reads TLS files only while
    /// connecting, and then a missing file or one that is not PEM surfaces as "unknown
    /// issuer" or a failed handshake that names no file.
    pub(super) fn pem_path(&self, name: &str, what: &str) -> Result<PathBuf, NatsError> {
        let text = self.read(what)?;
        if !text.contains("-----BEGIN ") {
            return Err(NatsError::settings(format!(
                "{what} {self:?} is not PEM (no \"-----BEGIN\" line)"
            )));
        }
        self.path(name)
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
        NatsError::other(format!("cannot write TLS material {name}: {error}")).caused_by(error)
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
