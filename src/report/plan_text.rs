//! The plan as text for people: per bucket its changes field by field, the count of its
//! keys per action, and the first few keys of each action (every key with `--verbose`).
//! A first run of 100,000 keys is a few lines, not 100,000.

use std::fmt::Write as _;

use super::summary::{Summary, key_count_line, plural, summary_line};
use crate::desired::BucketConfig;
use crate::plan::{BucketAction, BucketPlan, EntryAction, EntryPlan, Plan, Removal};

/// Keys listed per action and bucket without `--verbose`.
pub const FIRST_KEYS: usize = 5;

/// Renders the plan; `verbose` lists every key, unchanged ones too.
pub fn render_plan(plan: &Plan, verbose: bool) -> String {
    let mut out = String::new();
    for bucket in &plan.buckets {
        render_bucket(&mut out, bucket, verbose);
    }
    let _ = writeln!(out, "{}", summary_line(&Summary::of(plan)));
    out
}

fn render_bucket(out: &mut String, bucket: &BucketPlan, verbose: bool) {
    let _ = writeln!(
        out,
        "bucket {} ({}): {}",
        bucket.bucket,
        bucket.origin,
        describe_bucket(&bucket.action)
    );
    if let BucketAction::Create { config } = &bucket.action {
        for setting in crate::plan::diff_config(&BucketConfig::defaults(), config) {
            let _ = writeln!(out, "    + {}: {}", setting.field, setting.to);
        }
    }
    if let BucketAction::Update { changes, .. } | BucketAction::Blocked { changes } = &bucket.action
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
    if bucket.entries.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "    keys: {}",
        key_count_line(&Summary::of_bucket(bucket))
    );
    for group in Group::ALL {
        let mut members = bucket
            .entries
            .iter()
            .filter(|entry| Group::of(&entry.action) == group);
        let listed = match (group, verbose) {
            (_, true) => usize::MAX,
            (Group::Unchanged, false) => 0,
            (_, false) => FIRST_KEYS,
        };
        for entry in members.by_ref().take(listed) {
            let _ = writeln!(out, "    {}", describe_entry(entry));
        }
        let more = members.count();
        if more > 0 && group != Group::Unchanged {
            let _ = writeln!(
                out,
                "    {} ... and {more} more key{} {} (-v lists every key)",
                group.mark(),
                plural(more),
                group.label()
            );
        }
    }
}

/// Keys listed together, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Create,
    Update,
    Delete,
    Conflict,
    Skip,
    Wait,
    Unchanged,
}

impl Group {
    const ALL: [Group; 7] = [
        Group::Create,
        Group::Update,
        Group::Delete,
        Group::Conflict,
        Group::Skip,
        Group::Wait,
        Group::Unchanged,
    ];

    fn of(action: &EntryAction) -> Group {
        match action {
            EntryAction::Create { .. } => Group::Create,
            EntryAction::Update { .. } => Group::Update,
            EntryAction::Remove { .. } => Group::Delete,
            EntryAction::Conflict { .. } | EntryAction::Retain { .. } => Group::Conflict,
            EntryAction::Skip { .. } => Group::Skip,
            EntryAction::Wait => Group::Wait,
            EntryAction::Unchanged { .. } => Group::Unchanged,
        }
    }

    fn mark(self) -> &'static str {
        match self {
            Group::Create => "+",
            Group::Update => "~",
            Group::Delete => "-",
            Group::Conflict | Group::Wait => "!",
            Group::Skip => " ",
            Group::Unchanged => "=",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Group::Create => "to create",
            Group::Update => "to update",
            Group::Delete => "to delete",
            Group::Conflict => "in conflict",
            Group::Skip => "skipped",
            Group::Wait => "waiting for the bucket",
            Group::Unchanged => "unchanged",
        }
    }
}

fn describe_entry(entry: &EntryPlan) -> String {
    let key = &entry.key;
    match &entry.action {
        EntryAction::Create {
            expected_revision: 0,
            value,
            ..
        } => format!("+ key {key}: create ({})", bytes(value.len())),
        // A key's last message is all a sweep sees: a value or marker another client
        // wrote may be a change behind kvop's back or a key kvop never wrote (adopted,
        // or declared for the first time), so the words hold for both.
        EntryAction::Create {
            expected_revision,
            value,
            drift: Some(writer),
        } => format!(
            "+ key {key}: re-create, removed by {writer} (delete or purge marker at revision {expected_revision}) ({})",
            bytes(value.len())
        ),
        EntryAction::Create {
            expected_revision,
            value,
            drift: None,
        } => format!(
            "+ key {key}: re-create over delete marker at revision {expected_revision} ({})",
            bytes(value.len())
        ),
        EntryAction::Update {
            expected_revision,
            value,
            drift: None,
        } => format!(
            "~ key {key}: update revision {expected_revision} ({})",
            bytes(value.len())
        ),
        EntryAction::Update {
            expected_revision,
            value,
            drift: Some(writer),
        } => format!(
            "~ key {key}: update, overwriting revision {expected_revision} written by {writer} ({})",
            bytes(value.len())
        ),
        EntryAction::Unchanged { revision } => {
            format!("= key {key}: unchanged at revision {revision}")
        }
        EntryAction::Conflict { .. } | EntryAction::Retain { .. } => format!(
            "! key {key}: conflict, {}",
            entry.action.explain().unwrap_or_default()
        ),
        EntryAction::Skip { .. } => format!(
            "  key {key}: skip, {}",
            entry.action.explain().unwrap_or_default()
        ),
        EntryAction::Remove {
            expected_revision,
            removal: Removal::Exclusive,
        } => format!(
            "- key {key}: delete, not declared under the exclusive prefix of {} (revision {expected_revision}, no kvop object holds it)",
            entry.owner
        ),
        EntryAction::Remove {
            expected_revision, ..
        } => format!(
            "- key {key}: delete, no longer declared (revision {expected_revision}, written for {})",
            entry.owner
        ),
        EntryAction::Wait => {
            format!("! key {key}: cannot be written: the bucket does not exist or is refused")
        }
    }
}

