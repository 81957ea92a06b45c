//! From what applying a set's plan did, key by key, to everything the set reports: its
//! status (counts, the highest revision and the first conflicts only, so its size does
//! not grow with the set), the verdict its conditions say, Events and metric outcomes.
//! Pure, so each case is tested without a cluster (below). No value, nor a digest of
//! one, is ever reported: a set's values may come from Secrets.

use std::collections::HashSet;

use crate::api::entry_set::MAX_LISTED_CONFLICTS;
use crate::api::{KeyValueEntrySetStatus, SetConflict, SetOutcomes};
use crate::apply::{EntryOutcome, EntryResult};
use crate::nats::NatsError;
use crate::operator::error::ControllerError;
use crate::operator::status::Verdict;
use crate::plan::{ConflictCause, EntryAction, EntryVerb};

/// An Event to publish about the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EventSpec {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// Everything one reconcile of a set reports.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Report {
    /// The status before its conditions (see `verdict`).
    pub status: KeyValueEntrySetStatus,
    pub verdict: Verdict,
    pub events: Vec<EventSpec>,
    /// One metric outcome per write to NATS (`ok` or the error's reason).
    pub writes: Vec<&'static str>,
    /// A write failed: the reconcile fails with the first such error and is retried.
    pub failure: Option<NatsError>,
}

/// What the set's keys came to, counted.
#[derive(Default)]
struct Tally {
    outcomes: SetOutcomes,
    highest: u64,
    conflicts: Vec<SetConflict>,
    claimed: usize,
    left_by_policy: usize,
    failure: Option<NatsError>,
    not_attempted: Option<String>,
    writes: Vec<&'static str>,
}

impl Tally {
    fn declared(&mut self, key: &str, result: &EntryResult) {
        match result {
            EntryResult::Written { revision, .. } => {
                self.outcomes.written += 1;
                self.writes.push("ok");
                self.highest = self.highest.max(*revision);
            }
            EntryResult::Settled(EntryAction::Unchanged { revision }) => {
                self.outcomes.unchanged += 1;
                self.highest = self.highest.max(*revision);
            }
            EntryResult::Settled(EntryAction::Skip { revision, .. }) => {
                self.outcomes.skipped += 1;
                self.highest = self.highest.max(*revision);
            }
            EntryResult::Settled(EntryAction::Conflict {
                revision,
                writer,
                cause,
            }) => {
                self.outcomes.conflict += 1;
                match cause {
                    ConflictCause::Claimed => self.claimed += 1,
                    ConflictCause::Policy(_) => self.left_by_policy += 1,
                }
                if self.conflicts.len() < MAX_LISTED_CONFLICTS {
                    self.conflicts.push(SetConflict {
                        key: key.to_string(),
                        holder: writer.clone(),
                        revision: to_i64(*revision),
                    });
                }
            }
            EntryResult::Settled(_) => {}
            EntryResult::Failed { error } => self.failed(error),
            EntryResult::NotAttempted { reason } => {
                self.not_attempted.get_or_insert_with(|| reason.to_string());
            }
        }
    }

    fn removal(&mut self, result: &EntryResult) {
        match result {
            EntryResult::Written { .. } => {
                self.outcomes.deleted += 1;
                self.writes.push("ok");
            }
            // Someone else's value where the set's was: left in place.
            EntryResult::Settled(EntryAction::Retain { .. }) => self.outcomes.skipped += 1,
            EntryResult::Failed { error } => self.failed(error),
            EntryResult::Settled(_) | EntryResult::NotAttempted { .. } => {}
        }
    }

    fn failed(&mut self, error: &NatsError) {
        self.writes.push(error.reason());
        self.failure.get_or_insert_with(|| error.clone());
    }
}

/// What a set reports after its plan was carried out, key by key (`outcomes`);
/// `declared` holds the keys the set declares (the others were removals).
pub(super) fn report(
    previous: &KeyValueEntrySetStatus,
    generation: Option<i64>,
    bucket: &str,
    declared: &HashSet<&str>,
    outcomes: &[EntryOutcome],
) -> Report {
    let mut tally = Tally::default();
    for outcome in outcomes {
        if declared.contains(&*outcome.key) {
            tally.declared(&outcome.key, &outcome.result);
        } else {
            tally.removal(&outcome.result);
        }
    }
    let keys = declared.len();
    let status = KeyValueEntrySetStatus {
        observed_generation: generation,
        bucket: Some(bucket.to_string()),
        keys: Some(keys as i64),
        outcomes: Some(tally.outcomes.clone()),
        highest_revision: (tally.highest > 0)
            .then(|| to_i64(tally.highest))
            .or(previous.highest_revision),
        conflicts: tally.conflicts.clone(),
        ..Default::default()
    };
    let mut events = Vec::new();
    let counts = &tally.outcomes;
    let verdict = if let Some(error) = &tally.failure {
        Verdict::failed(&ControllerError::Nats(error.clone()))
    } else if let Some(reason) = &tally.not_attempted {
        Verdict::reached(false, "NotWritten", reason.clone())
    } else if tally.claimed > 0 {
        let first = first_conflict(&tally.conflicts);
        let note = format!(
            "{} of {keys} keys are held by other kvop objects and were not written ({first})",
            tally.claimed
        );
        events.push(EventSpec {
            warning: true,
            reason: "ClaimedElsewhere",
            note: note.clone(),
        });
        Verdict {
            ready: false,
            reason: "ClaimedElsewhere",
            message: format!(
                "{note}; remove one of the two declarations (a holder deleted with deletionPolicy Retain passes its keys on)"
            ),
            synced: false,
        }
    } else if tally.left_by_policy > 0 {
        let first = first_conflict(&tally.conflicts);
        let note = format!(
            "{} of {keys} keys were changed by another client and updatePolicy IfUnchanged leaves them ({first})",
            tally.left_by_policy
        );
        events.push(EventSpec {
            warning: true,
            reason: "Conflict",
            note: note.clone(),
        });
        Verdict {
            ready: false,
            reason: "Conflict",
            message: note,
            synced: false,
        }
    } else {
        let skipped = if counts.skipped > 0 {
            format!(", {} left as they are", counts.skipped)
        } else {
            String::new()
        };
        Verdict::reached(
            true,
            "Synced",
            format!("{keys} keys hold their declared values{skipped}"),
        )
    };
    // A first write says nothing new (the set was just created): no Event, one
    // apiserver write less.
    if previous.outcomes.is_some() && counts.written + counts.deleted > 0 {
        events.push(EventSpec {
            warning: false,
            reason: "Updated",
            note: format!(
                "wrote {} keys, deleted {} (highest revision {})",
                counts.written,
                counts.deleted,
                status.highest_revision.unwrap_or(0)
            ),
        });
    }
    Report {
        status,
        verdict,
        events,
        writes: tally.writes,
        failure: tally.failure,
    }
}

/// The first conflict listed, in words: the key and who holds it.
fn first_conflict(conflicts: &[SetConflict]) -> String {
    conflicts.first().map_or_else(String::new, |conflict| {
        format!("first: key {:?}, {}", conflict.key, conflict.holder)
    })
}

/// The verb a written removal carried out, for the deletion's metrics.
pub(super) fn removal_op(result: &EntryResult) -> Option<&'static str> {
    match result {
        EntryResult::Written {
            action: EntryVerb::Purge,
            ..
        } => Some("purge"),
        EntryResult::Written { .. } => Some("delete"),
        _ => None,
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
