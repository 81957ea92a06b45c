//! Refusals a request never hears of: permission denials and credentials refused while
//! reconnecting, recorded from the connection's events so a request's timeout can say
//! what really happened.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::classify::classify;
use super::errors::NatsError;

// The server answers a publish or subscription the user may not make with an asynchronous
// `-ERR 'Permissions Violation for Publish to "<subject>"'` on the connection and drops
// the message; a connection whose credentials are refused while it reconnects (an
// expired or revoked user, a changed password) just stays down. Either way the request
// only times out (10 s for API requests, 5 s for publish acks), which alone reads as a
// transient stall. Each connection records its refusals here from its event callback,
// and classifies its own requests' errors against them (`RefusalLog::classify`): a
// timeout that follows a refusal is `Unauthorized` or `Forbidden` naming what was
// refused, and `retry::transient` stops waiting as soon as one arrives. A refusal on one
// pooled connection never explains a timeout on another.

/// How long a refusal can explain a timeout: the longest request timeout, plus slack for
/// a timer that fires late on a busy runtime.
const REFUSAL_WINDOW: Duration = Duration::from_secs(super::REQUEST_TIMEOUT.as_secs() + 2);

/// Refusals kept at most (a run denied on every key must not grow memory).
const MAX_REFUSALS: usize = 256;

/// Denied subjects named in one message; the rest are counted.
const NAMED_DENIALS: usize = 3;

/// What the server refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refused {
    /// The credentials, after the connection was up: `user authentication expired`,
    /// `authorization violation` on a reconnect.
    Credentials(String),
    /// A publish or subscription: `publish to "$KV.b.k"`.
    Permission(String),
}

struct Refusal {
    refused: Refused,
    at: Instant,
}

/// The refusals of one connection.
#[derive(Default)]
pub(crate) struct RefusalLog {
    refusals: Mutex<VecDeque<Refusal>>,
    /// Bumped on every refusal, so waiters need not poll.
    signal: watch::Sender<u64>,
}

impl RefusalLog {
    /// Records a connection event that refuses something; returns whether it did. Other
    /// events (slow consumer, disconnects, ...) surface through their requests.
    pub(crate) fn record_event(&self, event: &async_nats::Event) -> bool {
        let Some(refused) = refused(event) else {
            return false;
        };
        self.record(refused);
        true
    }

    /// Classifies an error of a request made on this log's connection: a timeout that
    /// follows a refusal is the refusal (a refused request gets no reply at all).
    pub(crate) fn classify(&self, error: impl StdError + Send + Sync + 'static) -> NatsError {
        match classify(error) {
            timeout @ NatsError::Timeout { .. } => match self.recent() {
                // The timeout stays the source: it is what the request itself saw.
                Some(refusal) => refusal.with_cause(timeout.into_cause()),
                None => timeout,
            },
            other => other,
        }
    }

    /// A receiver that changes on the next refusal (not on earlier ones).
    pub(crate) fn signal(&self) -> watch::Receiver<u64> {
        self.signal.subscribe()
    }

    /// Runs `request`, failing it as soon as the server refuses a subject that contains
    /// `naming` (e.g. `.KV_orders"`, for the stream of bucket `orders`): a denied request
    /// is dropped, and its answer would only be a timeout 10 s later. Only a refusal of
    /// that subject made since the request started counts, so a denial of another
    /// object's request on a shared connection never ends this one.
    pub(crate) async fn unless_denied<T>(
        &self,
        naming: &str,
        request: impl Future<Output = Result<T, NatsError>>,
    ) -> Result<T, NatsError> {
        let since = Instant::now();
        let mut signal = self.signal();
        let mut request = std::pin::pin!(request);
        loop {
            tokio::select! {
                // A finished request wins over a refusal reported in the same instant.
                biased;
                result = &mut request => return result,
                changed = signal.changed() => {
                    if changed.is_err() {
                        return request.await;
                    }
                    if let Some(denied) = self.denied(naming, since) {
                        return Err(denied);
                    }
                }
            }
        }
    }

    /// A permission refusal of a subject containing `naming`, recorded at or after
    /// `since`.
    fn denied(&self, naming: &str, since: Instant) -> Option<NatsError> {
        let refusals = self
            .refusals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        refusals
            .iter()
            .rev()
            .find_map(|refusal| match &refusal.refused {
                Refused::Permission(what) if refusal.at >= since && what.contains(naming) => {
                    Some(NatsError::forbidden(format!("the server refused {what}")))
                }
                _ => None,
            })
    }

