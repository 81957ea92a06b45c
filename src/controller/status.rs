//! Status writing: conditions in the metav1 style and one server-side apply of
//! `/status` per change, with one field manager. Nothing is written when nothing changed,
//! so status writes never trigger reconcile loops.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{Condition, ConditionStatus};

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "kvop";

/// The `Ready` condition: the declared state holds in NATS.
pub const READY: &str = "Ready";
/// The `Synced` condition: the last reconcile finished without error.
pub const SYNCED: &str = "Synced";

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

/// The `Ready` and `Synced` pair. `Synced` is true when the reconcile ran to a verdict
/// (even `Ready=False` for a spec the server cannot apply), false when it failed; it
/// then repeats the reason and message.
pub fn ready_and_synced(
    previous: &[Condition],
    generation: Option<i64>,
    ready: bool,
    reason: &str,
    message: &str,
    synced: bool,
) -> Vec<Condition> {
    vec![
        condition(previous, READY, ready, reason, message, generation),
        condition(
            previous,
            SYNCED,
            synced,
            if synced { "ReconcileSucceeded" } else { reason },
            if synced { "" } else { message },
            generation,
        ),
    ]
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
}
