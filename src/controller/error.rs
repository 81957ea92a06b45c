//! Every way a reconcile can fail, classified once: the condition reason, the Event
//! reason, the metric label and the retry behaviour all come from here.

use std::time::Duration;

use crate::nats::NatsError;

/// A failed reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The spec breaks a rule; nothing changes until the spec does.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// The bucket of an entry is missing or not ready yet.
    #[error("{0}")]
    BucketNotReady(String),
    /// A Secret or ConfigMap named by `valueFrom` or `spec.connection` is missing.
    #[error("{0}")]
    ReferenceNotFound(String),
    #[error("{0}")]
    Nats(#[from] NatsError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl ControllerError {
    /// Stable CamelCase reason (bounded cardinality: safe as a metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            ControllerError::InvalidSpec(_) => "InvalidSpec",
            ControllerError::BucketNotReady(_) => "BucketNotReady",
            ControllerError::ReferenceNotFound(_) => "ReferenceNotFound",
            ControllerError::Nats(error) => error.reason(),
            ControllerError::Kube(_) => "KubernetesApiError",
            ControllerError::Finalizer(_) => "FinalizerError",
        }
    }

    /// How to retry: `None` waits for a change of the object; otherwise the delay
    /// before the next attempt (the per-object backoff applies to transient errors).
    pub fn retry(&self) -> Retry {
        match self {
            ControllerError::InvalidSpec(_) => Retry::OnChange,
            ControllerError::BucketNotReady(_) | ControllerError::ReferenceNotFound(_) => {
                Retry::After(Duration::from_secs(15))
            }
            ControllerError::Nats(
                NatsError::Settings(_) | NatsError::Unauthorized(_) | NatsError::Forbidden(_),
            ) => Retry::After(Duration::from_secs(300)),
            ControllerError::Nats(NatsError::Rejected { .. } | NatsError::Other(_)) => {
                Retry::Backoff
            }
            ControllerError::Nats(
                NatsError::Unavailable(_) | NatsError::Timeout(_) | NatsError::Conflict,
            ) => Retry::Backoff,
            ControllerError::Kube(_) | ControllerError::Finalizer(_) => Retry::Backoff,
        }
    }
}

impl From<kube::runtime::finalizer::Error<ControllerError>> for ControllerError {
    /// The reconcile's own error when it failed; otherwise the finalizer bookkeeping's.
    fn from(error: kube::runtime::finalizer::Error<ControllerError>) -> Self {
        use kube::runtime::finalizer::Error;
        match error {
            Error::ApplyFailed(error) | Error::CleanupFailed(error) => error,
            other => ControllerError::Finalizer(other.to_string()),
        }
    }
}

/// When to try a failed object again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Only when the object changes.
    OnChange,
    /// After a fixed delay (waiting on something else, or a slow retry that avoids a hot
    /// loop on errors that need a human).
    After(Duration),
    /// Per-object exponential backoff with jitter.
    Backoff,
}