    fn record(&self, refused: Refused) {
        let now = Instant::now();
        let mut refusals = self
            .refusals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        refusals.retain(|refusal| now.duration_since(refusal.at) <= REFUSAL_WINDOW);
        if refusals.len() >= MAX_REFUSALS {
            refusals.pop_front();
        }
        refusals.push_back(Refusal { refused, at: now });
        drop(refusals);
        self.signal.send_modify(|count| *count += 1);
    }

    /// What the server refused within `REFUSAL_WINDOW`, as the error a request that got
    /// no answer meanwhile should report: refused credentials first (nothing works
    /// without them), else the denied subjects, `the server refused publish to "$KV.b.k",
    /// "$KV.b.k2" and 3 more`.
    pub(crate) fn recent(&self) -> Option<NatsError> {
        let now = Instant::now();
        let refusals = self
            .refusals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut denied: Vec<&str> = Vec::new();
        for refusal in refusals
            .iter()
            .filter(|refusal| now.duration_since(refusal.at) <= REFUSAL_WINDOW)
        {
            match &refusal.refused {
                Refused::Credentials(what) => {
                    return Some(NatsError::unauthorized(format!(
                        "{what}, so the request got no answer"
                    )));
                }
                Refused::Permission(what) if !denied.contains(&what.as_str()) => denied.push(what),
                Refused::Permission(_) => {}
            }
        }
        if denied.is_empty() {
            return None;
        }
        let more = denied.len().saturating_sub(NAMED_DENIALS);
        denied.truncate(NAMED_DENIALS);
        let mut message = format!("the server refused {}", group_by_verb(&denied));
        if more > 0 {
            message.push_str(&format!(" and {more} more"));
        }
        Some(NatsError::forbidden(format!(
            "{message} (Permissions Violation)"
        )))
    }
}

fn refused(event: &async_nats::Event) -> Option<Refused> {
    use async_nats::{ClientError, Event, ServerError};
    match event {
        Event::ServerError(ServerError::Other(text)) => match denial(text) {
            // The operator's optional subscription to stream advisories: no request
            // waits on it, so it explains no timeout.
            Some(what) if what.contains("\"$JS.EVENT.ADVISORY.") => None,
            Some(what) => Some(Refused::Permission(what)),
            // How the server closes the connection of a user it no longer accepts, e.g.
            // "User Authentication Expired" when the user JWT expires (nats-server 2.15).
            None => text
                .to_lowercase()
                .contains("authentication")
                .then(|| Refused::Credentials(text.to_lowercase())),
        },
        Event::ServerError(ServerError::AuthorizationViolation) => {
            Some(Refused::Credentials("authorization violation".into()))
        }
        // A reconnect that failed: async-nats keeps only the kind's text.
        Event::ClientError(ClientError::Other(text))
            if text == "authorization violation" || text == "failed signing nonce" =>
        {
            Some(Refused::Credentials(format!("{text} on reconnecting")))
        }
        _ => None,
    }
}

/// `Permissions Violation for Publish to "$KV.b.k"` → `publish to "$KV.b.k"` (also
/// `Subscription to "..."`, and `Publish with Reply of "..."` for a denied reply subject).
fn denial(text: &str) -> Option<String> {
    const PREFIX: &str = "permissions violation for ";
    let what = match text.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => &text[PREFIX.len()..],
        _ => return None,
    };
    Some(match what.split_once(' ') {
        Some((verb, rest)) => format!("{} {rest}", verb.to_lowercase()),
        None => what.to_lowercase(),
    })
}

