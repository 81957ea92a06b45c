//! One classifier for every NATS failure, so callers branch on kinds, not strings.

use std::error::Error as StdError;

use async_nats::jetstream::ErrorCode;

/// A NATS failure, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsError {
    /// The server could not be reached.
    #[error("cannot reach NATS: {0}")]
    Unavailable(String),
    /// The connection is down and reconnecting: said before any request waits for it.
    #[error("{0}")]
    NotConnected(String),
    /// The connection settings cannot be used: a credential or TLS file that is missing,
    /// unreadable or not what it should be. Found before connecting.
    #[error("invalid NATS connection settings: {0}")]
    Settings(String),
    /// The credentials were refused.
    #[error("NATS refused the credentials: {0}")]
    Unauthorized(String),
    /// The user may not do this.
    #[error("permission denied: {0}")]
    Forbidden(String),
    /// A request got no answer in time.
    #[error("NATS did not answer in time: {0}")]
    Timeout(String),
    /// A revision check failed: someone wrote the key in between (10071, or 10164 on
    /// clustered streams).
    #[error("the key changed since it was read (revision check failed)")]
    Conflict,
    /// The server refused the request.
    #[error("{message} (error code {code})")]
    Rejected { code: u64, message: String },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Server error codes kvop branches on.
pub mod codes {
    pub const STREAM_NOT_FOUND: u64 = 10059;
    pub const WRONG_LAST_SEQUENCE: u64 = 10071;
    pub const WRONG_LAST_SEQUENCE_CLUSTERED: u64 = 10164;
}

impl NatsError {
    /// A stable CamelCase reason for reports, conditions and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            NatsError::Unavailable(_) | NatsError::NotConnected(_) => "NatsUnavailable",
            NatsError::Settings(_) => "InvalidConnectionSettings",
            NatsError::Unauthorized(_) => "Unauthorized",
            NatsError::Forbidden(_) => "Forbidden",
            NatsError::Timeout(_) => "Timeout",
            NatsError::Conflict => "Conflict",
            NatsError::Rejected { .. } => "Rejected",
            NatsError::Other(_) => "NatsError",
        }
    }

    /// The same failure, saying what was being done: `observing bucket "b": ...`.
    pub fn context(self, what: &str) -> NatsError {
        match self {
            NatsError::Unavailable(text) => NatsError::Unavailable(format!("{what}: {text}")),
            NatsError::NotConnected(text) => NatsError::NotConnected(text),
            NatsError::Settings(text) => NatsError::Settings(format!("{what}: {text}")),
            NatsError::Unauthorized(text) => NatsError::Unauthorized(format!("{what}: {text}")),
            NatsError::Forbidden(text) => NatsError::Forbidden(format!("{what}: {text}")),
            NatsError::Timeout(text) => NatsError::Timeout(format!("{what}: {text}")),
            NatsError::Rejected { code, message } => NatsError::Rejected {
                code,
                message: format!("{what}: {message}"),
            },
            NatsError::Other(text) => NatsError::Other(format!("{what}: {text}")),
            NatsError::Conflict => NatsError::Conflict,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            NatsError::Unavailable(_)
            | NatsError::NotConnected(_)
            | NatsError::Timeout(_)
            | NatsError::Conflict => true,
            NatsError::Settings(_)
            | NatsError::Unauthorized(_)
            | NatsError::Forbidden(_)
            | NatsError::Rejected { .. }
            | NatsError::Other(_) => false,
        }
    }

    /// Whether this is the server's "not found" for a stream.
    pub fn is_stream_not_found(&self) -> bool {
        matches!(self, NatsError::Rejected { code, .. } if *code == codes::STREAM_NOT_FOUND)
    }
}

