//! A plan of one key, for the operator's entry controller: a declared key, or the key of
//! a deleted entry, carried out by the same applier as a file run's plan.

use std::sync::Arc;

use super::{BucketAction, BucketPlan, EntryAction, EntryPlan, Plan};
use crate::desired::{ObjectRef, Origin};

impl Plan {
    /// The plan that carries out `action` on `key` of `bucket` and leaves the bucket's
    /// configuration as it is (the bucket is its own resource's): `owner` declares the
    /// key, or declared it before it was deleted, at `origin`; `sensitive`: its value
    /// comes from a Secret.
    pub fn one_key(
        bucket: &str,
        key: Arc<str>,
        owner: &ObjectRef,
        origin: Origin,
        action: EntryAction,
        sensitive: bool,
    ) -> Plan {
        Plan {
            buckets: vec![BucketPlan {
                bucket: bucket.to_string(),
                owner: owner.clone(),
                origin,
                action: BucketAction::Unchanged,
                entries: vec![EntryPlan {
                    key,
                    owner: owner.to_string().into(),
                    origin: None,
                    action,
                    sensitive,
                }],
            }],
        }
    }
}
