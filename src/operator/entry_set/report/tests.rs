//! What a set reports for each mix of outcomes; each test states one rule.

use std::collections::HashSet;
use std::sync::Arc;

use super::*;

fn outcome(key: &str, result: EntryResult) -> EntryOutcome {
    EntryOutcome {
        key: Arc::from(key),
        owner: Arc::from("ns/KeyValueEntrySet/s"),
        result,
        conflicts: 0,
        retries: 0,
    }
}

fn written(revision: u64) -> EntryResult {
    EntryResult::Written {
        action: EntryVerb::Create,
        revision,
    }
}

fn claimed(revision: u64) -> EntryResult {
    EntryResult::Settled(EntryAction::Conflict {
        revision,
        writer: "manager \"kvop\" for ns/e".into(),
        cause: ConflictCause::Claimed,
    })
}

/// Counts, the highest revision of the declared keys and a removal counted as deleted.
#[test]
fn a_synced_set_counts_its_outcomes_and_reports_the_highest_revision_of_its_keys() {
    let declared: HashSet<&str> = ["a", "b"].into();
    let outcomes = [
        outcome("a", written(7)),
        outcome(
            "b",
            EntryResult::Settled(EntryAction::Unchanged { revision: 3 }),
        ),
        outcome("gone", written(9)),
    ];
    let report = report(&Default::default(), Some(2), "bkt", &declared, &outcomes);
    assert!(report.verdict.ready, "{:?}", report.verdict);
    assert_eq!(report.verdict.reason, "Synced");
    let counts = report.status.outcomes.expect("outcomes");
    assert_eq!(
        (counts.written, counts.unchanged, counts.deleted),
        (1, 1, 1)
    );
    assert_eq!(report.status.highest_revision, Some(7), "not the removal's");
    assert_eq!(report.status.keys, Some(2));
    assert!(report.events.is_empty(), "a first write is no news");
}

/// Conflicts are listed up to ten, however many keys are claimed elsewhere, and the set
/// is not ready.
#[test]
fn claimed_keys_make_the_set_not_ready_and_at_most_ten_are_listed() {
    let keys: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    let declared: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let outcomes: Vec<EntryOutcome> = keys.iter().map(|key| outcome(key, claimed(4))).collect();
    let report = report(&Default::default(), None, "bkt", &declared, &outcomes);
    assert!(!report.verdict.ready);
    assert_eq!(report.verdict.reason, "ClaimedElsewhere");
    assert!(
        report.verdict.message.contains("25 of 25 keys"),
        "{}",
        report.verdict.message
    );
    assert_eq!(report.status.conflicts.len(), MAX_LISTED_CONFLICTS);
    assert_eq!(
        report.status.conflicts[0].holder,
        "manager \"kvop\" for ns/e"
    );
    assert_eq!(report.status.outcomes.expect("outcomes").conflict, 25);
}

/// A failed write fails the reconcile (retried), with the error's reason.
#[test]
fn a_failed_write_fails_the_reconcile() {
    let declared: HashSet<&str> = ["a"].into();
    let outcomes = [outcome(
        "a",
        EntryResult::Failed {
            error: NatsError::Conflict,
        },
    )];
    let report = report(&Default::default(), None, "bkt", &declared, &outcomes);
    assert!(report.failure.is_some());
    assert!(!report.verdict.synced);
}

/// A later write is news: an Event that counts, never names, what changed.
#[test]
fn a_later_write_is_announced_with_counts_only() {
    let declared: HashSet<&str> = ["a"].into();
    let previous = KeyValueEntrySetStatus {
        outcomes: Some(SetOutcomes::default()),
        ..Default::default()
    };
    let report = report(
        &previous,
        None,
        "bkt",
        &declared,
        &[outcome("a", written(5))],
    );
    assert_eq!(report.events.len(), 1);
    assert_eq!(
        report.events[0].note,
        "wrote 1 keys, deleted 0 (highest revision 5)"
    );
}
