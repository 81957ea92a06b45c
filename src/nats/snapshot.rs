//! A bucket as it is, for `kvop export`: its config, what of its stream a manifest cannot
//! express, and the last message of every key matching a set of subject filters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::{self, DiscardPolicy};

use super::bucket::Bucket;
use super::errors::NatsError;
use super::stream_config::project;
use super::sweep::{Scope, sweep};
use super::sweep_batches::split;
use super::sweep_filters::disjoint_groups;
use crate::desired::BucketConfig;
use crate::observed::ObservedKey;

/// What a bucket holds now.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub config: BucketConfig,
    /// Settings of the stream that kvop's bucket spec cannot express, for people: a
    /// bucket created from the exported manifest will not have them.
    pub unexpressible: Vec<String>,
    /// The last message of each matching key, live or deleted.
    pub keys: HashMap<String, ObservedKey>,
}

impl Bucket {
    /// The bucket's config and one sweep of the keys matching `filters` (NATS subject
    /// wildcards relative to the bucket, e.g. `app.>`; empty means every key); `None`
    /// when there is no such bucket. A mirror's stream keeps its origin's subjects, so
    /// it has no keys of its own to read. `read` is called for each key read, for
    /// progress (again for a key read twice: a sweep restarted, overlapping filters).
    pub async fn snapshot(
        &self,
        filters: &[String],
        read: &(dyn Fn() + Sync),
    ) -> Result<Option<Snapshot>, NatsError> {
        let stream = match self.open().await {
            Ok(stream) => stream,
            Err(error) if error.is_stream_not_found() => return Ok(None),
            Err(error) => return Err(error),
        };
        let info = stream.cached_info().clone();
        let refusals = &self.connection.refusals;
        // Every value is copied (nothing declared to share bytes with), and counted.
        let copy_and_count = |_: &str, _: &[u8]| {
            read();
            None
        };
        let mut keys = HashMap::new();
        if info.config.mirror.is_none() {
            if filters.is_empty() {
                keys = sweep(refusals, &stream, &self.name, Scope::All, &copy_and_count).await?;
            } else {
                // The server refuses a consumer whose filters overlap (10138), and a
                // consumer request must fit max_payload: one consumer per group.
                for group in disjoint_groups(filters) {
                    let group: Vec<Arc<str>> = group.into_iter().map(Arc::from).collect();
                    let batches = split(&self.name, &group, self.connection.max_payload())
                        .ok_or_else(|| {
                            NatsError::other(format!(
                                "a key filter is too long for the server's max_payload of {} bytes",
                                self.connection.max_payload()
                            ))
                        })?;
                    for batch in batches {
                        let found = sweep(
                            refusals,
                            &stream,
                            &self.name,
                            Scope::Keys(batch),
                            &copy_and_count,
                        )
                        .await?;
                        for (key, observed) in found {
                            // Overlapping groups may read a key twice: keep the newer.
                            match keys.get(&key) {
                                Some(seen) if seen.revision >= observed.revision => {}
                                _ => {
                                    keys.insert(key, observed);
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(Some(Snapshot {
            config: project(&info.config),
            unexpressible: unexpressible(&info.config),
            keys,
        }))
    }
}

/// Settings in which the stream differs from the shape kvop gives every bucket and that a
/// `KeyValueBucket` has no field for.
fn unexpressible(config: &stream::Config) -> Vec<String> {
    let mut found = Vec::new();
    if !config.allow_direct {
        found.push("direct get is off (allow_direct: false; kvop turns it on)".into());
    }
    if config.discard != DiscardPolicy::New {
        found.push("discard policy is old (kvop uses new)".into());
    }
    if config.max_messages > 0 {
        found.push(format!("max_msgs is {}", config.max_messages));
    }
    if config.max_consumers > 0 {
        found.push(format!("max_consumers is {}", config.max_consumers));
    }
    if !config.allow_rollup || !config.deny_delete || config.deny_purge {
        found.push(format!(
            "allow_rollup {}, deny_delete {}, deny_purge {} (kvop uses true, true, false)",
            config.allow_rollup, config.deny_delete, config.deny_purge
        ));
    }
    let window = if config.max_age.is_zero() {
        Duration::from_secs(120)
    } else {
        config.max_age.min(Duration::from_secs(120))
    };
    if config.mirror.is_none()
        && config.sources.as_ref().is_none_or(Vec::is_empty)
        && config.duplicate_window != window
    {
        found.push(format!(
            "duplicate window is {:?} (kvop uses {:?})",
            config.duplicate_window, window
        ));
    }
    if config.subject_transform.is_some() {
        found.push("the stream has a subject transform".into());
    }
    found
}
