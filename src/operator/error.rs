//! Every way a reconcile can fail, classified once: the condition reason, the Event
//! reason, the metric label and the retry behaviour all come from here.

use std::time::Duration;

use super::tenancy::Refusal;
use crate::manifest::LoadErrors;
use crate::nats::NatsError;
use crate::pass::PassError;
use crate::spec::FieldProblem;

/// A failed reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The spec breaks a rule; nothing changes until the spec does.
    #[error("invalid spec: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidSpec(Vec<FieldProblem>),
    /// The bucket of an entry is missing or not ready yet.
    #[error("{0}")]
    BucketNotReady(String),
    /// A Secret or ConfigMap named by `valueFrom` or `spec.connection` is missing.
    #[error("{0}")]
    ReferenceNotFound(String),
    #[error("{0}")]
    Nats(#[from] NatsError),
    #[error("Kubernetes API: {}", kube_text(.0))]
    Kube(#[from] kube::Error),
    /// Adding or removing the `kvop.dev/cleanup` finalizer failed.
    #[error("could not {action} the finalizer: {}", kube_text(.source))]
    Finalizer {
        action: &'static str,
        #[source]
        source: kube::Error,
    },
    /// The administrator's tenancy settings refuse the object (a server, a namespace or
    /// a bucket name); nothing changes until the object or the settings do.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The object cannot carry a finalizer (it has no name).
    #[error("finalizer: {0}")]
    Unfinalizable(String),
}

/// A pass that planned nothing: NATS could not be read, or the object asks for what the
/// server cannot hold (its problems, field by field, as for any invalid spec).
impl From<PassError> for ControllerError {
    fn from(error: PassError) -> ControllerError {
        match error {
            PassError::Nats(error) => ControllerError::Nats(error),
            PassError::Invalid(LoadErrors(errors)) => ControllerError::InvalidSpec(
                errors
                    .into_iter()
                    .map(|error| {
                        FieldProblem::new(error.field.as_deref().unwrap_or("spec"), error.message)
                    })
                    .collect(),
            ),
            // A set that declares nothing yet would remove keys: fixed by its spec, its
            // ConfigMap or Secret, or its allow-empty-prune annotation.
            PassError::EmptyPrune(refused) => {
                ControllerError::InvalidSpec(vec![FieldProblem::new("spec", refused.to_string())])
            }
        }
    }
}

/// A `valueFrom` or `spec.connection` reference that finds nothing: the object itself,
/// or the key in it, said apart (a deleted Secret is not "a Secret without the key").
pub fn reference_not_found(
    kind: &str,
    namespace: &str,
    name: &str,
    key: &str,
    object_exists: bool,
) -> ControllerError {
    ControllerError::ReferenceNotFound(if object_exists {
        format!("{kind} {namespace}/{name} has no key {key:?}")
    } else {
        format!("{kind} {namespace}/{name} does not exist")
    })
}

/// A Kubernetes API error on one line, `message (reason, code)`: kube's own text
/// repeats the whole response struct.
pub fn kube_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} ({}, {})", status.message, status.reason, status.code)
        }
        other => other.to_string(),
    }
}

/// Whether the apiserver refused a write because the object changed since it was read:
/// a 409 Conflict, or the 422 of a JSON patch whose `test` of the old finalizers
/// failed. The next attempt reads the object again and succeeds.
fn stale(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 || status.code == 422)
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
            ControllerError::Refused(refusal) => refusal.reason(),
            ControllerError::Finalizer { .. } | ControllerError::Unfinalizable(_) => {
                "FinalizerError"
            }
        }
    }

    /// How to retry: wait for a change of the object, wait a fixed delay, back off per
    /// object (transient errors), or at once (the object changed meanwhile); see
    /// [`Retry`].
    pub fn retry(&self) -> Retry {
        match self {
            ControllerError::InvalidSpec(_) | ControllerError::Refused(_) => Retry::OnChange,
            ControllerError::BucketNotReady(_) | ControllerError::ReferenceNotFound(_) => {
                Retry::After(Duration::from_secs(15))
            }
            ControllerError::Nats(
                NatsError::Settings { .. }
                | NatsError::Unauthorized { .. }
                | NatsError::Forbidden { .. },
            ) => Retry::After(Duration::from_secs(300)),
            ControllerError::Nats(NatsError::Rejected { .. } | NatsError::Other { .. }) => {
                Retry::Backoff
            }
            ControllerError::Nats(
                NatsError::Unavailable { .. }
                | NatsError::NotConnected { .. }
                | NatsError::Timeout { .. }
                | NatsError::Conflict,
            ) => Retry::Backoff,
            ControllerError::Finalizer { source, .. } if stale(source) => Retry::Stale,
            ControllerError::Kube(source) if stale(source) => Retry::Stale,
            ControllerError::Kube(_)
            | ControllerError::Finalizer { .. }
            | ControllerError::Unfinalizable(_) => Retry::Backoff,
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
    /// At once: the object changed while it was reconciled, and the next attempt reads
    /// it again. Handled, so not worth a warning.
    Stale,
}

/// How soon a reconcile that met a changed object runs again.
pub const STALE_RETRY: Duration = Duration::from_millis(200);
