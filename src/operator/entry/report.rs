//! From what an entry reconcile decided and what applying it did, to everything the entry
//! reports: its status, the Events and the metric increments. Pure, so each case is
//! table-tested without a cluster (below).

use crate::api::KeyValueEntryStatus;
use crate::apply::EntryResult;
use crate::nats::NatsError;
use crate::operator::error::ControllerError;
use crate::operator::status::Verdict;
use crate::plan::{ConflictCause, EntryAction};

/// The key an entry reconciled.
#[derive(Debug, Clone, Copy)]
pub(super) struct Subject<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// `sha256:<hex>` of the declared value, never the value; none for a value from a
    /// Secret.
    pub value_digest: Option<&'a str>,
}

/// An Event to publish about the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EventSpec {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
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
        value_digest: subject.value_digest.map(str::to_string),
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
                .extend(written_event(action, subject.key, *revision, previous));
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
                EntryAction::Conflict {
                    cause: ConflictCause::Claimed,
                    ..
                } => {
                    report.events.push(EventSpec {
                        warning: true,
                        reason: "ClaimedElsewhere",
                        note: format!("{why}; nothing was written"),
                    });
                    Verdict {
                        ready: false,
                        reason: "ClaimedElsewhere",
                        message: format!(
                            "{why}; remove one of the two declarations (a holder deleted with deletionPolicy Retain passes the key on)"
                        ),
                        synced: false,
                    }
                }
                EntryAction::Conflict { revision, .. } => {
                    report.events.push(EventSpec {
                        warning: true,
                        reason: "Conflict",
                        note: format!("{why}; the key is left as it is"),
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
/// The Event of a write, where a person learns something from it: drift repaired, an
/// existing key changed or written again. A key's first write says nothing new (the
/// object was just created, its status says where the key is): no Event, one apiserver
/// write less per entry.
fn written_event(
    action: &EntryAction,
    key: &str,
    revision: u64,
    previous: &KeyValueEntryStatus,
) -> Option<EventSpec> {
    let event = |reason, note| EventSpec {
        warning: false,
        reason,
        note,
    };
    if let Some(writer) = action.drift() {
        let what = match action {
            EntryAction::Create { .. } => "deleted or purged",
            _ => "changed",
        };
        return Some(event(
            "DriftCorrected",
            format!(
                "key {key:?} was {what} by {writer}; wrote the declared value at revision {revision}"
            ),
        ));
    }
    let note = format!("wrote key {key:?} at revision {revision}");
    match action {
        EntryAction::Create { .. } if previous.revision.is_none() => None,
        EntryAction::Create { .. } => Some(event("Created", note)),
        _ => Some(event("Updated", note)),
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
