//! Apply's round machine against a scripted bucket, no server: each test plays one answer
//! NATS gives only by accident (a conflict, a key taken meanwhile, a timeout, an
//! election, a refusal) and checks what apply sent and what it reports. The failures are
//! the ones the real client returns, classified as a connection classifies them
//! (`nats::faults`). Here the fixtures: a declared bucket `b`, what it stores, and apply
//! run on a plan of the two.

mod buckets;
mod conflicts;
mod failures;
mod scripted;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use self::scripted::{Call, Scripted, Sent};
use super::{ApplyOptions, EntryResult, Outcome, apply_to};
use crate::api::{BucketDeletionPolicy, EntryDeletionPolicy, ManagementPolicy, UpdatePolicy};
use crate::desired::{
    BucketClaim, BucketConfig, Desired, DesiredBucket, DesiredEntry, ObjectRef, Origin,
};
use crate::nats::faults::{
    ack_timeout, create_refused, no_quorum, no_responders, publish_refused, revision_conflict,
};
use crate::nats::{NatsError, Reread, WriteOp, WriteResult};
use crate::observed::{
    BucketStats, Observed, ObservedBucket, ObservedKey, ObservedStream, Operation,
};
use crate::ownership::Writer;
use crate::plan::{ClaimScope, ConflictCause, EntryAction, PlanOptions, plan};

const MANAGER: &str = "kvop";
const WINDOW: usize = 8;

fn object(name: &str) -> ObjectRef {
    ObjectRef::resource("default", name)
}

/// Bucket `b`, managed, declaring `entries` (key, value), each by an object named after
/// its key.
fn declared(entries: &[(&str, &str)]) -> Desired {
    let origin = Origin {
        source: "test.yaml".into(),
        line: 1,
    };
    Desired {
        buckets: vec![DesiredBucket {
            owner: object("b"),
            origin: origin.clone(),
            name: "b".into(),
            config: BucketConfig::defaults(),
            management: ManagementPolicy::Manage,
            deletion: BucketDeletionPolicy::Retain,
            adopt: false,
        }],
        entries: entries
            .iter()
            .map(|(key, value)| DesiredEntry {
                owner: object(key),
                origin: origin.clone(),
                bucket: "b".into(),
                key: (*key).into(),
                value: Bytes::from(value.to_string()),
                update_policy: UpdatePolicy::Overwrite,
                take_over: None,
                sensitive: false,
                deletion_policy: EntryDeletionPolicy::Delete,
            })
            .collect(),
        sets: Vec::new(),
    }
}

/// Bucket `b` as this manager created it, holding `keys`.
fn stored(keys: Vec<(&str, ObservedKey)>) -> Observed {
    let bucket = ObservedBucket {
        stream: Some(ObservedStream {
            config: BucketConfig::defaults(),
            stats: BucketStats::default(),
            created_by: Some(MANAGER.into()),
            claim: Some(BucketClaim {
                manager: MANAGER.into(),
                owner: "default/b".into(),
                uid: None,
            }),
        }),
        keys: keys
            .into_iter()
            .map(|(name, key)| (name.to_string(), key))
            .collect(),
        complete: true,
    };
    Observed {
        buckets: [("b".to_string(), bucket)].into(),
    }
}

/// A live value written by `manager` (`None`: a client that is not kvop) for the object
/// named after `key`.
fn value(key: &str, revision: u64, value: &str, manager: Option<&str>) -> ObservedKey {
    ObservedKey {
        revision,
        operation: Operation::Put,
        value: Bytes::from(value.to_string()),
        writer: Writer {
            sensitive: false,
            manager: manager.map(Arc::from),
            owner: manager.map(|_| format!("default/{key}")),
        },
    }
}

fn put(key: &str, value: &str, expected_revision: u64) -> Sent {
    Sent {
        key: key.into(),
        op: WriteOp::Put(Bytes::from(value.to_string())),
        expected_revision,
        owner: format!("default/{key}"),
    }
}

fn round(writes: Vec<Sent>) -> Call {
    Call::Write {
        manager: MANAGER.into(),
        window: WINDOW,
        writes,
    }
}

fn reread(keys: &[&str]) -> Call {
    Call::Reread(keys.iter().map(|key| key.to_string()).collect())
}

fn written(revision: u64) -> WriteResult {
    WriteResult::Written { revision }
}

fn failed(error: crate::nats::NatsError) -> WriteResult {
    WriteResult::Failed(Box::new(error))
}

/// Plans `desired` over `observed` and applies the plan to `bucket`, as the CLI does
/// (`ride_out`) or the operator (not). Returns the outcome and how often apply reported
/// a write as sent (the progress callback).
async fn apply(
    bucket: &Scripted,
    desired: &Desired,
    observed: &Observed,
    ride_out: bool,
) -> (Outcome, usize) {
    let plan = plan(
        desired,
        observed,
        &PlanOptions {
            manager: MANAGER.into(),
            prune: false,
        },
    );
    let options = ApplyOptions {
        manager: MANAGER.into(),
        scope: ClaimScope::Manager,
        window: WINDOW,
        ride_out,
    };
    let sent = AtomicUsize::new(0);
    let outcome = apply_to(&|_| bucket, &plan, desired, &options, &|| {
        sent.fetch_add(1, Ordering::Relaxed);
    })
    .await;
    bucket.assert_script_used();
    (outcome, sent.into_inner())
}

/// The result of each key of bucket `b`, in plan order.
fn results(outcome: &Outcome) -> Vec<(&str, &EntryResult)> {
    outcome.buckets[0]
        .entries
        .iter()
        .map(|entry| (&*entry.key, &entry.result))
        .collect()
}
