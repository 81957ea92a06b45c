//! What a bucket reconcile reports: the `Ready` verdict and Event of each planned
//! action, and whether the server went backwards. The verdicts and Events are pure and
//! table-tested below, and so is the comparison that finds a rollback from the status and
//! the revision the live view had seen (`behind`).

use kube::runtime::reflector::ObjectRef as StoreRef;

use crate::api::{KeyValueBucket, KeyValueBucketStatus};
use crate::observed::ObservedStream;
use crate::operator::context::Context;
use crate::operator::status::Verdict;
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
        // Why a bucket cannot match is the plan's to word, so that the CLI says it alike.
        BucketAction::Blocked { .. } => {
            Verdict::reached(false, "ImmutableFieldChanged", explain(action))
        }
        BucketAction::Missing => Verdict::reached(false, "BucketMissing", explain(action)),
        BucketAction::Refused { refusal } => {
            Verdict::reached(false, refusal.reason(), explain(action))
        }
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
        BucketAction::Refused { refusal } => Some(event(true, refusal.reason(), explain(action))),
        BucketAction::Unchanged | BucketAction::Observe | BucketAction::Missing => None,
    }
}

fn explain(action: &BucketAction) -> String {
    action.explain().unwrap_or_default()
}

/// An Event to publish about the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EventSpec {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// What the bucket's live view had seen: taken *before* the stream is read, so that a
/// write landing between the read and the comparison (an entry applied meanwhile) is
/// not taken for a rollback. Seen in CI: a bucket created again, its first key written
/// while the bucket reconcile ran, reported "went back from revision 1 to 0".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Viewed {
    /// The creation time of the stream the view follows.
    pub created: String,
    pub highest_revision: u64,
}

impl Viewed {
    pub(super) fn of(context: &Context, bucket: &KeyValueBucket) -> Option<Viewed> {
        context
            .views
            .get(&StoreRef::from_obj(bucket))
            .map(|view| Viewed {
                created: view.created().to_string(),
                highest_revision: view.highest_revision(),
            })
    }
}

/// The revision kvop saw before, when the same stream (same creation time) is now at a
/// lower one: writes the server acknowledged are gone. Seen by the live view (`viewed`,
/// taken before `stream` was read), or kept in the status from before an operator
/// restart.
pub(super) fn went_backwards(
    context: &Context,
    bucket: &KeyValueBucket,
    previous: &KeyValueBucketStatus,
    viewed: Option<&Viewed>,
    stream: &ObservedStream,
) -> Option<(u64, u64)> {
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
    behind(previous, viewed, stream)
}