/// `publish to "a"`, `publish to "b"` → `publish to "a", "b"`: the verb once per run of
/// denials that share it.
fn group_by_verb(denials: &[&str]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for denial in denials {
        let (verb, subject) = denial.split_at(denial.find('"').unwrap_or(0));
        match groups.last_mut() {
            Some((last, subjects)) if *last == verb => subjects.push(subject),
            _ => groups.push((verb, vec![subject])),
        }
    }
    groups
        .iter()
        .map(|(verb, subjects)| format!("{verb}{}", subjects.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use async_nats::{ClientError, Event, ServerError};

    use super::*;

    #[tokio::test]
    async fn a_request_ends_at_its_own_subjects_denial_and_not_at_anothers() {
        let log = RefusalLog::default();
        let never = std::future::pending::<Result<(), NatsError>>();
        let waiting = log.unless_denied(".KV_orders\"", never);
        let deny = async {
            tokio::task::yield_now().await;
            // Another bucket's denial, and one whose name only starts like it: no end.
            log.record(Refused::Permission(
                r#"publish to "$JS.API.STREAM.CREATE.KV_payments""#.into(),
            ));
            log.record(Refused::Permission(
                r#"publish to "$JS.API.STREAM.CREATE.KV_orders2""#.into(),
            ));
            tokio::task::yield_now().await;
            log.record(Refused::Permission(
                r#"publish to "$JS.API.STREAM.CREATE.KV_orders""#.into(),
            ));
        };
        let (result, ()) = tokio::join!(waiting, deny);
        let error = result.expect_err("denied");
        assert!(matches!(error, NatsError::Forbidden { .. }), "{error:?}");
        assert!(error.to_string().contains("KV_orders\""), "{error}");
    }

    #[tokio::test]
    async fn a_denial_made_before_the_request_does_not_end_it() {
        let log = RefusalLog::default();
        log.record(Refused::Permission(
            r#"publish to "$JS.API.STREAM.CREATE.KV_orders""#.into(),
        ));
        let answered = log.unless_denied(".KV_orders\"", async {
            // Some other denial arrives while this request is still out.
            tokio::task::yield_now().await;
            Ok::<_, NatsError>(7)
        });
        let other = async {
            log.record(Refused::Permission(r#"publish to "$KV.b.k""#.into()));
        };
        let (result, ()) = tokio::join!(answered, other);
        assert_eq!(result.expect("answered"), 7);
    }

    #[test]
    fn permission_violations_are_read_from_the_servers_error_text() {
        assert_eq!(
            denial(r#"Permissions Violation for Publish to "$KV.b.k""#).as_deref(),
            Some(r#"publish to "$KV.b.k""#)
        );
        assert_eq!(
            denial(r#"permissions violation for Subscription to "_INBOX.>""#).as_deref(),
            Some(r#"subscription to "_INBOX.>""#)
        );
        assert_eq!(denial("Slow Consumer"), None);
        assert_eq!(denial("Authorization Violation"), None);
        assert_eq!(denial("Permissions"), None);
    }

    #[test]
    fn refused_credentials_are_read_from_connection_events() {
        let credentials = |text: &str| Some(Refused::Credentials(text.into()));
        assert_eq!(
            refused(&Event::ServerError(ServerError::Other(
                "User Authentication Expired".into()
            ))),
            credentials("user authentication expired")
        );
        assert_eq!(
            refused(&Event::ServerError(ServerError::AuthorizationViolation)),
            credentials("authorization violation")
        );
        assert_eq!(
            refused(&Event::ClientError(ClientError::Other(
                "authorization violation".into()
            ))),
            credentials("authorization violation on reconnecting")
        );
        assert_eq!(
            refused(&Event::ClientError(ClientError::Other("IO error".into()))),
            None
        );
        assert_eq!(refused(&Event::Disconnected), None);
        assert_eq!(
            refused(&Event::ServerError(ServerError::Other(
                r#"Permissions Violation for Subscription to "$JS.EVENT.ADVISORY.STREAM.*.KV_b""#
                    .into()
            ))),
            None,
            "the optional advisory subscription refuses no request"
        );
        assert_eq!(
            refused(&Event::ServerError(ServerError::Other(
                r#"Permissions Violation for Publish to "$KV.b.k""#.into()
            ))),
            Some(Refused::Permission(r#"publish to "$KV.b.k""#.into()))
        );
    }

    #[test]
    fn a_connection_explains_its_timeouts_by_its_own_refusals_only() {
        let refusing = RefusalLog::default();
        let quiet = RefusalLog::default();
        refusing.record(Refused::Permission(r#"publish to "$KV.b.k""#.into()));
        let timeout = || std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out");
        assert!(
            matches!(quiet.classify(timeout()), NatsError::Timeout { .. }),
            "another connection's refusal explains nothing here"
        );
        let explained = refusing.classify(timeout());
        assert!(
            matches!(&explained, NatsError::Forbidden { detail, .. } if detail.contains("$KV.b.k")),
            "{explained:?}"
        );
        assert!(
            std::error::Error::source(&explained)
                .is_some_and(|source| source.to_string() == "request timed out"),
            "the timeout the request saw stays its source: {explained:?}"
        );
        let signal = quiet.signal();
        refusing.record(Refused::Credentials("authorization violation".into()));
        assert!(
            !signal.has_changed().expect("open"),
            "woken by another connection"
        );
        refusing.record(Refused::Credentials("authorization violation".into()));
        let other = std::io::Error::other("stream not found");
        assert!(
            !matches!(refusing.classify(other), NatsError::Unauthorized { .. }),
            "only a timeout is explained by a refusal"
        );
    }

    #[test]
    fn denials_are_named_once_per_verb() {
        assert_eq!(
            group_by_verb(&[
                r#"publish to "$KV.b.k""#,
                r#"publish to "$KV.b.k2""#,
                r#"subscription to "_INBOX.>""#,
            ]),
            r#"publish to "$KV.b.k", "$KV.b.k2"; subscription to "_INBOX.>""#
        );
    }
}
