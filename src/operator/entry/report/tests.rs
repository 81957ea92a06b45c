//! The outcome-to-report mapping, case by case.

use super::*;

const NOW: &str = "2026-12-02T00:00:00Z";

fn subject() -> Subject<'static> {
    Subject {
        bucket: "b",
        key: "k",
        value_digest: Some("sha256:00"),
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
        cause: crate::plan::ConflictCause::Policy(crate::api::UpdatePolicy::IfUnchanged),
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
        action: crate::plan::EntryVerb::Create,
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
/// (reason, warning), counts, revision, failed).
#[test]
fn each_outcome_reports_its_conditions_events_and_metrics() {
    type Expected = (
        bool,
        &'static str,
        bool,
        Vec<(&'static str, bool)>,
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
            "a first write says nothing: the new object's status says it all",
            KeyValueEntryStatus::default(),
            create(None),
            written(1),
            (
                true,
                "Synced",
                true,
                vec![],
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
                vec![("Created", false)],
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
                vec![("DriftCorrected", false)],
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
                vec![("Updated", false)],
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
                vec![("DriftCorrected", false)],
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
                vec![("Conflict", true)],
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
                error: NatsError::timeout("no answer"),
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
        let events: Vec<(&str, bool)> = report
            .events
            .iter()
            .map(|event| (event.reason, event.warning))
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
