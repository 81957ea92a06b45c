//! The failures apply's scripted tests play behind [`super::BucketWrites`]: each built
//! from the async-nats error the client returns for that fault, and classified the way a
//! connection classifies it, so the round machine sees exactly what a server would make
//! it see. The errors cannot be scripted above the seam (they arrive there as
//! [`NatsError`]), so they are made here, where the classifier is.

use async_nats::jetstream::context::{
    CreateStreamError, CreateStreamErrorKind, GetStreamError, GetStreamErrorKind, PublishError,
    PublishErrorKind,
};
use async_nats::{Event, ServerError};

use super::errors::NatsError;
use super::refusals::RefusalLog;
use super::write::classify_publish;

/// The error body of a JetStream API or publish-ack answer, as the server sends it.
fn server_error(code: u64, err_code: u64, description: &str) -> async_nats::jetstream::Error {
    serde_json::from_value(serde_json::json!({
        "code": code,
        "err_code": err_code,
        "description": description,
    }))
    .expect("a JetStream error body")
}

/// A conditional write whose key has moved past `expected` (10071).
pub(crate) fn revision_conflict(expected: u64) -> NatsError {
    let answer = server_error(
        400,
        10071,
        &format!("wrong last sequence: {}", expected + 1),
    );
    classify_publish(
        &RefusalLog::default(),
        PublishError::with_source(PublishErrorKind::WrongLastSequence, answer),
    )
}

/// A write whose acknowledgement never came (async-nats waits 5 s): it may or may not
/// have been stored.
pub(crate) fn ack_timeout() -> NatsError {
    classify_publish(
        &RefusalLog::default(),
        PublishError::new(PublishErrorKind::TimedOut),
    )
}

/// A write nothing answered (no responders): the stream's leader is gone and the next one
/// is not elected yet.
pub(crate) fn no_responders() -> NatsError {
    classify_publish(
        &RefusalLog::default(),
        PublishError::new(PublishErrorKind::StreamNotFound),
    )
}

/// Opening the stream to read keys again while its cluster has no quorum (503, 10008).
pub(crate) fn no_quorum() -> NatsError {
    let answer = server_error(503, 10008, "JetStream system temporarily unavailable");
    RefusalLog::default().classify(GetStreamError::new(GetStreamErrorKind::JetStream(answer)))
}

/// A write to `$KV.<bucket>.<key>` the user may not publish: the server drops it and says
/// so only on the connection (`-ERR 'Permissions Violation ...'`), so the ack times out.
pub(crate) fn publish_refused(bucket: &str, key: &str) -> NatsError {
    let refusals = refusing(&super::key_subject(bucket, key));
    classify_publish(&refusals, PublishError::new(PublishErrorKind::TimedOut))
}

/// Creating a bucket's stream when the user may not call the stream create API: refused
/// the same way, so the request times out.
pub(crate) fn create_refused(bucket: &str) -> NatsError {
    let subject = format!("$JS.API.STREAM.CREATE.{}", super::stream_name(bucket));
    refusing(&subject).classify(CreateStreamError::new(CreateStreamErrorKind::TimedOut))
}

/// Creating a bucket's stream that another claimant created first with its own claim
/// (10058): the create is atomic, so the second one is refused.
pub(crate) fn stream_name_in_use() -> NatsError {
    let answer = server_error(
        400,
        10058,
        "stream name already in use with a different configuration",
    );
    RefusalLog::default().classify(CreateStreamError::new(CreateStreamErrorKind::JetStream(
        answer,
    )))
}

/// The refusals of a connection the server has just refused a publish to `subject`.
fn refusing(subject: &str) -> RefusalLog {
    let refusals = RefusalLog::default();
    let recorded = refusals.record_event(&Event::ServerError(ServerError::Other(format!(
        "Permissions Violation for Publish to \"{subject}\""
    ))));
    assert!(recorded, "the violation is a refusal");
    refusals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_faults_are_classified_as_a_connection_classifies_them() {
        assert_eq!(revision_conflict(4), NatsError::Conflict);
        for transient in [ack_timeout(), no_responders(), no_quorum()] {
            assert!(
                transient.is_transient() && !transient.is_conflict(),
                "{transient:?}"
            );
        }
        assert_eq!(ack_timeout().reason(), "Timeout");
        assert_eq!(no_responders().reason(), "NatsUnavailable");
        assert_eq!(no_quorum().reason(), "NatsUnavailable");
        let refused = publish_refused("b", "k");
        assert_eq!(refused.reason(), "Forbidden");
        assert!(!refused.is_transient());
        assert!(refused.to_string().contains("$KV.b.k"), "{refused}");
        let refused = create_refused("b");
        assert_eq!(refused.reason(), "Forbidden");
        assert!(refused.to_string().contains("KV_b"), "{refused}");
    }
}
