//! The bucket changes its entries act on. The statistics refresh writes every bucket's
//! status each `--status-interval`; re-queuing all of a bucket's entries for that
//! reconciled every one of them, for nothing, 4–5 times while 10,000 of them were
//! being created (benchmark B5).

use std::collections::HashMap;

use futures::{Stream, TryStreamExt, future};
use kube::api::Api;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Resource, ResourceExt};

use super::status::READY;
use crate::api::{ConditionStatus, KeyValueBucket};

/// What an entry's reconcile reads from its bucket (see `entry::resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntryFacts {
    generation: Option<i64>,
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
/// changed (or it appeared or went away).
#[derive(Default)]
struct Filter {
    seen: HashMap<Identity, EntryFacts>,
    /// Built during a re-list; replaces `seen` when it ends, dropping buckets that went
    /// away while the watch was down.
    relisting: Option<HashMap<Identity, EntryFacts>>,
}

impl Filter {
    fn pass(&mut self, event: Event<KeyValueBucket>) -> Option<KeyValueBucket> {
        match event {
            Event::Init => {
                self.relisting = Some(HashMap::new());
                None
            }
            Event::InitDone => {
                if let Some(relisted) = self.relisting.take() {
                    self.seen = relisted;
                }
                None
            }
            Event::InitApply(bucket) => {
                let facts = EntryFacts::of(&bucket);
                let changed = self.seen.get(&identity(&bucket)) != Some(&facts);
                self.relisting
                    .get_or_insert_with(HashMap::new)
                    .insert(identity(&bucket), facts);
                changed.then_some(bucket)
            }
            Event::Apply(bucket) => {
                let facts = EntryFacts::of(&bucket);
                let previous = self.seen.insert(identity(&bucket), facts.clone());
                (previous != Some(facts)).then_some(bucket)
            }
            Event::Delete(bucket) => {
                self.seen.remove(&identity(&bucket));
                Some(bucket)
            }
        }
    }
}

/// Watches buckets and yields those whose entries must be looked at again.
pub fn for_entries(
    api: Api<KeyValueBucket>,
) -> impl Stream<Item = Result<KeyValueBucket, watcher::Error>> + Send + 'static {
    let mut filter = Filter::default();
    watcher(api, watcher::Config::default().any_semantic())
        .try_filter_map(move |event| future::ready(Ok(filter.pass(event))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(generation: i64, ready: bool, last_revision: i64) -> KeyValueBucket {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "kvop.dev/v1alpha1",
            "kind": "KeyValueBucket",
            "metadata": {"name": "config", "namespace": "apps", "uid": "u1", "generation": generation},
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

    #[test]
    fn statistics_refreshes_do_not_pass_but_what_entries_read_does() {
        let mut filter = Filter::default();
        assert!(filter.pass(Event::Apply(bucket(1, false, 0))).is_some());
        assert!(filter.pass(Event::Apply(bucket(1, false, 0))).is_none());
        assert!(
            filter.pass(Event::Apply(bucket(1, true, 0))).is_some(),
            "became ready"
        );
        assert!(
            filter.pass(Event::Apply(bucket(1, true, 10))).is_none(),
            "statistics only"
        );
        assert!(
            filter.pass(Event::Apply(bucket(1, true, 20))).is_none(),
            "statistics only"
        );
        assert!(
            filter.pass(Event::Apply(bucket(2, true, 20))).is_some(),
            "spec changed"
        );
        assert!(
            filter.pass(Event::Delete(bucket(2, true, 20))).is_some(),
            "deleted"
        );
        assert!(
            filter.pass(Event::Apply(bucket(2, true, 20))).is_some(),
            "created again"
        );
    }

    #[test]
    fn a_relist_passes_only_what_changed_and_forgets_what_went_away() {
        let mut filter = Filter::default();
        filter.pass(Event::Apply(bucket(1, true, 0)));
        let mut other = bucket(1, true, 0);
        other.metadata.name = Some("other".into());
        filter.pass(Event::Apply(other));
        filter.pass(Event::Init);
        assert!(filter.pass(Event::InitApply(bucket(1, true, 5))).is_none());
        filter.pass(Event::InitDone);
        assert_eq!(
            filter.seen.len(),
            1,
            "the bucket missing from the re-list is forgotten"
        );
        filter.pass(Event::Init);
        assert!(filter.pass(Event::InitApply(bucket(1, false, 5))).is_some());
        filter.pass(Event::InitDone);
    }
}
