//! The outcome and the bucket statistics as text for people (the plan's text is in
//! `plan_text`).

use std::fmt::Write as _;

use super::plan_text::FIRST_KEYS;
use crate::api::KeyValueBucketStatus;
use crate::apply::{EntryResult, Outcome};
use crate::plan::{EntryAction, EntryVerb};

/// The outcome for people: what was written and what failed. Keys that failed are
/// listed, the first few per bucket (a server gone mid-run fails every key alike), all
/// of them with `verbose`.
pub fn render_outcome(outcome: &Outcome, verbose: bool) -> String {
    let mut out = String::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for bucket in &outcome.buckets {
        if let Some(error) = &bucket.error {
            let _ = writeln!(
                out,
                "bucket {}: {} FAILED: {error}",
                bucket.bucket, bucket.action
            );
        } else if bucket.action.writes() {
            let _ = writeln!(out, "bucket {}: {}d", bucket.bucket, bucket.action);
        }
        let mut failures = 0;
        for entry in &bucket.entries {
            let (label, failure) = match &entry.result {
                EntryResult::Written { action, .. } => (past_tense(*action), None),
                EntryResult::Settled(EntryAction::Skip { .. }) => ("skipped", None),
                EntryResult::Settled(EntryAction::Conflict { .. } | EntryAction::Retain { .. }) => {
                    ("in conflict", None)
                }
                EntryResult::Settled(_) => ("unchanged", None),
                EntryResult::Failed { error } => ("failed", Some(format!("FAILED: {error}"))),
                EntryResult::NotAttempted { reason } => {
                    ("not written", Some(format!("not written: {reason}")))
                }
            };
            if let Some(failure) = failure {
                failures += 1;
                if verbose || failures <= FIRST_KEYS {
                    let _ = writeln!(out, "    ! {} {failure}", entry.key);
                }
            }
            *counts.entry(label).or_default() += 1;
        }
        if !verbose && failures > FIRST_KEYS {
            let more = failures - FIRST_KEYS;
            let _ = writeln!(
                out,
                "    ! ... and {more} more key{} not written (-v lists every key)",
                if more == 1 { "" } else { "s" }
            );
        }
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(label, count)| format!("{count} {label}"))
        .collect();
    let mut conflicts = match outcome.conflicts() {
        0 => String::new(),
        count => format!(
            "; {count} revision conflict{} re-read and decided again",
            if count == 1 { "" } else { "s" }
        ),
    };
    if outcome.retries() > 0 {
        conflicts.push_str(&format!(
            "; {} transient failure{} retried",
            outcome.retries(),
            if outcome.retries() == 1 { "" } else { "s" }
        ));
    }
    let _ = writeln!(
        out,
        "Applied: {} write{} ({}{conflicts}).",
        outcome.writes(),
        if outcome.writes() == 1 { "" } else { "s" },
        if parts.is_empty() {
            "no keys".into()
        } else {
            format!("keys: {}", parts.join(", "))
        }
    );
    out
}

/// What happened to a key, in the words of the outcome's text and the watch's log lines.
pub fn past_tense(verb: EntryVerb) -> &'static str {
    match verb {
        EntryVerb::Create => "created",
        EntryVerb::Update => "updated",
        EntryVerb::Delete => "deleted",
        EntryVerb::Purge => "purged",
        EntryVerb::Unchanged => "unchanged",
        EntryVerb::Conflict => "in conflict",
        EntryVerb::Skip => "skipped",
        EntryVerb::Retain => "retained",
        EntryVerb::Wait => "waiting for the bucket",
    }
}

/// The bucket statistics as an aligned table.
pub fn render_status(status: &[KeyValueBucketStatus]) -> String {
    let header = [
        "BUCKET",
        "VALUES",
        "KEYS",
        "HISTORY",
        "TTL",
        "BYTES",
        "BACKING STORE",
        "STORAGE",
        "REPLICAS",
    ];
    let number = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 9]> = status
        .iter()
        .map(|bucket| {
            [
                bucket.bucket.clone().unwrap_or_default(),
                number(bucket.values),
                number(bucket.keys),
                number(bucket.history),
                bucket.ttl.clone().unwrap_or_else(|| "-".into()),
                number(bucket.bytes),
                bucket.backing_store.clone().unwrap_or_default(),
                bucket.storage.clone().unwrap_or_default(),
                number(bucket.replicas),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}
