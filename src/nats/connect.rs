//! Connecting to NATS from flags and environment, with one clear error on failure.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use super::bucket::Bucket;
use super::errors::{NatsError, chain_text};
use super::refusals::RefusalLog;

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
                NatsError::Settings(format!("cannot read {what} {}: {error}", path.display()))
            }),
        }
    }

    /// A PEM file for async-nats, checked first: async-nats reads TLS files only while
    /// connecting, and then a missing file or one that is not PEM surfaces as "unknown
    /// issuer" or a failed handshake that names no file.
    fn pem_path(&self, name: &str, what: &str) -> Result<PathBuf, NatsError> {
        let text = self.read(what)?;
        if !text.contains("-----BEGIN ") {
            return Err(NatsError::Settings(format!(
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

/// A live connection and its JetStream context. Cheap to clone (one connection).
#[derive(Clone)]
pub struct Connection {
    pub(super) client: async_nats::Client,
    pub(super) jetstream: jetstream::Context,
    /// What the server refused on this connection (see `refusals`).
    pub(super) refusals: Arc<RefusalLog>,
    /// Whether the connection is up, as its events last said.
    connected: Arc<watch::Sender<bool>>,
    /// The servers, credentials redacted, for messages.
    servers: String,
}

impl Connection {
    /// The handle for one bucket on this connection.
    pub fn bucket(&self, name: &str) -> Bucket {
        Bucket::new(self.clone(), name)
    }

    /// Whether the connection is up now (not reconnecting): while it is not, every
    /// request would wait out its timeout.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// A receiver that changes whenever the connection goes down or comes back.
    pub fn connectivity(&self) -> watch::Receiver<bool> {
        self.connected.subscribe()
    }

    /// `Ok` while connected, else the error every request would end in after waiting out
    /// its timeout: said at once instead.
    pub fn require_connected(&self) -> Result<(), NatsError> {
        if self.is_connected() {
            return Ok(());
        }
        Err(NatsError::NotConnected(format!(
            "not connected to NATS at {}; reconnecting",
            self.servers
        )))
    }

    /// Classifies an error of a request made on this connection, explaining a timeout
    /// by what the server refused on it meanwhile (see `refusals`).
    pub fn classify(&self, error: &(dyn std::error::Error + 'static)) -> NatsError {
        self.refusals.classify(error)
    }

    /// Runs `attempt` (requests on this connection) until it succeeds, fails for good or
    /// a few seconds of transient failures are ridden out (see `retry`). Only for
    /// operations that are safe to repeat.
    pub async fn ride_out<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T, NatsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, NatsError>>,
    {
        super::retry::transient(&self.refusals, what, attempt).await
    }

    /// The raw client, for tests and benchmarks that compare kvop with plain async-nats
    /// on the same connection. kvop's own code goes through the methods above.
    #[doc(hidden)]
    pub fn raw_client(&self) -> &async_nats::Client {
        &self.client
    }

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
    let refusals = Arc::new(RefusalLog::default());
    let connected = Arc::new(watch::Sender::new(false));
    let mut options = async_nats::ConnectOptions::new()
        .name(&settings.client_name)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(super::REQUEST_TIMEOUT))
        .event_callback({
            let refusals = refusals.clone();
            let connected = connected.clone();
            let shown = redact_url(&settings.url);
            move |event| {
                let refusals = refusals.clone();
                let connected = connected.clone();
                let shown = shown.clone();
                async move {
                    match event {
                        async_nats::Event::Connected if set(&connected, true) => {
                            tracing::info!(servers = %shown, "connected to NATS");
                        }
                        async_nats::Event::Disconnected if set(&connected, false) => {
                            tracing::warn!(servers = %shown, "lost the connection to NATS; reconnecting");
                        }
                        _ => {}
                    }
                    // A permission denial, or credentials refused on a reconnect, reach
                    // the client only as events; the requests themselves time out.
                    // Recorded so that such a timeout is classified as what it is.
                    let refused = refusals.record_event(&event);
                    tracing::debug!(refused, "NATS connection event: {event}");
                }
            }
        });
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
    let servers = parse_servers(&settings.url)?;
    match (&settings.user, &settings.password) {
        (Some(user), password) => {
            options = options.user_and_password(user.clone(), password.clone().unwrap_or_default());
        }
        (None, Some(_)) => return Err(NatsError::Settings("--password needs --user".into())),
        (None, None) => {}
    }
    if let Some(token) = &settings.token {
        options = options.token(token.clone());
    }
    if settings.user.is_none() && settings.token.is_none() {
        options = url_credentials(options, &servers);
    }
    if let Some(ca) = &settings.tls_ca {
        options = options
            .add_root_certificates(ca.pem_path("ca.crt", "the TLS CA (--tls-ca, NATS_CA)")?)
            .require_tls(true);
    }
    match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            options = options
                .add_client_certificate(
                    cert.pem_path(
                        "tls.crt",
                        "the TLS client certificate (--tls-cert, NATS_CERT)",
                    )?,
                    key.pem_path("tls.key", "the TLS client key (--tls-key, NATS_KEY)")?,
                )
                .require_tls(true);
        }
        (None, None) => {}
        _ => {
            return Err(NatsError::Settings(
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
    let shown = redact_url(&settings.url);
    let client = options
        .connect(servers)
        .await
        .map_err(|error| match error.kind() {
            async_nats::ConnectErrorKind::AuthorizationViolation => {
                NatsError::Unauthorized(format!(
                    "{shown} rejected {} (authorization violation{})",
                    presented(settings),
                    refusal_hint(settings)
                ))
            }
            async_nats::ConnectErrorKind::Authentication => NatsError::Unauthorized(format!(
                "could not authenticate to {shown} with {}: {}",
                presented(settings),
                chain_text(&error)
            )),
            _ => NatsError::Unavailable(format!("{shown}: {}", chain_text(&error))),
        })?;
    let jetstream = match (&settings.js_domain, &settings.js_api_prefix) {
        (Some(domain), _) => jetstream::with_domain(client.clone(), domain),
        (None, Some(prefix)) => jetstream::with_prefix(client.clone(), prefix),
        (None, None) => jetstream::new(client.clone()),
    };
    set(
        &connected,
        client.connection_state() == async_nats::connection::State::Connected,
    );
    Ok(Connection {
        client,
        jetstream,
        refusals,
        connected,
        servers: shown,
    })
}

/// Records the connection state; returns whether it changed.
fn set(connected: &watch::Sender<bool>, now: bool) -> bool {
    connected.send_if_modified(|state| std::mem::replace(state, now) != now)
}

/// Checks that JetStream answers where the settings point, so that a server without
/// JetStream and a wrong domain or prefix are told apart and named, instead of both
/// failing the first bucket with "requested JetStream resource does not exist". A
/// standalone run calls it right after connecting. Without a domain or prefix it only
/// reads the server's INFO; with one it asks for the account's JetStream info, and only
/// "nobody answers" is an error: a user without permission for that request still runs.
pub async fn require_jetstream(
    connection: &Connection,
    settings: &ConnectionSettings,
) -> Result<(), NatsError> {
    use async_nats::jetstream::context::AccountErrorKind;
    let shown = redact_url(&settings.url);
    if !connection.client.server_info().jetstream {
        return Err(NatsError::Settings(format!(
            "{shown} has JetStream disabled; kvop needs it (start nats-server with -js, or give it a jetstream {{}} block)"
        )));
    }
    let place = match (&settings.js_domain, &settings.js_api_prefix) {
        (Some(domain), _) => {
            format!("in domain {domain:?} (--js-domain, NATS_JS_DOMAIN): is the domain right?")
        }
        (None, Some(prefix)) => format!(
            "under the API prefix {prefix:?} (--js-api-prefix): is the prefix right, and imported into this account?"
        ),
        (None, None) => return Ok(()),
    };
    match connection.jetstream.query_account().await {
        Err(error) if matches!(error.kind(), AccountErrorKind::JetStreamUnavailable) => {
            Err(NatsError::Settings(format!(
                "{shown} has JetStream, but nothing answers {place}"
            )))
        }
        Err(error) => {
            tracing::debug!(%error, "JetStream account info not available; going on");
            Ok(())
        }
        Ok(_) => Ok(()),
    }
}

fn parse_servers(urls: &str) -> Result<Vec<async_nats::ServerAddr>, NatsError> {
    urls.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse().map_err(|error| {
                NatsError::Unavailable(format!("invalid NATS URL {:?}: {error}", redact_url(url)))
            })
        })
        .collect()
}

/// `nats://user:password@host` or `nats://token@host`, as the Go client and the `nats`
/// CLI read them: async-nats 0.51 parses the user info but never sends it, so without
/// this such a URL connects with no credentials at all.
fn url_credentials(
    options: async_nats::ConnectOptions,
    servers: &[async_nats::ServerAddr],
) -> async_nats::ConnectOptions {
    let Some(server) = servers.iter().find(|server| server.has_user_pass()) else {
        return options;
    };
    match (server.username(), server.password()) {
        (Some(user), Some(password)) => {
            options.user_and_password(percent_decoded(user), percent_decoded(password))
        }
        (Some(token), None) => options.token(percent_decoded(token)),
        (None, _) => options,
    }
}

/// User info as typed: a URL keeps `@`, `:` or `/` in a password percent-encoded.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).unwrap_or_else(|_| text.to_string())
}

/// What was presented to the server, for messages: file names and user names, never a
/// password, token, seed or JWT.
fn presented(settings: &ConnectionSettings) -> String {
    let mut parts = Vec::new();
    match &settings.creds {
        Some(Material::File(path)) => parts.push(format!("the user JWT in {}", path.display())),
        Some(Material::Inline(_)) => parts.push("the user JWT from the Secret".into()),
        None => {}
    }
    if let Some(nkey) = &settings.nkey {
        parts.push(format!("the NKey seed {nkey:?}"));
    }
    match (&settings.user, &settings.password) {
        (Some(user), Some(_)) => parts.push(format!("user {user:?} with its password")),
        (Some(user), None) => parts.push(format!("user {user:?} without a password")),
        (None, _) => {}
    }
    if settings.token.is_some() {
        parts.push("the token".into());
    }
    if settings.user.is_none() && settings.token.is_none() && settings.url.contains('@') {
        parts.push("the credentials in the URL".into());
    }
    if let Some(cert) = &settings.tls_cert {
        parts.push(format!("the client certificate {cert:?}"));
    }
    if parts.is_empty() {
        return "a connection without credentials (see --creds, --nkey, --user, --token)".into();
    }
    parts.join(" and ")
}

/// What the client can tell about a refused user JWT. The server answers every refusal
/// with the same "authorization violation" (its own log only says "authentication
/// error"), but expiry is in the JWT itself.
fn refusal_hint(settings: &ConnectionSettings) -> String {
    let Some(creds) = &settings.creds else {
        return String::new();
    };
    let expires = creds
        .read("credentials")
        .ok()
        .as_deref()
        .and_then(jwt_expiry);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match expires {
        Some(expires) if expires <= now => {
            let at = time::OffsetDateTime::from_unix_timestamp(expires)
                .ok()
                .and_then(|at| at.format(&Rfc3339).ok())
                .unwrap_or_else(|| expires.to_string());
            format!("; the user JWT expired at {at}")
        }
        _ => "; the user JWT has not expired: it may be revoked, or its account unknown to this server".into(),
    }
}

/// The `exp` claim of the user JWT in a `.creds` file: the first line between the
/// `-----BEGIN NATS USER JWT-----` and `------END NATS USER JWT------` markers, whose
/// middle part is base64url JSON.
fn jwt_expiry(creds: &str) -> Option<i64> {
    use base64::Engine;
    let mut lines = creds.lines().map(str::trim);
    lines.find(|line| line.starts_with("---") && line.contains("JWT"))?;
    let jwt = lines.next()?;
    let claims = jwt.split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).ok()?;
    claims.get("exp")?.as_i64().filter(|exp| *exp > 0)
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
    use super::{jwt_expiry, percent_decoded, redact_url};

    #[test]
    fn url_user_info_is_percent_decoded() {
        assert_eq!(percent_decoded("p%40ss%3Aw%2Frd"), "p@ss:w/rd");
        assert_eq!(percent_decoded("plain"), "plain");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%zz%4"), "%zz%4");
    }

    #[test]
    fn the_expiry_of_a_creds_files_jwt_is_read_without_verifying_it() {
        use base64::Engine;
        let encode = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let creds = |claims: &str| {
            format!(
                "-----BEGIN NATS USER JWT-----\n{}.{}.sig\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\nSU...\n------END USER NKEY SEED------\n",
                encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#),
                encode(claims)
            )
        };
        assert_eq!(
            jwt_expiry(&creds(r#"{"exp":1700000000,"sub":"U"}"#)),
            Some(1_700_000_000)
        );
        assert_eq!(jwt_expiry(&creds(r#"{"sub":"U"}"#)), None);
        assert_eq!(jwt_expiry("not a creds file"), None);
    }

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
