//! What a bucket reconcile reports: the `Ready` verdict and Event of each planned
//! action (pure, table-tested below), and whether the server went backwards.

use kube::runtime::reflector::ObjectRef as StoreRef;

use crate::api::{KeyValueBucket, KeyValueBucketStatus};
use crate::controller::context::Context;
use crate::controller::status::Verdict;
use crate::observed::ObservedStream;
use crate::plan::BucketAction;

/// `Ready` for each planned bucket action.
pub(super) fn readiness(action: &BucketAction) -> Verdict {
    match action {
        BucketAction::Create { .. } => Verdict::reached(true, "Created", "the bucket was created"),
        BucketAction::Update { changes, .. } => Verdict::reached(
            true,
            "Updated",
            format!(
                "updated {}",
                changes
                    .iter()
                    .map(|change| change.field)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        BucketAction::Unchanged => Verdict::reached(true, "Ready", "the bucket matches its spec"),
        BucketAction::Observe => Verdict::reached(
            true,
            "Observed",
            "the bucket exists; managementPolicy Observe never changes it",
        ),
        BucketAction::Blocked { changes } => Verdict::reached(
            false,
            "ImmutableFieldChanged",
            format!(
                "the server cannot change {} on an existing bucket; delete and re-create the bucket or revert the spec",
                changes
                    .iter()
                    .map(|change| format!("{} ({} -> {})", change.field, change.from, change.to))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        BucketAction::Missing => Verdict::reached(
            false,
            "BucketMissing",
            "the bucket does not exist and managementPolicy is Observe",
        ),
    }
}

/// The Event a planned bucket action is announced with, if any. Each note names the
/// change (the fields updated), so Events with one reason stay apart.
pub(super) fn bucket_event(action: &BucketAction) -> Option<EventSpec> {
    let event = |warning, reason, note: String| EventSpec {
        warning,
        reason,
        note,
    };
    match action {
        BucketAction::Create { .. } => Some(event(false, "Created", "created the bucket".into())),
        BucketAction::Update { changes, .. } => Some(event(
            false,
            "Updated",
            format!(
                "updated {}",
                changes
                    .iter()
                    .map(|change| format!("{} ({} -> {})", change.field, change.from, change.to))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        BucketAction::Blocked { .. } => Some(event(
            true,
            "ImmutableFieldChanged",
            readiness(action).message,
        )),
        BucketAction::Unchanged | BucketAction::Observe | BucketAction::Missing => None,
    }
}

/// An Event to publish about the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EventSpec {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// The revision kvop saw before, when the same stream (same creation time) is now at a
/// lower one: writes the server acknowledged are gone. Seen by the live view, or kept in
/// the status from before an operator restart.
pub(super) fn went_backwards(
    context: &Context,
    bucket: &KeyValueBucket,
    previous: &KeyValueBucketStatus,
    stream: &ObservedStream,
) -> Option<(u64, u64)> {
    let now = stream.stats.last_revision;
    // Only a view of this very stream says anything: a stream deleted and created again
    // starts its revisions over, which is no rollback.
    let view = context
        .views
        .get(&StoreRef::from_obj(bucket))
        .filter(|view| view.follows(&stream.stats.created));
    // Seen by the view when it reopened: the entries may be re-applied by now, so the
    // stream need not be behind any more.
    if let Some(seen) = view.as_ref().and_then(|view| view.take_went_backwards()) {
        return Some(seen);
    }
    let viewed = view.map(|view| view.highest_revision()).unwrap_or(0);
    let same_stream = previous.created.as_deref() == Some(stream.stats.created.as_str());
    let recorded = match previous.last_revision {
        Some(revision) if same_stream => u64::try_from(revision).unwrap_or(0),
        _ => 0,
    };
    let seen = viewed.max(recorded);
    (seen > now).then_some((seen, now))
}
