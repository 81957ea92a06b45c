//! kvop's finalizer `kvop.dev/cleanup`, only on objects whose deletion must do something
//! in NATS. kube's own `finalizer` helper puts it on every object; an entry with
//! `deletionPolicy: Retain` leaves its key as it is, so a finalizer there would only cost
//! an apiserver write per object (B5) and a `Terminating` object that hangs while the
//! operator is away. An object that needs it may already carry it from admission (the
//! chart's MutatingAdmissionPolicy), which saves that write too.
//!
//! The patches are kube's: a JSON patch whose `test` of the current finalizers makes a
//! concurrent change fail (422, retried at once) instead of being overwritten.

use std::future::Future;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::FINALIZER;
use super::error::ControllerError;

/// What a reconcile is asked to do.
pub enum Step<K> {
    /// Bring the object's declaration about in NATS.
    Apply(Arc<K>),
    /// The object is being deleted and carries the finalizer: its cleanup, which must
    /// succeed before the finalizer goes.
    Cleanup(Arc<K>),
}

/// Runs `reconcile` for `object`, adding kvop's finalizer first where `needed` and
/// taking it off where not (a `Delete` entry changed to `Retain`).
pub async fn finalized<K, Reconcile, Done>(
    api: &Api<K>,
    object: Arc<K>,
    needed: bool,
    reconcile: Reconcile,
) -> Result<Action, ControllerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    Reconcile: FnOnce(Step<K>) -> Done,
    Done: Future<Output = Result<Action, ControllerError>>,
{
    let index = object
        .finalizers()
        .iter()
        .position(|name| name == FINALIZER);
    let deleting = object.meta().deletion_timestamp.is_some();
    match (index, deleting) {
        (Some(index), true) => {
            // The finalizer stays until the cleanup succeeded.
            let action = reconcile(Step::Cleanup(object.clone())).await?;
            remove(api, &*object, index).await?;
            Ok(action)
        }
        // Never finalized (or already released): nothing of kvop's holds it.
        (None, true) => Ok(Action::await_change()),
        (None, false) if needed => {
            add(api, &*object).await?;
            // The finalizer is on, so nothing written now can outlive the object: apply
            // in this reconcile. kvop's own finalizer wakes nothing (triggers), so the
            // patch costs no second pass, which for a large set would rewrite status.
            reconcile(Step::Apply(object)).await
        }
        (Some(index), false) if !needed => {
            remove(api, &*object, index).await?;
            reconcile(Step::Apply(object)).await
        }
        (_, false) => reconcile(Step::Apply(object)).await,
    }
}

async fn add<K>(api: &Api<K>, object: &K) -> Result<(), ControllerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let current = object.finalizers();
    // The finalizers are tested as they were read: Kubernetes does not deduplicate
    // them, so a finalizer added meanwhile by someone else must fail this patch.
    let operations = if current.is_empty() {
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
        ])
    } else {
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": current },
            { "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER },
        ])
    };
    patch(api, object, "add", operations).await
}

async fn remove<K>(api: &Api<K>, object: &K, index: usize) -> Result<(), ControllerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    // By index, tested first, so another controller's finalizer is never removed.
    let path = format!("/metadata/finalizers/{index}");
    let operations = json!([
        { "op": "test", "path": path, "value": FINALIZER },
        { "op": "remove", "path": path },
    ]);
    patch(api, object, "remove", operations).await
}

async fn patch<K>(
    api: &Api<K>,
    object: &K,
    action: &'static str,
    operations: serde_json::Value,
) -> Result<(), ControllerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = object
        .meta()
        .name
        .as_deref()
        .ok_or_else(|| ControllerError::Unfinalizable("the object has no name".into()))?;
    let operations = serde_json::from_value(operations)
        .map_err(|error| ControllerError::Unfinalizable(error.to_string()))?;
    api.patch::<K>(name, &PatchParams::default(), &Patch::Json(operations))
        .await
        .map(drop)
        .map_err(|source| ControllerError::Finalizer { action, source })
}

/// Writes `DeletionBlocked` on an object whose cleanup NATS refuses for now (`what`
/// names what cannot be removed yet) and returns the error, or the status write's.
pub async fn deletion_blocked<K: super::status::Reported>(
    api: &Api<K>,
    object: &K,
    status: &K::Status,
    what: &str,
    error: crate::nats::NatsError,
) -> ControllerError {
    use super::status::{Verdict, with_conditions, write_if_changed};
    let verdict = Verdict {
        ready: false,
        reason: "DeletionBlocked",
        message: format!(
            "cannot remove {what} yet, the finalizer stays until it succeeds: {error}"
        ),
        synced: false,
    };
    let next = with_conditions(object, status, status.clone(), &verdict);
    match write_if_changed(api, object, status, next).await {
        Ok(()) => ControllerError::Nats(error),
        Err(write) => write.into(),
    }
}