/// A bucket that cannot match says why in capitals (`BLOCKED: cannot change ...`), in the
/// words its problem and the operator's condition use.
fn describe_bucket(action: &BucketAction) -> String {
    match action {
        BucketAction::Create { .. } => "create".into(),
        BucketAction::Update { .. } => "update".into(),
        BucketAction::Unchanged => "unchanged".into(),
        BucketAction::Observe => "observed (managementPolicy Observe)".into(),
        BucketAction::Blocked { .. } | BucketAction::Missing | BucketAction::Refused { .. } => {
            format!(
                "{}: {}",
                action.verb().as_str().to_uppercase(),
                action.explain().unwrap_or_default()
            )
        }
    }
}

fn bytes(count: usize) -> String {
    format!("{count} byte{}", plural(count))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::desired::{ObjectRef, Origin};

    fn bucket(entries: Vec<EntryAction>) -> Plan {
        let entries = entries
            .into_iter()
            .enumerate()
            .map(|(index, action)| EntryPlan {
                sensitive: false,
                key: format!("k{index}").into(),
                owner: format!("default/e{index}").into(),
                origin: None,
                action,
            })
            .collect();
        Plan {
            buckets: vec![BucketPlan {
                bucket: "b".into(),
                owner: ObjectRef::resource("default", "b"),
                origin: Origin {
                    source: "m.yaml".into(),
                    line: 1,
                },
                action: BucketAction::Unchanged,
                entries,
            }],
        }
    }

    fn create() -> EntryAction {
        EntryAction::Create {
            expected_revision: 0,
            value: Bytes::from_static(b"v"),
            drift: None,
        }
    }

    #[test]
    fn many_keys_are_counted_and_the_first_few_of_each_action_listed() {
        let mut actions: Vec<EntryAction> = (0..1000).map(|_| create()).collect();
        actions.extend((0..3).map(|_| EntryAction::Remove {
            expected_revision: 7,
            removal: crate::plan::Removal::Prune,
        }));
        actions.extend((0..50).map(|revision| EntryAction::Unchanged { revision }));
        let text = render_plan(&bucket(actions), false);
        assert_eq!(
            text,
            "bucket b (m.yaml:1): unchanged\n\
             \x20   keys: 1000 keys to create, 3 keys to delete, 50 keys unchanged\n\
             \x20   + key k0: create (1 byte)\n\
             \x20   + key k1: create (1 byte)\n\
             \x20   + key k2: create (1 byte)\n\
             \x20   + key k3: create (1 byte)\n\
             \x20   + key k4: create (1 byte)\n\
             \x20   + ... and 995 more keys to create (-v lists every key)\n\
             \x20   - key k1000: delete, no longer declared (revision 7, written for default/e1000)\n\
             \x20   - key k1001: delete, no longer declared (revision 7, written for default/e1001)\n\
             \x20   - key k1002: delete, no longer declared (revision 7, written for default/e1002)\n\
             Plan: 1000 keys to create, 3 keys to delete, 50 keys unchanged, 1 bucket unchanged.\n"
        );
    }

    #[test]
    fn verbose_lists_every_key_unchanged_ones_too() {
        let mut actions: Vec<EntryAction> = (0..8).map(|_| create()).collect();
        actions.push(EntryAction::Unchanged { revision: 3 });
        let text = render_plan(&bucket(actions), true);
        assert_eq!(text.matches("+ key").count(), 8, "{text}");
        assert!(text.contains("= key k8: unchanged at revision 3"), "{text}");
        assert!(!text.contains("more key"), "{text}");
    }

    #[test]
    fn a_value_another_client_wrote_is_overwritten_not_said_to_be_restored() {
        // Adopted keys were never written by kvop: "restore" would claim a history the
        // key's last message cannot show.
        let text = render_plan(
            &bucket(vec![
                EntryAction::Update {
                    expected_revision: 4,
                    value: Bytes::from_static(b"new"),
                    drift: Some("another client".into()),
                },
                EntryAction::Create {
                    expected_revision: 6,
                    value: Bytes::from_static(b"v"),
                    drift: Some("another client".into()),
                },
            ]),
            true,
        );
        assert!(
            text.contains(
                "~ key k0: update, overwriting revision 4 written by another client (3 bytes)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "+ key k1: re-create, removed by another client (delete or purge marker at revision 6) (1 byte)\n"
            ),
            "{text}"
        );
        assert!(!text.contains("restore"), "{text}");
    }

    #[test]
    fn a_bucket_without_keys_has_no_key_line() {
        let text = render_plan(&bucket(Vec::new()), false);
        assert_eq!(
            text,
            "bucket b (m.yaml:1): unchanged\nPlan: 1 bucket unchanged.\n"
        );
    }
}
