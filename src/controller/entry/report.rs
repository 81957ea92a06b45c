//! From what an entry reconcile decided and what applying it did, to everything the entry
//! reports: its status, the Events and the metric increments. Pure, so each case is
//! table-tested without a cluster (below).

use crate::api::KeyValueEntryStatus;
use crate::apply::EntryResult;
use crate::controller::error::ControllerError;
use crate::controller::status::Verdict;
use crate::nats::NatsError;
use crate::plan::EntryAction;

/// The key an entry reconciled.
#[derive(Debug, Clone, Copy)]
pub(super) struct Subject<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// `sha256:<hex>` of the declared value, never the value.
    pub value_digest: &'a str,
}

/// An Event to publish about the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EventSpec {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
    /// Happens once in the entry's life: nothing to aggregate.
    pub once: bool,
}

/// A metric increment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Count {
    /// A write to NATS and its outcome (`ok` or the error's reason).
    Write(&'static str),
    /// A value changed, deleted or purged by someone else, put back.
    DriftCorrected,
}

/// Everything one reconcile of an entry reports.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Report {
    /// The status before its conditions (see `verdict`).
    pub status: KeyValueEntryStatus,
    pub verdict: Verdict,
    pub events: Vec<EventSpec>,
    pub counts: Vec<Count>,
    /// The write failed: the reconcile fails with this and is retried.
    pub failure: Option<NatsError>,
}

/// What an entry reports after `action` was carried out with `result`; `now` is the
/// time a new revision is recorded at.
pub(super) fn report(
    previous: &KeyValueEntryStatus,
    generation: Option<i64>,
    subject: Subject<'_>,
    action: &EntryAction,
    result: &EntryResult,
    now: &str,
) -> Report {
    let mut status = KeyValueEntryStatus {
        observed_generation: generation,
        bucket: Some(subject.bucket.to_string()),
        key: Some(subject.key.to_string()),
        value_digest: Some(subject.value_digest.to_string()),
        revision: previous.revision,
        created: previous.created.clone(),
        ..Default::default()
    };
    let mut report = Report {
        status: KeyValueEntryStatus::default(),
        verdict: Verdict::reached(true, "Synced", String::new()),
        events: Vec::new(),
        counts: Vec::new(),
        failure: None,
    };
    let holds = |revision: u64| format!("revision {revision} holds the declared value");
    match result {
        EntryResult::Written { revision, .. } => {
            report.counts.push(Count::Write("ok"));
            report
                .events
                .push(written_event(action, subject.key, *revision, previous));
            if action.drift().is_some() {
                report.counts.push(Count::DriftCorrected);
            }
            status.revision = Some(to_i64(*revision));
            status.created = Some(now.to_string());
            report.verdict = Verdict::reached(true, "Synced", holds(*revision));
        }
        EntryResult::Settled(settled) => {
            let revision = settled_revision(settled);
            if let Some(revision) = revision {
                status.revision = Some(to_i64(revision));
            }
            let why = settled.explain().unwrap_or_default();
            report.verdict = match settled {
                EntryAction::Skip { .. } => {
                    Verdict::reached(true, "CreateOnlyKeyExists", format!("{why}, left as it is"))
                }
                EntryAction::Conflict { revision, .. } => {
                    report.events.push(EventSpec {
                        warning: true,
                        reason: "Conflict",
                        note: format!("{why}; the key is left as it is"),
                        once: false,
                    });
                    // Not synced: the declared value is not in NATS, and will not be until
                    // the foreign value is taken back.
                    Verdict {
                        ready: false,
                        reason: "Conflict",
                        message: format!(
                            "{why}, not by this manager; to overwrite it once, annotate the entry {}={revision}",
                            crate::spec::TAKE_OVER_ANNOTATION
                        ),
                        synced: false,
                    }
                }
                _ => {
                    status.created.get_or_insert_with(|| now.to_string());
                    let revision = revision.unwrap_or(0);
                    Verdict::reached(true, "Synced", holds(revision))
                }
            };
        }
        EntryResult::Failed { error } => {
            report.counts.push(Count::Write(error.reason()));
            report.verdict = Verdict::failed(&ControllerError::Nats(error.clone()));
            report.failure = Some(error.clone());
            // A failed write changes nothing else: the rest of the status stands.
            status = previous.clone();
            status.observed_generation = generation;
        }
        EntryResult::NotAttempted { reason } => {
            report.verdict = Verdict::reached(false, "NotWritten", reason.clone());
        }
    }
    report.status = status;
    report
}

