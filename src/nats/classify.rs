//! Classifying async-nats errors: the server's error code where there is one, else the
//! words of the error chain, into a [`NatsError`] that keeps the client error as its
//! source.

use std::error::Error as StdError;

use async_nats::jetstream::ErrorCode;

use super::errors::NatsError;
use crate::error_chain::one_line;

/// Classifies any async-nats error by walking its source chain down to the server's
/// error code; async-nats maps 10164 to a generic kind, so codes beat kinds here. The
/// error becomes the classified one's source. Errors of a connection's requests go
/// through `RefusalLog::classify`, which also knows what the server refused on that
/// connection.
pub(crate) fn classify(error: impl StdError + Send + Sync + 'static) -> NatsError {
    classify_text(&error).caused_by(error)
}

fn classify_text(error: &(dyn StdError + 'static)) -> NatsError {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(layer) = current {
        if let Some(server) = layer.downcast_ref::<async_nats::jetstream::Error>() {
            return from_server(server);
        }
        current = layer.source();
    }
    let text = one_line(error);
    // Some async-nats errors keep the server error inside their kind, not as a source:
    // the code is still in the text.
    if let Some(code) = server_code(&text) {
        return from_code(code, &text);
    }
    let lower = text.to_lowercase();
    if lower.contains("permissions violation") {
        NatsError::forbidden(text)
    } else if lower.contains("authorization violation")
        || lower.contains("authentication")
        || lower.contains("user authentication expired")
    {
        NatsError::unauthorized(text)
    } else if lower.contains("timed out") || lower.contains("timeout") {
        // A refused request also only times out: its connection's `RefusalLog::classify`
        // tells the two apart. async-nats says "request timed out: deadline has
        // elapsed", which reads like a user's deadline: say how long kvop waited.
        if lower.contains("deadline has elapsed") {
            NatsError::timeout(format!(
                "no answer within {} s",
                super::REQUEST_TIMEOUT.as_secs()
            ))
        } else {
            NatsError::timeout(text)
        }
    } else if lower.contains("no responders") {
        // JetStream is off, or the domain/prefix routes nowhere.
        NatsError::unavailable(format!(
            "{text} (is JetStream enabled, and are --js-domain / --js-api-prefix right?)"
        ))
    } else if lower.contains("connection")
        || lower.contains("broken pipe")
        || lower.contains("disconnected")
    {
        NatsError::unavailable(text)
    } else {
        NatsError::other(text)
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
        return NatsError::forbidden(message);
    }
    // 503: the cluster cannot serve the request right now (no quorum, a leader election,
    // a stream offline while its peers catch up). Worth riding out, unlike a refusal.
    if message.contains("(code 503") {
        return NatsError::unavailable(format!(
            "{} (error code {}): the JetStream cluster has no quorum or is electing a leader",
            strip_code_suffix(message),
            code.0
        ));
    }
    NatsError::Rejected {
        during: None,
        code: code.0,
        message: strip_code_suffix(message),
        source: None,
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
    fn a_timed_out_request_says_how_long_kvop_waited() {
        #[derive(Debug)]
        struct Elapsed;
        impl std::fmt::Display for Elapsed {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("request timed out: deadline has elapsed")
            }
        }
        impl StdError for Elapsed {}
        let error = classify(Elapsed);
        assert_eq!(error.reason(), "Timeout");
        assert_eq!(
            error.to_string(),
            "NATS did not answer in time: no answer within 10 s"
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
    fn a_classified_error_keeps_the_client_error_as_its_source() {
        let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out");
        let error = classify(timeout);
        assert_eq!(error.reason(), "Timeout");
        assert_eq!(
            error.to_string(),
            "NATS did not answer in time: request timed out"
        );
        let source = error.source().expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the io error itself");
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    }
}
