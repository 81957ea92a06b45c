//! Server URLs: parsed for async-nats, user info taken from them (async-nats 0.51 parses
//! it but never sends it), and shown with credentials redacted.

use super::errors::NatsError;

pub(super) fn parse_servers(urls: &str) -> Result<Vec<async_nats::ServerAddr>, NatsError> {
    urls.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse().map_err(|error| {
                NatsError::unavailable(format!("invalid NATS URL {:?}: {error}", redact_url(url)))
                    .caused_by(error)
            })
        })
        .collect()
}

/// `nats://user:password@host` or `nats://token@host`, as the Go client and the `nats`
/// CLI read them: async-nats 0.51 parses the user info but never sends it, so without
/// this such a URL connects with no credentials at all.
pub(super) fn url_credentials(
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
pub(super) fn percent_decoded(text: &str) -> String {
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
