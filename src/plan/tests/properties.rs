//! Property tests of the planner: random states, one invariant.

use bytes::Bytes;

use super::{MANAGER, bucket, config, entry, existing, key};
use crate::api::{ManagementPolicy, UpdatePolicy};
use crate::desired::Desired;
use crate::observed::{ObservedKey, Operation};
use crate::ownership::Writer;
use crate::plan::{EntryAction, PlanOptions, plan};

/// A small deterministic generator (no dependency): the same seed, the same cases.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[test]
fn planning_is_idempotent_for_random_states_policies_and_prune() {
    let mut random = Lcg(0x6b76_6f70);
    for case in 0..2_000 {
        let policies = UpdatePolicy::ALL;
        let keys = 1 + random.next(6) as usize;
        let mut entries = Vec::new();
        for k in 0..keys {
            if random.next(4) > 0 {
                let value = format!("v{}", random.next(3));
                entries.push(entry(
                    &format!("k{k}"),
                    &value,
                    policies[random.next(policies.len() as u64) as usize],
                ));
            }
        }
        let mut observed_keys = Vec::new();
        for k in 0..keys {
            let writer = match random.next(3) {
                0 => None,
                1 => Some(MANAGER),
                _ => Some("someone-else"),
            };
            let operation = [
                Operation::Put,
                Operation::Put,
                Operation::Delete,
                Operation::Purge,
            ][random.next(4) as usize];
            if random.next(5) > 0 {
                observed_keys.push((
                    format!("k{k}"),
                    key(
                        1 + random.next(100),
                        operation,
                        &format!("v{}", random.next(3)),
                        writer,
                    ),
                ));
            }
        }
        let desired = Desired {
            buckets: vec![bucket(ManagementPolicy::Manage, config())],
            entries,
            sets: Vec::new(),
        };
        let observed = existing(observed_keys, config());
        let options = PlanOptions {
            manager: MANAGER.into(),
            prune: random.next(2) == 0,
        };
        let first = plan(&desired, &observed, &options);
        // Apply the plan in imagination: every write lands, as this manager.
        let mut after = observed.clone();
        let keys_after = &mut after.buckets.get_mut("b").expect("bucket").keys;
        for (revision, planned) in (1_000..).zip(&first.buckets[0].entries) {
            let (operation, value) = match &planned.action {
                EntryAction::Create { value, .. } | EntryAction::Update { value, .. } => {
                    (Operation::Put, value.clone())
                }
                EntryAction::Remove { .. } => (Operation::Delete, Bytes::new()),
                _ => continue,
            };
            let writer = Writer {
                sensitive: false,
                manager: Some(MANAGER.into()),
                owner: Some(planned.owner.to_string()),
            };
            keys_after.insert(
                planned.key.to_string(),
                ObservedKey {
                    revision,
                    operation,
                    value,
                    writer,
                },
            );
        }
        let second = plan(&desired, &after, &options);
        assert!(
            !second.has_changes(),
            "case {case}: a second plan still writes:\nfirst {first:#?}\nsecond {second:#?}"
        );
    }
}
