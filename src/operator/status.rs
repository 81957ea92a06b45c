//! Status writing: conditions in the metav1 style and one server-side apply of
//! `/status` per change, with one field manager. Nothing is written when nothing changed,
//! so status writes never trigger reconcile loops.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ControllerError;
use super::reasons::{self, Health};
use crate::api::{
    Condition, ConditionStatus, KeyValueBucket, KeyValueBucketStatus, KeyValueEntry,
    KeyValueEntrySet, KeyValueEntrySetStatus, KeyValueEntryStatus,
};

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "kvop";

/// The `Ready` condition: the declared state holds in NATS.
pub const READY: &str = "Ready";
/// The `Synced` condition: the last reconcile carried the spec out (false when it failed,
/// or when a conflict keeps the declared value out of NATS).
pub const SYNCED: &str = "Synced";
/// kstatus' `Reconciling` (abnormal-true: present only while true): not ready, and kvop
/// is still working on it.
pub const RECONCILING: &str = "Reconciling";
/// kstatus' `Stalled` (abnormal-true): not ready, and only a human can change that.
pub const STALLED: &str = "Stalled";
/// The reason of a paused object's conditions (`kvop.dev/paused`, see `pause`): here,
/// below `pause`, because how an object reads ([`health_label`]) depends on it.
pub const PAUSED: &str = "ReconcilePaused";

/// Now, as RFC 3339 in UTC.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A condition that keeps its `lastTransitionTime` unless its status changes.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    let status = if status {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let last_transition_time = previous
        .iter()
        .find(|condition| condition.type_ == type_ && condition.status == status)
        .map(|condition| condition.last_transition_time.clone())
        .unwrap_or_else(now);
    Condition {
        type_: type_.to_string(),
        status,
        last_transition_time,
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
    }
}

/// The `Ready` and `Synced` pair, and `Reconciling` or `Stalled` while not ready, as the
/// reason's class says ([`reasons::health_of`]). `Synced` is true when the reconcile ran
/// to a verdict (even `Ready=False` for a spec the server cannot apply), false when it
/// failed; it then repeats the reason and message. `Reconciling` and `Stalled` are
/// absent while false, as kstatus defines them: server-side apply removes the one kvop
/// no longer sends.
pub fn ready_and_synced(
    previous: &[Condition],
    generation: Option<i64>,
    ready: bool,
    reason: &str,
    message: &str,
    synced: bool,
) -> Vec<Condition> {
    let mut conditions = vec![
        condition(previous, READY, ready, reason, message, generation),
        condition(
            previous,
            SYNCED,
            synced,
            if synced { "ReconcileSucceeded" } else { reason },
            if synced { "" } else { message },
            generation,
        ),
    ];
    let abnormal = match (ready, reasons::health_of(reason)) {
        (true, _) | (false, Health::Ready | Health::Paused) => None,
        (false, Health::Progressing) => Some(RECONCILING),
        (false, Health::Stalled) => Some(STALLED),
    };
    if let Some(type_) = abnormal {
        conditions.push(condition(
            previous, type_, true, reason, message, generation,
        ));
    }
    conditions
}

/// How an object reads, as `kvop_objects` labels it: paused, ready for its generation,
/// stalled, or (not reconciled for its generation yet, or not ready) progressing.
pub fn health_label<K: Reported>(object: &K) -> &'static str {
    let Some(status) = object.current_status() else {
        return "progressing";
    };
    let conditions = K::conditions(status);
    let holds = |type_: &str| {
        conditions
            .iter()
            .find(|condition| condition.type_ == type_)
            .filter(|condition| condition.observed_generation == object.meta().generation)
    };
    let is_true = |type_: &str| holds(type_).is_some_and(|c| c.status == ConditionStatus::True);
    if holds(SYNCED).is_some_and(|condition| condition.reason == PAUSED) {
        "paused"
    } else if is_true(READY) {
        "ready"
    } else if is_true(STALLED) {
        "stalled"
    } else {
        "progressing"
    }
}

