//! Counts of a plan's changes, for the summary line of the text report and the
//! `plan.summary` of the JSON report.

use crate::plan::{BucketAction, BucketPlan, EntryAction, Plan};

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
    /// Buckets another declaration holds, or that need `kvop.dev/adopt`.
    pub buckets_refused: usize,
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
            summary.add(bucket);
        }
        summary
    }

    /// The counts of one bucket.
    pub fn of_bucket(bucket: &BucketPlan) -> Summary {
        let mut summary = Summary::default();
        summary.add(bucket);
        summary
    }

    fn add(&mut self, bucket: &BucketPlan) {
        match bucket.action {
            BucketAction::Create { .. } => self.buckets_to_create += 1,
            BucketAction::Update { .. } => self.buckets_to_update += 1,
            BucketAction::Blocked { .. } => self.buckets_blocked += 1,
            BucketAction::Missing => self.buckets_missing += 1,
            BucketAction::Refused { .. } => self.buckets_refused += 1,
            BucketAction::Unchanged | BucketAction::Observe => self.buckets_unchanged += 1,
        }
        for entry in &bucket.entries {
            match entry.action {
                EntryAction::Create { .. } => self.keys_to_create += 1,
                EntryAction::Update { .. } => self.keys_to_update += 1,
                EntryAction::Remove { .. } => self.keys_to_delete += 1,
                EntryAction::Unchanged { .. } => self.keys_unchanged += 1,
                EntryAction::Skip { .. } => self.keys_skipped += 1,
                EntryAction::Conflict { .. } | EntryAction::Retain { .. } => {
                    self.keys_in_conflict += 1
                }
                EntryAction::Wait => self.keys_waiting += 1,
            }
        }
    }
}

/// `Plan: 1 bucket to create, 3 keys to create, 2 unchanged.`
pub fn summary_line(summary: &Summary) -> String {
    let parts: Vec<String> = [
        (summary.buckets_to_create, "bucket", "to create"),
        (summary.buckets_to_update, "bucket", "to update"),
        (summary.buckets_blocked, "bucket", "blocked"),
        (summary.buckets_missing, "bucket", "missing"),
        (summary.buckets_refused, "bucket", "refused"),
    ]
    .into_iter()
    .chain(key_counts(summary))
    .chain([(summary.buckets_unchanged, "bucket", "unchanged")])
    .filter(|(count, _, _)| *count > 0)
    .map(|(count, noun, what)| format!("{count} {noun}{} {what}", plural(count)))
    .collect();
    if parts.is_empty() {
        "Plan: nothing declared.".into()
    } else {
        format!("Plan: {}.", parts.join(", "))
    }
}

/// `3 keys to create, 1 key unchanged`: the keys of one bucket, for its header.
pub fn key_count_line(summary: &Summary) -> String {
    key_counts(summary)
        .into_iter()
        .filter(|(count, _, _)| *count > 0)
        .map(|(count, noun, what)| format!("{count} {noun}{} {what}", plural(count)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_counts(summary: &Summary) -> [(usize, &'static str, &'static str); 7] {
    [
        (summary.keys_to_create, "key", "to create"),
        (summary.keys_to_update, "key", "to update"),
        (summary.keys_to_delete, "key", "to delete"),
        (summary.keys_in_conflict, "key", "in conflict"),
        (summary.keys_skipped, "key", "skipped"),
        (summary.keys_waiting, "key", "waiting for a bucket"),
        (summary.keys_unchanged, "key", "unchanged"),
    ]
}

pub(super) fn plural(count: usize) -> &'static str {
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
