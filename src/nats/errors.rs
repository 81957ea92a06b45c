//! Every NATS failure as one classified type, so callers branch on kinds, not strings.
//!
//! Each failure keeps what kvop was doing ([`Doing`]), its words and, where there is one,
//! the async-nats or io error underneath as its `source()`. `Display` is complete on its
//! own: conditions, Events, reports and the CLI show it alone, and it says what the
//! source said or says it better (a refused credential, not the client's "authorization
//! violation"). The source is for programs (downcast, inspect), not for printing.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// The error underneath a failure: shared, so that a classified error stays `Clone` (one
/// failed request can fail many keys). Not an error itself: the failure's `source()` is
/// the client error, which a caller can downcast, not a wrapper around it.
#[derive(Debug, Clone)]
pub struct Cause(Arc<dyn StdError + Send + Sync + 'static>);

impl std::ops::Deref for Cause {
    type Target = dyn StdError + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for Cause {
    fn from(error: E) -> Cause {
        Cause(Arc::new(error))
    }
}

impl Cause {
    /// A client error that arrives boxed (async-nats' `message.info()`).
    pub(crate) fn boxed(error: Box<dyn StdError + Send + Sync + 'static>) -> Cause {
        Cause(Arc::from(error))
    }
}

/// What kvop was doing when NATS failed, shown before the failure's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doing {
    /// Connecting to these servers (credentials redacted).
    Connecting { servers: String },
    /// Observing a bucket: its stream and a sweep of its keys.
    Observing { bucket: String },
    /// Reading a bucket for `kvop export`: its stream config and every key.
    Reading { bucket: String },
}

impl fmt::Display for Doing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Doing::Connecting { servers } => f.write_str(servers),
            Doing::Observing { bucket } => write!(f, "observing bucket {bucket:?}"),
            Doing::Reading { bucket } => write!(f, "reading bucket {bucket:?}"),
        }
    }
}

/// `observing bucket "b": ` before a failure's words, or nothing.
struct During<'a>(&'a Option<Doing>);

impl fmt::Display for During<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(doing) => write!(f, "{doing}: "),
            None => Ok(()),
        }
    }
}

/// A NATS failure, classified.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NatsError {
    /// The server could not be reached.
    #[error("cannot reach NATS: {}{detail}", During(.during))]
    Unavailable {
        during: Option<Doing>,
        detail: String,
        #[source]
        source: Option<Cause>,
    },
    /// The connection is down and reconnecting: said before any request waits for it.
    #[error("not connected to NATS at {servers}; reconnecting")]
    NotConnected { servers: String },
    /// The connection settings cannot be used: a credential or TLS file that is missing,
    /// unreadable or not what it should be. Found before connecting.
    #[error("invalid NATS connection settings: {}{detail}", During(.during))]
    Settings {
        during: Option<Doing>,
        detail: String,
        #[source]
        source: Option<Cause>,
    },
    /// The credentials were refused.
    #[error("NATS refused the credentials: {}{detail}", During(.during))]
    Unauthorized {
        during: Option<Doing>,
        detail: String,
        #[source]
        source: Option<Cause>,
    },
    /// The user may not do this.
    #[error("permission denied: {}{detail}", During(.during))]
    Forbidden {
        during: Option<Doing>,
        detail: String,
        #[source]
        source: Option<Cause>,
    },
    /// A request got no answer in time.
    #[error("NATS did not answer in time: {}{detail}", During(.during))]
    Timeout {
        during: Option<Doing>,
        detail: String,
        #[source]
        source: Option<Cause>,
    },
    /// A revision check failed: someone wrote the key in between (10071, or 10164 on
    /// clustered streams).
    #[error("the key changed since it was read (revision check failed)")]
    Conflict,
    /// The server refused the request.
    #[error("{}{message} (error code {code})", During(.during))]
    Rejected {
        during: Option<Doing>,
        code: u64,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// Anything else.
    #[error("{}{detail}", During(.during))]
    Other {
        during: Option<Doing>,
        detail: String,
        #[source]
        source: Option<Cause>,
    },
}