/// A kind whose status kvop writes: what the shared status helpers need to know of it.
pub trait Reported:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync
{
    /// The kind, as a metric label.
    const KIND: &'static str;
    type Status: Clone + PartialEq + Default + Serialize + Send + Sync;
    fn current_status(&self) -> Option<&Self::Status>;
    fn conditions(status: &Self::Status) -> &[Condition];
    /// Sets the conditions and the generation they describe.
    fn set_conditions(
        status: &mut Self::Status,
        generation: Option<i64>,
        conditions: Vec<Condition>,
    );
    /// Records the reconcile request this reconcile handled (`lastHandledReconcileAt`).
    fn set_handled(status: &mut Self::Status, request: Option<String>);
    /// The reconcile request handled last.
    fn handled(status: &Self::Status) -> Option<&str>;
    /// A time that is refreshed only with a real change and never itself makes one
    /// (`lastSyncTime`); `None` for kinds without one.
    fn sync_time(_status: &mut Self::Status) -> Option<&mut Option<String>> {
        None
    }
}

impl Reported for KeyValueBucket {
    const KIND: &'static str = "KeyValueBucket";
    type Status = KeyValueBucketStatus;
    fn current_status(&self) -> Option<&KeyValueBucketStatus> {
        self.status.as_ref()
    }
    fn conditions(status: &KeyValueBucketStatus) -> &[Condition] {
        &status.conditions
    }
    fn set_conditions(
        status: &mut KeyValueBucketStatus,
        generation: Option<i64>,
        conditions: Vec<Condition>,
    ) {
        status.observed_generation = generation;
        status.conditions = conditions;
    }
    fn sync_time(status: &mut KeyValueBucketStatus) -> Option<&mut Option<String>> {
        Some(&mut status.last_sync_time)
    }
    fn set_handled(status: &mut KeyValueBucketStatus, request: Option<String>) {
        status.last_handled_reconcile_at = request;
    }
    fn handled(status: &KeyValueBucketStatus) -> Option<&str> {
        status.last_handled_reconcile_at.as_deref()
    }
}

impl Reported for KeyValueEntry {
    const KIND: &'static str = "KeyValueEntry";
    type Status = KeyValueEntryStatus;
    fn current_status(&self) -> Option<&KeyValueEntryStatus> {
        self.status.as_ref()
    }
    fn conditions(status: &KeyValueEntryStatus) -> &[Condition] {
        &status.conditions
    }
    fn set_conditions(
        status: &mut KeyValueEntryStatus,
        generation: Option<i64>,
        conditions: Vec<Condition>,
    ) {
        status.observed_generation = generation;
        status.conditions = conditions;
    }
    fn set_handled(status: &mut KeyValueEntryStatus, request: Option<String>) {
        status.last_handled_reconcile_at = request;
    }
    fn handled(status: &KeyValueEntryStatus) -> Option<&str> {
        status.last_handled_reconcile_at.as_deref()
    }
}

impl Reported for KeyValueEntrySet {
    const KIND: &'static str = "KeyValueEntrySet";
    type Status = KeyValueEntrySetStatus;
    fn current_status(&self) -> Option<&KeyValueEntrySetStatus> {
        self.status.as_ref()
    }
    fn conditions(status: &KeyValueEntrySetStatus) -> &[Condition] {
        &status.conditions
    }
    fn set_conditions(
        status: &mut KeyValueEntrySetStatus,
        generation: Option<i64>,
        conditions: Vec<Condition>,
    ) {
        status.observed_generation = generation;
        status.conditions = conditions;
    }
    fn set_handled(status: &mut KeyValueEntrySetStatus, request: Option<String>) {
        status.last_handled_reconcile_at = request;
    }
    fn handled(status: &KeyValueEntrySetStatus) -> Option<&str> {
        status.last_handled_reconcile_at.as_deref()
    }
}

/// `status` with fresh `Ready` and `Synced` conditions (see [`ready_and_synced`]) for
/// the object's current generation, transition times kept from `previous`.
pub fn with_conditions<K: Reported>(
    object: &K,
    previous: &K::Status,
    mut status: K::Status,
    verdict: &Verdict,
) -> K::Status {
    let generation = object.meta().generation;
    let conditions = ready_and_synced(
        K::conditions(previous),
        generation,
        verdict.ready,
        verdict.reason,
        &verdict.message,
        verdict.synced,
    );
    K::set_conditions(&mut status, generation, conditions);
    // Handled, whatever came of it: the answer is in the conditions.
    K::set_handled(
        &mut status,
        crate::spec::reconcile_requested(object.meta().annotations.as_ref()),
    );
    status
}

/// What a reconcile concluded, as the `Ready` and `Synced` conditions say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
    /// The reconcile ran to a verdict (false when it failed and will retry).
    pub synced: bool,
}

