//! The bucket changes its entries act on. The statistics refresh writes every bucket's
//! status each `--status-interval`; re-queuing all of a bucket's entries for that
//! reconciled every one of them, for nothing, 4–5 times while 10,000 of them were
//! being created (benchmark B5).
//!
//! The watch also fills the bucket store entries read, so an entry re-queued for a
//! change finds that change there (the bucket controller's own store may lag).

use std::collections::HashMap;

use futures::{Stream, TryStreamExt, stream};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Resource, ResourceExt};

use super::status::READY;
use crate::api::{ConditionStatus, KeyValueBucket};

/// What an entry's reconcile reads from its bucket (see `entry::resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntryFacts {
    generation: Option<i64>,
    /// The generation the stream was last brought to: a spec change reaches the server
    /// after the entries saw it (a larger maxValueSize, say).
    observed_generation: Option<i64>,
    deleting: bool,
    ready: bool,
    /// The NATS bucket's name.
    bucket: Option<String>,
    /// When the stream was created: a new stream re-queues entries to write them again.
    created: Option<String>,
}

impl EntryFacts {
    fn of(bucket: &KeyValueBucket) -> Self {
        let status = bucket.status.as_ref();
        Self {
            generation: bucket.meta().generation,
            observed_generation: status.and_then(|status| status.observed_generation),
            deleting: bucket.meta().deletion_timestamp.is_some(),
            ready: status.is_some_and(|status| {
                status.conditions.iter().any(|condition| {
                    condition.type_ == READY && condition.status == ConditionStatus::True
                })
            }),
            bucket: status.and_then(|status| status.bucket.clone()),
            created: status.and_then(|status| status.created.clone()),
        }
    }
}

/// Identifies a bucket across re-creations under the same name.
type Identity = (Option<String>, String, Option<String>);

fn identity(bucket: &KeyValueBucket) -> Identity {
    (bucket.namespace(), bucket.name_any(), bucket.uid())
}

/// Remembers each bucket's last [`EntryFacts`] and passes on a bucket only when they
/// changed, or it appeared or went away.
#[derive(Default)]
struct Filter {
    seen: HashMap<Identity, (EntryFacts, KeyValueBucket)>,
    /// Built during a re-list; replaces `seen` when it ends.
    relisting: Option<HashMap<Identity, (EntryFacts, KeyValueBucket)>>,
}