/// Classifies any async-nats error by walking its source chain down to the server's
/// error code; async-nats maps 10164 to a generic kind, so codes beat kinds here. Errors
/// of a connection's requests go through `RefusalLog::classify`, which also knows what
/// the server refused on that connection.
pub(crate) fn classify(error: &(dyn StdError + 'static)) -> NatsError {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(layer) = current {
        if let Some(server) = layer.downcast_ref::<async_nats::jetstream::Error>() {
            return from_server(server);
        }
        current = layer.source();
    }
    let text = chain_text(error);
    // Some async-nats errors keep the server error inside their kind, not as a source:
    // the code is still in the text.
    if let Some(code) = server_code(&text) {
        return from_code(code, &text);
    }
    let lower = text.to_lowercase();
    if lower.contains("permissions violation") {
        NatsError::Forbidden(text)
    } else if lower.contains("authorization violation")
        || lower.contains("authentication")
        || lower.contains("user authentication expired")
    {
        NatsError::Unauthorized(text)
    } else if lower.contains("timed out") || lower.contains("timeout") {
        // A refused request also only times out: its connection's `RefusalLog::classify`
        // tells the two apart.
        NatsError::Timeout(text)
    } else if lower.contains("no responders") {
        // JetStream is off, or the domain/prefix routes nowhere.
        NatsError::Unavailable(format!(
            "{text} (is JetStream enabled, and are --js-domain / --js-api-prefix right?)"
        ))
    } else if lower.contains("connection")
        || lower.contains("broken pipe")
        || lower.contains("disconnected")
    {
        NatsError::Unavailable(text)
    } else {
        NatsError::Other(text)
    }
}

fn from_server(error: &async_nats::jetstream::Error) -> NatsError {
    from_code(error.error_code(), &error.to_string())
}

fn from_code(code: ErrorCode, message: &str) -> NatsError {
    if code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE
        || code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT
    {
        return NatsError::Conflict;
    }
    if message.to_lowercase().contains("permission") {
        return NatsError::Forbidden(message.to_string());
    }
    // 503: the cluster cannot serve the request right now (no quorum, a leader election,
    // a stream offline while its peers catch up). Worth riding out, unlike a refusal.
    if message.contains("(code 503") {
        return NatsError::Unavailable(format!(
            "{} (error code {}): the JetStream cluster has no quorum or is electing a leader",
            strip_code_suffix(message),
            code.0
        ));
    }
    NatsError::Rejected {
        code: code.0,
        message: strip_code_suffix(message),
    }
}

/// The JetStream error code in async-nats' rendering "... (code 404, error code 10059)".
fn server_code(text: &str) -> Option<ErrorCode> {
    let start = text.rfind("error code ")? + "error code ".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().map(ErrorCode)
}

// async-nats renders "description (code 400, error code 10058)"; the code is kept apart.
fn strip_code_suffix(message: &str) -> String {
    const PREFIX: &str = "jetstream error: ";
    let message = match message.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => &message[PREFIX.len()..],
        _ => message,
    };
    match message.find(" (code ") {
        Some(cut) => message[..cut].to_string(),
        None => message.to_string(),
    }
}

/// The error and its sources on one line, without repeating identical layers.
pub(crate) fn chain_text(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(layer) = current {
        let text = layer.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = layer.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_without_quorum_is_worth_riding_out() {
        let error = from_code(
            ErrorCode(10008),
            "JetStream error: JetStream system temporarily unavailable (code 503, error code 10008)",
        );
        assert!(error.is_transient(), "{error:?}");
        assert_eq!(error.reason(), "NatsUnavailable");
        let text = error.to_string();
        assert!(
            text.contains("JetStream system temporarily unavailable (error code 10008)")
                && !text.contains("JetStream error:"),
            "{text}"
        );
    }

    #[test]
    fn a_refusal_is_not_retried_and_keeps_its_code() {
        let error = from_code(
            ErrorCode(10058),
            "jetstream error: stream name already in use with a different configuration (code 400, error code 10058)",
        );
        assert!(!error.is_transient());
        assert_eq!(
            error.to_string(),
            "stream name already in use with a different configuration (error code 10058)"
        );
    }

    #[test]
    fn context_says_what_was_being_done() {
        let error = NatsError::Timeout("no answer".into()).context("observing bucket \"b\"");
        assert_eq!(
            error.to_string(),
            "NATS did not answer in time: observing bucket \"b\": no answer"
        );
        assert_eq!(NatsError::Conflict.context("x"), NatsError::Conflict);
    }
}
