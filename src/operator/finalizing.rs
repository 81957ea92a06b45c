//! kvop's finalizer `kvop.dev/cleanup`, only on objects whose deletion must do something
//! in NATS. kube's own `finalizer` helper puts it on every object; an entry with
//! `deletionPolicy: Retain` leaves its key as it is, so a finalizer there would only cost
//! an apiserver write per object (B5) and a `Terminating` object that hangs while the
//! operator is away. An object that needs it may already carry it from admission (the
//! chart's MutatingAdmissionPolicy), which saves that write too.
//!
//! When a new object gets it is up to its kind ([`FirstApply`]): buckets and entries get
//! it before their first apply, sets right after theirs, in the same reconcile. A set
//! deleted between the two is cleaned up at once, as its finalizer would have had it;
//! what is left is an operator killed in those milliseconds and the set deleted before
//! it is back: its keys then stay, as `Retain` would leave them. The chart's admission
//! policy closes that window too, by creating objects with the finalizer.
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
    /// The object was deleted right after its first apply, before the finalizer went
    /// on: its cleanup, once only, with where that apply wrote found again from its spec
    /// (the object as read has no status yet).
    Abandoned(Arc<K>),
}

/// When a new object that needs kvop's finalizer gets it, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstApply {
    /// The finalizer first; the reconcile ends there and the patch's watch event starts
    /// the apply (triggers). For small objects, whose writes are cheap: 10,000 entries
    /// were all `Ready` in 2.14x the apiserver's create time this way, against 2.57x
    /// applied first in one reconcile (B5, same plane, same hour).
    AfterFinalizer,
    /// The apply first, the finalizer right after, in the same reconcile, and kvop's
    /// finalizer wakes nothing (triggers). For sets: every write to a 1,000-key set costs
    /// the apiserver 0.1-0.4 s, and `Ready` held behind the finalizer's made S1 miss
    /// its target (3.4-4.0x B1, then 1.9-2.0x).
    BeforeFinalizer,
}

/// Runs `reconcile` for `object`, adding kvop's finalizer where `needed` (before or
/// after the first apply, as `first_apply` says) and taking it off where not (a
/// `Delete` entry changed to `Retain`).
pub async fn finalized<K, Reconcile, Done>(
    api: &Api<K>,
    object: Arc<K>,
    needed: bool,
    first_apply: FirstApply,
    reconcile: Reconcile,
) -> Result<Action, ControllerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    Reconcile: Fn(Step<K>) -> Done,
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
        (None, false) if needed && first_apply == FirstApply::AfterFinalizer => {
            add(api, &*object).await?;
            // The patch changes the finalizers, which wakes the object again (triggers).
            Ok(Action::await_change())
        }
        (None, false) if needed => {
            // Whether the apply succeeded or not, it may have written: the finalizer
            // goes on either way. Its patch wakes nothing (triggers): no second pass,
            // which for a set would rewrite the whole object's status.
            let applied = reconcile(Step::Apply(object.clone())).await;
            match add(api, &*object).await {
                Ok(()) => applied,
                // Deleted before it could be finalized: what the apply wrote goes now,
                // as no later reconcile will see the object.
                Err(error) if may_be_departed(&error) && departed(api, &*object).await => {
                    reconcile(Step::Abandoned(object)).await?;
                    Ok(Action::await_change())
                }
                Err(error) => Err(error),
            }
        }
        (Some(index), false) if !needed => {
            remove(api, &*object, index).await?;
            reconcile(Step::Apply(object)).await
        }
        (_, false) => reconcile(Step::Apply(object)).await,
    }
}

/// Whether a failed finalizer patch may mean the object went: gone (404), or being
/// deleted, which refuses new finalizers (422, as does a `test` that met a change).
fn may_be_departed(error: &ControllerError) -> bool {
    matches!(
        error,
        ControllerError::Finalizer {
            source: kube::Error::Api(response),
            ..
        } if response.code == 404 || response.code == 422
    )
}

/// Whether `object` is gone or being deleted without kvop's finalizer, so that no later
/// reconcile will clean up after it. `false` when that cannot be read.
async fn departed<K>(api: &Api<K>, object: &K) -> bool
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(name) = object.meta().name.as_deref() else {
        return false;
    };
    match api.get_opt(name).await {
        Ok(None) => true,
        Ok(Some(latest)) => {
            latest.meta().uid != object.meta().uid
                || (latest.meta().deletion_timestamp.is_some()
                    && !latest.finalizers().iter().any(|name| name == FINALIZER))
        }
        Err(_) => false,
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
