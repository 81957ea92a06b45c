//! The keys a run removes that no manifest declares: a set's (`prune: Owned` or
//! `Exclusive`), then with `--prune` the run's own, each key once.

use std::collections::HashSet;

use super::{ClaimScope, EntryPlan, PlanOptions, Removal, decide_removal, set_removals};
use crate::desired::Desired;
use crate::observed::ObservedBucket;

/// What the bucket's sets, and with `--prune` the run, remove of the keys no manifest
/// declares: a set's removals first, and a key only once.
pub(super) fn plan_removals(
    desired: &Desired,
    bucket: &str,
    entries: &[EntryPlan],
    seen: &ObservedBucket,
    options: &PlanOptions,
) -> Vec<EntryPlan> {
    let declared: HashSet<&str> = entries.iter().map(|entry| &*entry.key).collect();
    let mut removed: Vec<EntryPlan> = Vec::new();
    for set in desired.sets_of(bucket) {
        removed.extend(set_removals(
            set,
            &declared,
            seen,
            &options.manager,
            ClaimScope::Manager,
        ));
    }
    if options.prune {
        let removed_by_sets: HashSet<&str> = removed.iter().map(|entry| &*entry.key).collect();
        let mut pruned: Vec<EntryPlan> = seen
            .keys
            .iter()
            .filter(|(key, _)| {
                !declared.contains(key.as_str()) && !removed_by_sets.contains(key.as_str())
            })
            .filter_map(|(key, observed)| {
                let action = decide_removal(Some(observed), &options.manager, None, Removal::Prune);
                action.writes().then(|| EntryPlan {
                    key: key.as_str().into(),
                    owner: observed.writer.owner.as_deref().unwrap_or_default().into(),
                    origin: None,
                    action,
                    sensitive: observed.writer.sensitive,
                })
            })
            .collect();
        pruned.sort_by(|a, b| a.key.cmp(&b.key));
        removed.extend(pruned);
    }
    removed
}