impl Filter {
    /// The buckets `event` makes worth re-queuing entries for. A re-list passes its
    /// changes when it ends, which is when the store the entries read has them.
    fn pass(&mut self, event: Event<KeyValueBucket>) -> Vec<KeyValueBucket> {
        match event {
            Event::Init => {
                self.relisting = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(bucket) => {
                let facts = EntryFacts::of(&bucket);
                self.relisting
                    .get_or_insert_with(HashMap::new)
                    .insert(identity(&bucket), (facts, bucket));
                Vec::new()
            }
            Event::InitDone => {
                let relisted = self.relisting.take().unwrap_or_default();
                let old = std::mem::take(&mut self.seen);
                // Buckets deleted while the watch was down pass as they were last seen.
                let mut changed: Vec<KeyValueBucket> = old
                    .iter()
                    .filter(|(id, _)| !relisted.contains_key(*id))
                    .map(|(_, (_, bucket))| bucket.clone())
                    .collect();
                changed.extend(
                    relisted
                        .iter()
                        .filter(|(id, (facts, _))| {
                            old.get(*id).map(|(seen, _)| seen) != Some(facts)
                        })
                        .map(|(_, (_, bucket))| bucket.clone()),
                );
                self.seen = relisted;
                changed
            }
            Event::Apply(bucket) => {
                let facts = EntryFacts::of(&bucket);
                let previous = self
                    .seen
                    .insert(identity(&bucket), (facts.clone(), bucket.clone()));
                if previous.is_some_and(|(seen, _)| seen == facts) {
                    Vec::new()
                } else {
                    vec![bucket]
                }
            }
            Event::Delete(bucket) => {
                self.seen.remove(&identity(&bucket));
                vec![bucket]
            }
        }
    }
}

/// Watches buckets into `store` (what entry reconciles read) and yields those whose
/// entries must be looked at again, after `store` has them.
pub fn for_entries(
    api: Api<KeyValueBucket>,
    store: Writer<KeyValueBucket>,
) -> impl Stream<Item = Result<KeyValueBucket, watcher::Error>> + Send + 'static {
    let mut filter = Filter::default();
    watcher(api, watcher::Config::default().any_semantic())
        .reflect(store)
        .map_ok(move |event| stream::iter(filter.pass(event).into_iter().map(Ok)))
        .try_flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(name: &str, generation: i64, ready: bool, last_revision: i64) -> KeyValueBucket {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "kvop.dev/v1alpha1",
            "kind": "KeyValueBucket",
            "metadata": {"name": name, "namespace": "apps", "uid": format!("uid-{name}"), "generation": generation},
            "spec": {},
            "status": {
                "bucket": "config",
                "lastRevision": last_revision,
                "conditions": [{
                    "type": READY,
                    "status": if ready { "True" } else { "False" },
                    "lastTransitionTime": "2026-11-26T00:00:00Z",
                    "reason": "Test",
                    "message": "",
                }],
            },
        }))
        .expect("a valid bucket")
    }

    fn passes(filter: &mut Filter, event: Event<KeyValueBucket>) -> usize {
        filter.pass(event).len()
    }

    #[test]
    fn statistics_refreshes_do_not_pass_but_what_entries_read_does() {
        let mut filter = Filter::default();
        assert_eq!(
            passes(&mut filter, Event::Apply(bucket("b", 1, false, 0))),
            1
        );
        assert_eq!(
            passes(&mut filter, Event::Apply(bucket("b", 1, false, 0))),
            0
        );
        assert_eq!(
            passes(&mut filter, Event::Apply(bucket("b", 1, true, 0))),
            1,
            "ready"
        );
        assert_eq!(
            passes(&mut filter, Event::Apply(bucket("b", 1, true, 10))),
            0,
            "statistics"
        );
        assert_eq!(
            passes(&mut filter, Event::Apply(bucket("b", 1, true, 20))),
            0,
            "statistics"
        );
        assert_eq!(
            passes(&mut filter, Event::Apply(bucket("b", 2, true, 20))),
            1,
            "spec"
        );
        assert_eq!(
            passes(&mut filter, Event::Delete(bucket("b", 2, true, 20))),
            1,
            "deleted"
        );
        assert_eq!(
            passes(&mut filter, Event::Apply(bucket("b", 2, true, 20))),
            1,
            "re-created"
        );
    }

    #[test]
    fn a_relist_passes_what_changed_or_went_away_when_it_ends() {
        let mut filter = Filter::default();
        filter.pass(Event::Apply(bucket("same", 1, true, 0)));
        filter.pass(Event::Apply(bucket("changed", 1, false, 0)));
        filter.pass(Event::Apply(bucket("deleted", 1, true, 0)));
        assert_eq!(passes(&mut filter, Event::Init), 0);
        assert_eq!(
            passes(&mut filter, Event::InitApply(bucket("same", 1, true, 5))),
            0
        );
        assert_eq!(
            passes(&mut filter, Event::InitApply(bucket("changed", 1, true, 0))),
            0
        );
        assert_eq!(
            passes(&mut filter, Event::InitApply(bucket("new", 1, true, 0))),
            0
        );
        let mut passed: Vec<String> = filter
            .pass(Event::InitDone)
            .iter()
            .map(|bucket| bucket.name_any())
            .collect();
        passed.sort();
        assert_eq!(passed, ["changed", "deleted", "new"]);
        assert_eq!(filter.seen.len(), 3);
    }
}
