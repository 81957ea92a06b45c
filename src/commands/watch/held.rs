//! Deletions wait longer than writes. A key whose manifest disappeared is pruned only
//! once the files have stayed without it for the settle time: tools that move files
//! (a checkout without git's lock, rsync, an unpacked release, `mv` across file systems)
//! remove the old path before they write the new one, and taking that moment at its
//! word would delete a key and write it back. A write can be undone by the next pass;
//! a delete leaves a marker, history lost and readers that saw the key vanish.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::plan::{EntryAction, Plan, Removal};

/// The keys that have been waiting to be pruned, and since when.
#[derive(Debug)]
pub struct HeldDeletions {
    settle: Duration,
    /// (bucket, key) → when a pass first found the key declared nowhere.
    undeclared_since: HashMap<(String, String), Instant>,
}

impl HeldDeletions {
    pub fn new(settle: Duration) -> HeldDeletions {
        HeldDeletions {
            settle,
            undeclared_since: HashMap::new(),
        }
    }

    /// Takes out of `plan` every prune of a key that has not been undeclared for the
    /// settle time, and forgets the keys of the planned buckets that are no longer to
    /// be pruned (declared again, or gone). Returns when the first key taken out is
    /// due, for a pass then; `None` when none was.
    pub fn hold(&mut self, plan: &mut Plan) -> Option<Instant> {
        let now = Instant::now();
        let mut due: Option<Instant> = None;
        for bucket in &mut plan.buckets {
            let name = &bucket.bucket;
            let pruned: Vec<String> = bucket
                .entries
                .iter()
                .filter(|entry| is_prune(&entry.action))
                .map(|entry| entry.key.to_string())
                .collect();
            self.undeclared_since
                .retain(|(held_bucket, key), _| held_bucket != name || pruned.contains(key));
            let mut held = 0usize;
            bucket.entries.retain(|entry| {
                if !is_prune(&entry.action) {
                    return true;
                }
                let since = *self
                    .undeclared_since
                    .entry((name.clone(), entry.key.to_string()))
                    .or_insert(now);
                let at = since + self.settle;
                if at <= now {
                    return true;
                }
                held += 1;
                due = Some(due.map_or(at, |due| due.min(at)));
                false
            });
            if held > 0 {
                tracing::info!(
                    bucket = %name,
                    keys = held,
                    "keys no longer declared: deleting them once their manifests have stayed away for {} ms",
                    self.settle.as_millis()
                );
            }
        }
        due
    }

    /// Keys pruned: nothing to wait for any more.
    pub fn deleted(&mut self, bucket: &str, key: &str) {
        self.undeclared_since
            .remove(&(bucket.to_string(), key.to_string()));
    }
}

fn is_prune(action: &EntryAction) -> bool {
    matches!(
        action,
        EntryAction::Remove {
            removal: Removal::Prune,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{ObjectRef, Origin};
    use crate::plan::{BucketAction, BucketPlan, EntryPlan};

    fn plan(keys: &[(&str, bool)]) -> Plan {
        let entries = keys
            .iter()
            .map(|(key, pruned)| EntryPlan {
                sensitive: false,
                key: (*key).into(),
                owner: "o".into(),
                origin: None,
                action: if *pruned {
                    EntryAction::Remove {
                        expected_revision: 3,
                        removal: Removal::Prune,
                    }
                } else {
                    EntryAction::Unchanged { revision: 1 }
                },
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

    fn keys(plan: &Plan) -> Vec<String> {
        plan.buckets[0]
            .entries
            .iter()
            .map(|entry| entry.key.to_string())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_prune_waits_for_the_settle_time_and_a_key_declared_again_starts_over() {
        let mut held = HeldDeletions::new(Duration::from_secs(2));
        let mut first = plan(&[("kept", false), ("gone", true)]);
        let due = held.hold(&mut first).expect("held");
        assert_eq!(keys(&first), ["kept"], "the prune waits");
        assert_eq!(due, Instant::now() + Duration::from_secs(2));

        tokio::time::advance(Duration::from_secs(1)).await;
        let mut again = plan(&[("kept", false), ("gone", true)]);
        assert_eq!(held.hold(&mut again), Some(due), "still the first sighting");
        assert_eq!(keys(&again), ["kept"]);

        // Declared again (a file moved back): it starts over when it goes next time.
        let mut back = plan(&[("kept", false), ("gone", false)]);
        assert_eq!(held.hold(&mut back), None);
        tokio::time::advance(Duration::from_secs(2)).await;
        let mut gone_again = plan(&[("gone", true)]);
        assert!(held.hold(&mut gone_again).is_some(), "a fresh wait");
        assert!(keys(&gone_again).is_empty());

        tokio::time::advance(Duration::from_secs(2)).await;
        let mut due_now = plan(&[("gone", true)]);
        assert_eq!(held.hold(&mut due_now), None);
        assert_eq!(keys(&due_now), ["gone"], "away long enough: pruned");
    }

    #[test]
    fn no_settle_time_holds_nothing() {
        let mut held = HeldDeletions::new(Duration::ZERO);
        let mut now = plan(&[("gone", true)]);
        // A tokio Instant outside a runtime is fine: no timer is involved.
        assert_eq!(held.hold(&mut now), None);
        assert_eq!(keys(&now), ["gone"]);
    }
}