impl PartialEq for NatsError {
    /// Two errors are equal when they are of one kind and say the same: context, words
    /// and code. Their causes are not compared (client errors are not comparable, and
    /// what a cause said is in the words).
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.during() == other.during()
            && self.to_string() == other.to_string()
    }
}

impl Eq for NatsError {}

/// Server error codes kvop branches on.
pub mod codes {
    pub const STREAM_NOT_FOUND: u64 = 10059;
    pub const WRONG_LAST_SEQUENCE: u64 = 10071;
    pub const WRONG_LAST_SEQUENCE_CLUSTERED: u64 = 10164;
}

impl NatsError {
    /// The server could not be reached: `detail` says how.
    pub fn unavailable(detail: impl Into<String>) -> NatsError {
        NatsError::Unavailable {
            during: None,
            detail: detail.into(),
            source: None,
        }
    }

    /// The connection settings cannot be used: `detail` says which and why.
    pub fn settings(detail: impl Into<String>) -> NatsError {
        NatsError::Settings {
            during: None,
            detail: detail.into(),
            source: None,
        }
    }

    /// The credentials were refused: `detail` says which.
    pub fn unauthorized(detail: impl Into<String>) -> NatsError {
        NatsError::Unauthorized {
            during: None,
            detail: detail.into(),
            source: None,
        }
    }

    /// A permission was refused: `detail` says which.
    pub fn forbidden(detail: impl Into<String>) -> NatsError {
        NatsError::Forbidden {
            during: None,
            detail: detail.into(),
            source: None,
        }
    }

    /// A request got no answer in time: `detail` says which.
    pub fn timeout(detail: impl Into<String>) -> NatsError {
        NatsError::Timeout {
            during: None,
            detail: detail.into(),
            source: None,
        }
    }

    /// Any other failure.
    pub fn other(detail: impl Into<String>) -> NatsError {
        NatsError::Other {
            during: None,
            detail: detail.into(),
            source: None,
        }
    }

    /// The same failure with the error underneath it as its source. A conflict and a lost
    /// connection keep none: their words are all there is to say.
    pub fn caused_by(self, cause: impl StdError + Send + Sync + 'static) -> NatsError {
        self.with_cause(Some(Cause::from(cause)))
    }

    /// The error underneath, taken out (to become another failure's source).
    pub(crate) fn into_cause(self) -> Option<Cause> {
        match self {
            NatsError::Unavailable { source, .. }
            | NatsError::Settings { source, .. }
            | NatsError::Unauthorized { source, .. }
            | NatsError::Forbidden { source, .. }
            | NatsError::Timeout { source, .. }
            | NatsError::Rejected { source, .. }
            | NatsError::Other { source, .. } => source,
            NatsError::NotConnected { .. } | NatsError::Conflict => None,
        }
    }

    pub(crate) fn with_cause(mut self, cause: Option<Cause>) -> NatsError {
        if let Some(source) = self.cause_mut() {
            *source = cause;
        }
        self
    }

    /// The same failure, saying what was being done: `observing bucket "b": ...`. A
    /// failure that says already keeps its first context, the nearer one.
    pub fn context(mut self, doing: Doing) -> NatsError {
        if let Some(during) = self.during_mut()
            && during.is_none()
        {
            *during = Some(doing);
        }
        self
    }

    /// What kvop was doing when it failed, if the failure says.
    pub fn during(&self) -> Option<&Doing> {
        match self {
            NatsError::Unavailable { during, .. }
            | NatsError::Settings { during, .. }
            | NatsError::Unauthorized { during, .. }
            | NatsError::Forbidden { during, .. }
            | NatsError::Timeout { during, .. }
            | NatsError::Rejected { during, .. }
            | NatsError::Other { during, .. } => during.as_ref(),
            NatsError::NotConnected { .. } | NatsError::Conflict => None,
        }
    }