/// The revision a settled key is at.
fn settled_revision(action: &EntryAction) -> Option<u64> {
    match action {
        EntryAction::Unchanged { revision }
        | EntryAction::Skip { revision, .. }
        | EntryAction::Conflict { revision, .. }
        | EntryAction::Retain { revision, .. } => Some(*revision),
        EntryAction::Create { .. }
        | EntryAction::Update { .. }
        | EntryAction::Remove { .. }
        | EntryAction::Wait => None,
    }
}

/// The Event for a write: drift corrected, created (once, or again after the key or its
/// bucket went away), or updated. Each note names the change, so Events with the same
/// reason stay apart.
fn written_event(
    action: &EntryAction,
    key: &str,
    revision: u64,
    previous: &KeyValueEntryStatus,
) -> EventSpec {
    let event = |reason, note, once| EventSpec {
        warning: false,
        reason,
        note,
        once,
    };
    if let Some(writer) = action.drift() {
        let what = match action {
            EntryAction::Create { .. } => "deleted or purged",
            _ => "changed",
        };
        return event(
            "DriftCorrected",
            format!(
                "key {key:?} was {what} by {writer}; wrote the declared value at revision {revision}"
            ),
            false,
        );
    }
    let note = format!("wrote key {key:?} at revision {revision}");
    match action {
        EntryAction::Create { .. } if previous.revision.is_none() => event("Created", note, true),
        EntryAction::Create { .. } => event("Created", note, false),
        _ => event("Updated", note, false),
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-12-02T00:00:00Z";

    fn subject() -> Subject<'static> {
        Subject {
            bucket: "b",
            key: "k",
            value_digest: "sha256:00",
        }
    }

    fn create(drift: Option<&str>) -> EntryAction {
        EntryAction::Create {
            expected_revision: 0,
            value: "v".into(),
            drift: drift.map(str::to_string),
        }
    }

    fn update(drift: Option<&str>) -> EntryAction {
        EntryAction::Update {
            expected_revision: 4,
            value: "v".into(),
            drift: drift.map(str::to_string),
        }
    }

    fn conflict(revision: u64) -> EntryAction {
        EntryAction::Conflict {
            revision,
            writer: "another client".into(),
            policy: crate::api::UpdatePolicy::IfUnchanged,
        }
    }

    fn skip(revision: u64) -> EntryAction {
        EntryAction::Skip {
            revision,
            policy: crate::api::UpdatePolicy::CreateOnly,
        }
    }

    fn written(revision: u64) -> EntryResult {
        EntryResult::Written {
            action: "create",
            revision,
        }
    }

    fn applied() -> KeyValueEntryStatus {
        KeyValueEntryStatus {
            revision: Some(3),
            created: Some("2026-01-01T00:00:00Z".into()),
            ..Default::default()
        }
    }

    /// (what, previous status, action, result) → (ready, reason, synced, events as
    /// (reason, warning, once), counts, revision, failed).
    #[test]
    fn each_outcome_reports_its_conditions_events_and_metrics() {
        type Expected = (
            bool,
            &'static str,
            bool,
            Vec<(&'static str, bool, bool)>,
            Vec<Count>,
            Option<i64>,
            bool,
        );
        let cases: Vec<(
            &str,
            KeyValueEntryStatus,
            EntryAction,
            EntryResult,
            Expected,
        )> = vec![
            (
                "a first write is Created, once",
                KeyValueEntryStatus::default(),
                create(None),
                written(1),
                (
                    true,
                    "Synced",
                    true,
                    vec![("Created", false, true)],
                    vec![Count::Write("ok")],
                    Some(1),
                    false,
                ),
            ),
            (
                "a key written again after it went away is Created again",
                applied(),
                create(None),
                written(9),
                (
                    true,
                    "Synced",
                    true,
                    vec![("Created", false, false)],
                    vec![Count::Write("ok")],
                    Some(9),
                    false,
                ),
            ),
            (
                "a key someone else deleted, restored, is drift",
                applied(),
                create(Some("another client")),
                written(9),
                (
                    true,
                    "Synced",
                    true,
                    vec![("DriftCorrected", false, false)],
                    vec![Count::Write("ok"), Count::DriftCorrected],
                    Some(9),
                    false,
                ),
            ),
            (
                "a spec change is Updated",
                applied(),
                update(None),
                written(5),
                (
                    true,
                    "Synced",
                    true,
                    vec![("Updated", false, false)],
                    vec![Count::Write("ok")],
                    Some(5),
                    false,
                ),
            ),
            (
                "a foreign value put back is drift",
                applied(),
                update(Some("another client")),
                written(5),
                (
                    true,
                    "Synced",
                    true,
                    vec![("DriftCorrected", false, false)],
                    vec![Count::Write("ok"), Count::DriftCorrected],
                    Some(5),
                    false,
                ),
            ),
            (
                "nothing to write",
                applied(),
                EntryAction::Unchanged { revision: 3 },
                EntryResult::Settled(EntryAction::Unchanged { revision: 3 }),
                (true, "Synced", true, vec![], vec![], Some(3), false),
            ),
            (
                "CreateOnly leaves an existing value",
                applied(),
                skip(7),
                EntryResult::Settled(skip(7)),
                (
                    true,
                    "CreateOnlyKeyExists",
                    true,
                    vec![],
                    vec![],
                    Some(7),
                    false,
                ),
            ),
            (
                "IfUnchanged after a foreign write is neither ready nor synced",
                applied(),
                conflict(13),
                EntryResult::Settled(conflict(13)),
                (
                    false,
                    "Conflict",
                    false,
                    vec![("Conflict", true, false)],
                    vec![],
                    Some(13),
                    false,
                ),
            ),
            (
                "a failed write fails the reconcile and keeps the status",
                applied(),
                update(None),
                EntryResult::Failed {
                    error: NatsError::Timeout("no answer".into()),
                },
                (
                    false,
                    "Timeout",
                    false,
                    vec![],
                    vec![Count::Write("Timeout")],
                    Some(3),
                    true,
                ),
            ),
            (
                "a write not attempted says why",
                applied(),
                EntryAction::Wait,
                EntryResult::NotAttempted {
                    reason: "the bucket does not exist".into(),
                },
                (false, "NotWritten", true, vec![], vec![], Some(3), false),
            ),
        ];
        for (what, previous, action, result, expected) in cases {
            let report = report(&previous, Some(2), subject(), &action, &result, NOW);
            let events: Vec<(&str, bool, bool)> = report
                .events
                .iter()
                .map(|event| (event.reason, event.warning, event.once))
                .collect();
            let actual: Expected = (
                report.verdict.ready,
                report.verdict.reason,
                report.verdict.synced,
                events,
                report.counts.clone(),
                report.status.revision,
                report.failure.is_some(),
            );
            assert_eq!(actual, expected, "{what}");
            assert_eq!(report.status.observed_generation, Some(2), "{what}");
        }
    }

    #[test]
    fn event_notes_name_the_change_so_events_with_one_reason_stay_apart() {
        let first = report(&applied(), None, subject(), &update(None), &written(5), NOW);
        let second = report(&applied(), None, subject(), &update(None), &written(6), NOW);
        assert_ne!(first.events[0].note, second.events[0].note);
        let reported = |revision| {
            report(
                &applied(),
                None,
                subject(),
                &conflict(revision),
                &EntryResult::Settled(conflict(revision)),
                NOW,
            )
        };
        let (eleven, thirteen) = (reported(11), reported(13));
        assert!(eleven.events[0].note.contains("revision 11"));
        assert!(thirteen.events[0].note.contains("revision 13"));
        assert!(thirteen.verdict.message.contains("revision 13"));
        assert!(
            thirteen.verdict.message.contains("kvop.dev/take-over=13"),
            "the way out is in the message: {}",
            thirteen.verdict.message
        );
    }

    #[test]
    fn a_recorded_creation_time_is_kept_until_a_new_revision() {
        let unchanged = report(
            &applied(),
            None,
            subject(),
            &EntryAction::Unchanged { revision: 3 },
            &EntryResult::Settled(EntryAction::Unchanged { revision: 3 }),
            NOW,
        );
        assert_eq!(
            unchanged.status.created.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        let rewritten = report(&applied(), None, subject(), &update(None), &written(4), NOW);
        assert_eq!(rewritten.status.created.as_deref(), Some(NOW));
    }
}
