//! Report: the plan, the outcome and the bucket statistics of a standalone run, as text
//! for people (`plan_text`, `text`) or as JSON for programs (`json`), both counting with
//! `summary`. The plan only decides; every word about it is chosen here.

pub mod diff;
pub mod json;
mod line_diff;
pub mod plan_text;
pub mod problems;
pub mod stdout;
pub mod summary;
pub mod text;

use crate::api::KeyValueBucketStatus;
use crate::api::bucket::{ClusterStatus, ReplicaStatus};
use crate::observed::ObservedStream;
use crate::units::format_duration;

pub use json::{Report, SCHEMA_VERSION, plan_report, result_report};
pub use plan_text::render_plan;
pub use problems::{bucket_problems, plan_problems};
pub use summary::Summary;
pub use text::{render_outcome, render_status};

/// The status of one bucket, in the same shape as a `KeyValueBucket`'s `.status`.
pub fn bucket_status(
    bucket: &str,
    stream: &ObservedStream,
    keys: Option<u64>,
) -> KeyValueBucketStatus {
    let to_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    KeyValueBucketStatus {
        bucket: Some(bucket.to_string()),
        values: Some(to_i64(stream.stats.values)),
        keys: keys.map(to_i64),
        history: Some(stream.config.history),
        ttl: (!stream.config.ttl.is_zero()).then(|| format_duration(stream.config.ttl)),
        bytes: Some(to_i64(stream.stats.bytes)),
        backing_store: Some("JetStream".into()),
        storage: Some(format!("{:?}", stream.config.storage).to_lowercase()),
        replicas: Some(stream.config.replicas),
        max_bytes: Some(stream.config.max_bytes),
        max_value_size: Some(stream.config.max_value_size),
        last_revision: Some(to_i64(stream.stats.last_revision)),
        created: Some(stream.stats.created.clone()).filter(|created| !created.is_empty()),
        cluster: stream.stats.cluster.as_ref().map(|cluster| ClusterStatus {
            name: cluster.name.clone(),
            leader: cluster.leader.clone(),
            replicas: cluster
                .replicas
                .iter()
                .map(|(name, current, lag)| ReplicaStatus {
                    name: name.clone(),
                    current: *current,
                    lag: to_i64(*lag),
                })
                .collect(),
        }),
        ..Default::default()
    }
}

/// Exit code: converged, nothing to change (or changes without `--detailed-exitcode`).
pub const EXIT_OK: i32 = 0;
/// Exit code: an error, or the run could not converge.
pub const EXIT_ERROR: i32 = 1;
/// Exit code with `--detailed-exitcode`: changes were planned (dry run) or applied.
pub const EXIT_CHANGES: i32 = 2;
