//! The plan as text for people: one line per change, a short diff per bucket change,
//! unchanged keys counted rather than listed.

use std::fmt::Write as _;

use super::{BucketAction, EntryAction, Plan};
use crate::desired::BucketConfig;

/// Counts of planned changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub buckets_to_create: usize,
    pub buckets_to_update: usize,
    pub buckets_blocked: usize,
    /// Declared and as declared, or only observed.
    pub buckets_unchanged: usize,
    /// `managementPolicy: Observe` buckets that do not exist.
    pub buckets_missing: usize,
    pub keys_to_create: usize,
    pub keys_to_update: usize,
    pub keys_to_delete: usize,
    pub keys_unchanged: usize,
    pub keys_skipped: usize,
    pub keys_in_conflict: usize,
    /// Keys of a bucket that does not exist (and that kvop does not create).
    pub keys_waiting: usize,
}

impl Summary {
    pub fn of(plan: &Plan) -> Summary {
        let mut summary = Summary::default();
        for bucket in &plan.buckets {
            match bucket.action {
                BucketAction::Create { .. } => summary.buckets_to_create += 1,
                BucketAction::Update { .. } => summary.buckets_to_update += 1,
                BucketAction::Blocked { .. } => summary.buckets_blocked += 1,
                BucketAction::Missing => summary.buckets_missing += 1,
                BucketAction::Unchanged | BucketAction::Observe => summary.buckets_unchanged += 1,
            }
            for entry in &bucket.entries {
                match entry.action {
                    EntryAction::Create { .. } => summary.keys_to_create += 1,
                    EntryAction::Update { .. } => summary.keys_to_update += 1,
                    EntryAction::Remove { .. } => summary.keys_to_delete += 1,
                    EntryAction::Unchanged { .. } => summary.keys_unchanged += 1,
                    EntryAction::Skip { .. } => summary.keys_skipped += 1,
                    EntryAction::Conflict { .. } | EntryAction::Retain { .. } => {
                        summary.keys_in_conflict += 1
                    }
                    EntryAction::Wait => summary.keys_waiting += 1,
                }
            }
        }
        summary
    }
}

/// Renders the plan; `verbose` also lists unchanged keys.
pub fn render(plan: &Plan, verbose: bool) -> String {
    let mut out = String::new();
    for bucket in &plan.buckets {
        let unchanged = bucket
            .entries
            .iter()
            .filter(|entry| matches!(entry.action, EntryAction::Unchanged { .. }))
            .count();
        let _ = writeln!(
            out,
            "bucket {} ({}): {}",
            bucket.bucket,
            bucket.origin,
            describe_bucket(&bucket.action)
        );
        if let BucketAction::Create { config } = &bucket.action {
            for setting in super::diff_config(&BucketConfig::defaults(), config) {
                let _ = writeln!(out, "    + {}: {}", setting.field, setting.to);
            }
        }
        if let BucketAction::Update { changes, .. } | BucketAction::Blocked { changes } =
            &bucket.action
        {
            for change in changes {
                let mark = if change.immutable { "!" } else { "~" };
                let _ = writeln!(
                    out,
                    "    {mark} {}: {} -> {}",
                    change.field, change.from, change.to
                );
            }
        }
        for entry in &bucket.entries {
            let line = match &entry.action {
                EntryAction::Create {
                    expected_revision: 0,
                    value,
                    ..
                } => format!("+ key {}: create ({})", entry.key, bytes(value.len())),
                EntryAction::Create {
                    expected_revision,
                    value,
                    drift: Some(writer),
                } => format!(
                    "+ key {}: restore, removed by {writer} (delete or purge marker at revision {expected_revision}) ({})",
                    entry.key,
                    bytes(value.len())
                ),
                EntryAction::Create {
                    expected_revision,
                    value,
                    drift: None,
                } => {
                    format!(
                        "+ key {}: re-create over delete marker at revision {expected_revision} ({})",
                        entry.key,
                        bytes(value.len())
                    )
                }
                EntryAction::Update {
                    expected_revision,
                    value,
                    drift: None,
                } => {
                    format!(
                        "~ key {}: update revision {expected_revision} ({})",
                        entry.key,
                        bytes(value.len())
                    )
                }
                EntryAction::Update {
                    expected_revision,
                    value,
                    drift: Some(writer),
                } => format!(
                    "~ key {}: restore, revision {expected_revision} was written by {writer} ({})",
                    entry.key,
                    bytes(value.len())
                ),
                EntryAction::Unchanged { revision } if verbose => {
                    format!("= key {}: unchanged at revision {revision}", entry.key)
                }
                EntryAction::Unchanged { .. } => continue,
                EntryAction::Conflict { .. } | EntryAction::Retain { .. } => format!(
                    "! key {}: conflict, {}",
                    entry.key,
                    entry.action.explain().unwrap_or_default()
                ),
                EntryAction::Skip { .. } => format!(
                    "  key {}: skip, {}",
                    entry.key,
                    entry.action.explain().unwrap_or_default()
                ),
                EntryAction::Remove {
                    expected_revision, ..
                } => {
                    format!(
                        "- key {}: delete, no longer declared (revision {expected_revision}, written for {})",
                        entry.key, entry.owner
                    )
                }
                EntryAction::Wait => format!(
                    "! key {}: cannot be written: the bucket does not exist",
                    entry.key
                ),
            };
            let _ = writeln!(out, "    {line}");
        }
        if unchanged > 0 && !verbose {
            let _ = writeln!(out, "    = {unchanged} key{} unchanged", plural(unchanged));
        }
    }
    let summary = Summary::of(plan);
    let _ = writeln!(out, "{}", summary_line(&summary));
    out
}