impl Verdict {
    /// A reconcile that reached its verdict.
    pub fn reached(ready: bool, reason: &'static str, message: impl Into<String>) -> Verdict {
        Verdict {
            ready,
            reason,
            message: message.into(),
            synced: true,
        }
    }

    /// A reconcile that failed: not ready, not synced, the error's reason and text.
    pub fn failed(error: &ControllerError) -> Verdict {
        Verdict {
            ready: false,
            reason: error.reason(),
            message: error.to_string(),
            synced: false,
        }
    }
}

/// Server-side applies `status` when it differs from `previous` (ignoring the sync time,
/// which is refreshed only with a real change), or when the object has none yet.
pub async fn write_if_changed<K: Reported>(
    api: &Api<K>,
    object: &K,
    previous: &K::Status,
    mut status: K::Status,
) -> Result<(), kube::Error> {
    let mut previous_time = previous.clone();
    let previous_time = K::sync_time(&mut previous_time).and_then(|time| time.take());
    if let Some(time) = K::sync_time(&mut status) {
        *time = previous_time;
    }
    if &status == previous && object.current_status().is_some() {
        return Ok(());
    }
    if let Some(time) = K::sync_time(&mut status) {
        *time = Some(now());
    }
    apply_status(api, object, &status).await
}

/// Writes the failure into the previous status (`Ready=False`, `Synced=False`) and
/// returns the error, or the status write's error if that failed too.
pub async fn report_failure<K: Reported>(
    api: &Api<K>,
    object: &K,
    previous: &K::Status,
    error: ControllerError,
) -> ControllerError {
    let status = with_conditions(object, previous, previous.clone(), &Verdict::failed(&error));
    match write_if_changed(api, object, previous, status).await {
        Ok(()) => error,
        Err(write) => write.into(),
    }
}

/// A reconcile request not handled yet (`kvop.dev/reconcile-requested-at`) starts the
/// object's retries over from the shortest delay: the reconcile it triggered runs at
/// once anyway, and should it fail, the next attempt is not minutes away.
pub fn reset_backoff_on_request<K: Reported>(object: &K, backoff: &super::backoff::Backoff) {
    let requested = crate::spec::reconcile_requested(object.meta().annotations.as_ref());
    let handled = object.current_status().and_then(K::handled);
    if requested.is_some() && requested.as_deref() != handled {
        backoff.reset(&backoff_key(object));
    }
}

/// The key of an object in the per-object backoff: `Kind/namespace/name`.
pub fn backoff_key<K: Resource<DynamicType = ()> + ResourceExt>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Server-side applies `status` to the object's `/status` subresource.
pub async fn apply_status<K, S>(api: &Api<K>, object: &K, status: &S) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let first = condition(&[], READY, true, "Synced", "ok", Some(1));
        let mut earlier = first.clone();
        earlier.last_transition_time = "2020-01-01T00:00:00Z".into();
        let same = condition(
            &[earlier.clone()],
            READY,
            true,
            "Synced",
            "still ok",
            Some(2),
        );
        assert_eq!(same.last_transition_time, "2020-01-01T00:00:00Z");
        let flipped = condition(&[earlier], READY, false, "NatsUnavailable", "down", Some(2));
        assert_ne!(flipped.last_transition_time, "2020-01-01T00:00:00Z");
    }

    fn types(conditions: &[Condition]) -> Vec<(&str, ConditionStatus)> {
        conditions
            .iter()
            .map(|condition| (condition.type_.as_str(), condition.status))
            .collect()
    }

    #[test]
    fn not_ready_adds_reconciling_or_stalled_as_the_reason_reads_and_ready_adds_neither() {
        use ConditionStatus::{False, True};
        let ready = ready_and_synced(&[], Some(3), true, "Synced", "", true);
        assert_eq!(types(&ready), [(READY, True), (SYNCED, True)]);
        let waiting = ready_and_synced(&[], Some(3), false, "NatsUnavailable", "down", false);
        assert_eq!(
            types(&waiting),
            [(READY, False), (SYNCED, False), (RECONCILING, True)]
        );
        let stalled = ready_and_synced(&[], Some(3), false, "Conflict", "theirs", false);
        assert_eq!(
            types(&stalled),
            [(READY, False), (SYNCED, False), (STALLED, True)]
        );
        assert_eq!(stalled[2].reason, "Conflict");
        assert_eq!(stalled[2].message, "theirs");
        assert!(
            stalled
                .iter()
                .all(|condition| condition.observed_generation == Some(3)),
            "every condition names the generation it describes"
        );
    }
}