    fn during_mut(&mut self) -> Option<&mut Option<Doing>> {
        match self {
            NatsError::Unavailable { during, .. }
            | NatsError::Settings { during, .. }
            | NatsError::Unauthorized { during, .. }
            | NatsError::Forbidden { during, .. }
            | NatsError::Timeout { during, .. }
            | NatsError::Rejected { during, .. }
            | NatsError::Other { during, .. } => Some(during),
            NatsError::NotConnected { .. } | NatsError::Conflict => None,
        }
    }

    fn cause_mut(&mut self) -> Option<&mut Option<Cause>> {
        match self {
            NatsError::Unavailable { source, .. }
            | NatsError::Settings { source, .. }
            | NatsError::Unauthorized { source, .. }
            | NatsError::Forbidden { source, .. }
            | NatsError::Timeout { source, .. }
            | NatsError::Rejected { source, .. }
            | NatsError::Other { source, .. } => Some(source),
            NatsError::NotConnected { .. } | NatsError::Conflict => None,
        }
    }

    /// A stable CamelCase reason for reports, conditions and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            NatsError::Unavailable { .. } | NatsError::NotConnected { .. } => "NatsUnavailable",
            NatsError::Settings { .. } => "InvalidConnectionSettings",
            NatsError::Unauthorized { .. } => "Unauthorized",
            NatsError::Forbidden { .. } => "Forbidden",
            NatsError::Timeout { .. } => "Timeout",
            // Not `Conflict`: that is an `IfUnchanged` entry's verdict, which needs a
            // human; this one is retried at once.
            NatsError::Conflict => "RevisionConflict",
            NatsError::Rejected { .. } => "Rejected",
            NatsError::Other { .. } => "NatsError",
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            NatsError::Unavailable { .. }
            | NatsError::NotConnected { .. }
            | NatsError::Timeout { .. }
            | NatsError::Conflict => true,
            NatsError::Settings { .. }
            | NatsError::Unauthorized { .. }
            | NatsError::Forbidden { .. }
            | NatsError::Rejected { .. }
            | NatsError::Other { .. } => false,
        }
    }

    /// Whether a revision check failed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, NatsError::Conflict)
    }

    /// Whether this is the server's "not found" for a stream.
    pub fn is_stream_not_found(&self) -> bool {
        matches!(self, NatsError::Rejected { code, .. } if *code == codes::STREAM_NOT_FOUND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observing(bucket: &str) -> Doing {
        Doing::Observing {
            bucket: bucket.into(),
        }
    }

    #[test]
    fn context_says_what_was_being_done() {
        let error = NatsError::timeout("no answer").context(observing("b"));
        assert_eq!(
            error.to_string(),
            "NATS did not answer in time: observing bucket \"b\": no answer"
        );
        assert_eq!(error.during(), Some(&observing("b")));
        assert_eq!(
            error.context(observing("c")).during(),
            Some(&observing("b")),
            "the nearer context is kept"
        );
        assert_eq!(
            NatsError::Conflict.context(observing("b")),
            NatsError::Conflict
        );
    }
}

/// A bucket config that no stream config can hold. The spec's checks refuse these
/// first; this is what is left when a config did not come through them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamConfigError {
    /// The stream's `max_msg_size` is a 32-bit integer.
    #[error("maxValueSize {max_value_size} is too large")]
    MaxValueSizeTooLarge { max_value_size: i64 },
    /// A mirror's or source's `startTime` is not an RFC 3339 time.
    #[error("invalid startTime {text:?}: {source}")]
    StartTime {
        text: String,
        #[source]
        source: time::error::Parse,
    },
}

impl From<StreamConfigError> for NatsError {
    /// Found before any request: nothing was sent, nothing a retry would change.
    fn from(error: StreamConfigError) -> NatsError {
        NatsError::other(error.to_string()).caused_by(error)
    }
}
