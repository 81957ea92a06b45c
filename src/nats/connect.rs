//! Connecting to NATS from flags and environment, with one clear error on failure.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use super::errors::{Doing, NatsError};
use super::refusals::RefusalLog;
pub use super::settings::{ConnectionSettings, Material};
use super::urls::{parse_servers, redact_url, url_credentials};
use crate::error_chain::one_line;

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
        Err(NatsError::NotConnected {
            servers: self.servers.clone(),
        })
    }

    /// Classifies an error of a request made on this connection, explaining a timeout
    /// by what the server refused on it meanwhile (see `refusals`).
    pub fn classify(&self, error: impl std::error::Error + Send + Sync + 'static) -> NatsError {
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
            // Parsed before connecting: a file that is no `.creds` file never reached
            // NATS, so it is a setting to fix, not a refusal.
            .map_err(|error| {
                NatsError::settings(format!("{creds:?} is not a NATS credentials file: {error}"))
                    .caused_by(error)
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
        (None, Some(_)) => return Err(NatsError::settings("--password needs --user")),
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
            return Err(NatsError::settings(
                "a client certificate needs both the certificate and its key",
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
                NatsError::unauthorized(format!(
                    "{shown} rejected {} (authorization violation{})",
                    presented(settings),
                    refusal_hint(settings)
                ))
                .caused_by(error)
            }
            async_nats::ConnectErrorKind::Authentication => NatsError::unauthorized(format!(
                "could not authenticate to {shown} with {}: {}",
                presented(settings),
                one_line(&error)
            ))
            .caused_by(error),
            _ => NatsError::unavailable(one_line(&error))
                .context(Doing::Connecting {
                    servers: shown.clone(),
                })
                .caused_by(error),
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
        return Err(NatsError::settings(format!(
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
            Err(NatsError::settings(format!(
                "{shown} has JetStream, but nothing answers {place}"
            ))
            .caused_by(error))
        }
        Err(error) => {
            tracing::debug!(%error, "JetStream account info not available; going on");
            Ok(())
        }
        Ok(_) => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::jwt_expiry;
    use crate::nats::urls::{percent_decoded, redact_url};

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