/// `went_backwards` without the view's own finding: the highest revision seen of this
/// stream, by the view before the read or in the status, against the stream now.
fn behind(
    previous: &KeyValueBucketStatus,
    viewed: Option<&Viewed>,
    stream: &ObservedStream,
) -> Option<(u64, u64)> {
    let now = stream.stats.last_revision;
    let viewed = viewed
        .filter(|viewed| viewed.created == stream.stats.created)
        .map_or(0, |viewed| viewed.highest_revision);
    let same_stream = previous.created.as_deref() == Some(stream.stats.created.as_str());
    let recorded = match previous.last_revision {
        Some(revision) if same_stream => u64::try_from(revision).unwrap_or(0),
        _ => 0,
    };
    let seen = viewed.max(recorded);
    (seen > now).then_some((seen, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::BucketConfig;
    use crate::observed::BucketStats;
    use crate::plan::{BucketRefusal, FieldChange};

    #[test]
    fn each_bucket_action_has_its_verdict_and_event_and_says_why_in_the_plans_words() {
        let change = |field, from: &str, to: &str, immutable| FieldChange {
            field,
            from: from.into(),
            to: to.into(),
            immutable,
        };
        let config = BucketConfig::defaults;
        let cases = [
            // (action, ready, reason, Event as (warning, reason))
            (
                BucketAction::Create { config: config() },
                true,
                "Created",
                Some((false, "Created")),
            ),
            (
                BucketAction::Update {
                    config: config(),
                    changes: vec![change("history", "1", "3", false)],
                },
                true,
                "Updated",
                Some((false, "Updated")),
            ),
            (BucketAction::Unchanged, true, "Ready", None),
            (BucketAction::Observe, true, "Observed", None),
            (
                BucketAction::Blocked {
                    changes: vec![change("storage", "file", "memory", true)],
                },
                false,
                "ImmutableFieldChanged",
                Some((true, "ImmutableFieldChanged")),
            ),
            (BucketAction::Missing, false, "BucketMissing", None),
            (
                BucketAction::Refused {
                    refusal: BucketRefusal::NotAdopted,
                },
                false,
                "AdoptionRequired",
                Some((true, "AdoptionRequired")),
            ),
            (
                BucketAction::Refused {
                    refusal: BucketRefusal::Claimed {
                        holder: "manager \"kvop\" for ns/other".into(),
                    },
                },
                false,
                "ClaimedElsewhere",
                Some((true, "ClaimedElsewhere")),
            ),
        ];
        for (action, ready, reason, event) in cases {
            let verdict = readiness(&action);
            assert_eq!(
                (verdict.ready, verdict.reason),
                (ready, reason),
                "{action:?}"
            );
            assert_eq!(
                bucket_event(&action).map(|event| (event.warning, event.reason)),
                event,
                "{action:?}"
            );
            if let Some(why) = action.explain() {
                assert_eq!(verdict.message, why, "the CLI's words: {action:?}");
            }
        }
    }

    /// Updates of different fields are different Events (kube aggregates a series by
    /// reason and note): the note names each field with its change, the verdict the
    /// fields.
    #[test]
    fn an_update_names_its_fields_in_the_verdict_and_their_changes_in_the_event() {
        let change = |field, from: &str, to: &str| FieldChange {
            field,
            from: from.into(),
            to: to.into(),
            immutable: false,
        };
        let action = BucketAction::Update {
            config: BucketConfig::defaults(),
            changes: vec![change("history", "1", "3"), change("ttl", "0s", "1h")],
        };
        assert_eq!(readiness(&action).message, "updated history, ttl");
        assert_eq!(
            bucket_event(&action).map(|event| event.note),
            Some("updated history (1 -> 3), ttl (0s -> 1h)".to_string())
        );
    }

    fn stream(created: &str, last_revision: u64) -> ObservedStream {
        ObservedStream {
            config: BucketConfig::defaults(),
            stats: BucketStats {
                last_revision,
                created: created.into(),
                ..Default::default()
            },
            created_by: None,
            claim: None,
        }
    }

    fn viewed(created: &str, highest_revision: u64) -> Viewed {
        Viewed {
            created: created.into(),
            highest_revision,
        }
    }

    fn status(created: &str, last_revision: i64) -> KeyValueBucketStatus {
        KeyValueBucketStatus {
            created: Some(created.into()),
            last_revision: Some(last_revision),
            ..Default::default()
        }
    }

    #[test]
    fn only_what_was_seen_of_the_same_stream_before_the_read_counts_as_lost() {
        let none = KeyValueBucketStatus::default();
        let cases = [
            // (status, view before the read, stream now, alarm)
            (
                "view behind",
                &none,
                Some(viewed("t1", 9)),
                stream("t1", 5),
                Some((9, 5)),
            ),
            (
                "view caught up",
                &none,
                Some(viewed("t1", 5)),
                stream("t1", 7),
                None,
            ),
            // Created again: its revisions start over, whatever the old view saw.
            (
                "other stream",
                &none,
                Some(viewed("t1", 9)),
                stream("t2", 0),
                None,
            ),
            // A view of the new stream that had seen nothing yet when the stream was
            // read: a key written since is not a rollback.
            (
                "new view, empty",
                &none,
                Some(viewed("t2", 0)),
                stream("t2", 0),
                None,
            ),
            ("no view", &none, None, stream("t1", 0), None),
            (
                "status behind",
                &status("t1", 4),
                None,
                stream("t1", 2),
                Some((4, 2)),
            ),
            (
                "status of old stream",
                &status("t1", 4),
                None,
                stream("t2", 0),
                None,
            ),
        ];
        for (case, previous, viewed, stream, alarm) in cases {
            assert_eq!(behind(previous, viewed.as_ref(), &stream), alarm, "{case}");
        }
    }
}