/// `Plan: 1 bucket to create, 3 keys to create, 2 unchanged.`
pub fn summary_line(summary: &Summary) -> String {
    let parts: Vec<String> = [
        (summary.buckets_to_create, "bucket", "to create"),
        (summary.buckets_to_update, "bucket", "to update"),
        (summary.buckets_blocked, "bucket", "blocked"),
        (summary.buckets_missing, "bucket", "missing"),
        (summary.keys_to_create, "key", "to create"),
        (summary.keys_to_update, "key", "to update"),
        (summary.keys_to_delete, "key", "to delete"),
        (summary.keys_in_conflict, "key", "in conflict"),
        (summary.keys_skipped, "key", "skipped"),
        (summary.keys_waiting, "key", "waiting for a bucket"),
        (summary.keys_unchanged, "key", "unchanged"),
        (summary.buckets_unchanged, "bucket", "unchanged"),
    ]
    .into_iter()
    .filter(|(count, _, _)| *count > 0)
    .map(|(count, noun, what)| format!("{count} {noun}{} {what}", plural(count)))
    .collect();
    if parts.is_empty() {
        "Plan: nothing declared.".into()
    } else {
        format!("Plan: {}.", parts.join(", "))
    }
}

fn describe_bucket(action: &BucketAction) -> &'static str {
    match action {
        BucketAction::Create { .. } => "create",
        BucketAction::Update { .. } => "update",
        BucketAction::Unchanged => "unchanged",
        BucketAction::Blocked { .. } => {
            "BLOCKED: the server refuses these changes on an existing bucket"
        }
        BucketAction::Observe => "observed (managementPolicy Observe)",
        BucketAction::Missing => "MISSING: does not exist and managementPolicy is Observe",
    }
}

fn bytes(count: usize) -> String {
    format!("{count} byte{}", plural(count))
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_counts_what_is_declared_not_only_what_changes() {
        for (summary, line) in [
            (Summary::default(), "Plan: nothing declared."),
            (
                Summary {
                    buckets_unchanged: 2,
                    ..Summary::default()
                },
                "Plan: 2 buckets unchanged.",
            ),
            (
                Summary {
                    buckets_missing: 1,
                    keys_waiting: 3,
                    ..Summary::default()
                },
                "Plan: 1 bucket missing, 3 keys waiting for a bucket.",
            ),
            (
                Summary {
                    keys_to_create: 1,
                    keys_unchanged: 4,
                    buckets_unchanged: 1,
                    ..Summary::default()
                },
                "Plan: 1 key to create, 4 keys unchanged, 1 bucket unchanged.",
            ),
        ] {
            assert_eq!(summary_line(&summary), line);
        }
    }
}
