//! The `kvop_objects{kind,health}` gauge, counted from the controllers' stores when
//! `/metrics` is read: no bookkeeping per reconcile to drift from what the stores hold.

use std::collections::HashMap;

use kube::runtime::reflector::Store;

use super::status::{Reported, health_label};
use crate::api::{KeyValueBucket, KeyValueEntry, KeyValueEntrySet};

/// The `kvop_objects` gauge's counter: every object in the controllers' stores, by
/// kind and [`health_label`].
pub fn object_counts(
    buckets: Store<KeyValueBucket>,
    entries: Store<KeyValueEntry>,
    sets: Store<KeyValueEntrySet>,
) -> crate::metrics::ObjectCounter {
    Box::new(move || {
        let mut counts: HashMap<(&'static str, &'static str), i64> = HashMap::new();
        let mut count = |kind, health| *counts.entry((kind, health)).or_default() += 1;
        buckets
            .state()
            .iter()
            .for_each(|object| count(KeyValueBucket::KIND, health_label(&**object)));
        entries
            .state()
            .iter()
            .for_each(|object| count(KeyValueEntry::KIND, health_label(&**object)));
        sets.state()
            .iter()
            .for_each(|object| count(KeyValueEntrySet::KIND, health_label(&**object)));
        counts
            .into_iter()
            .map(|((kind, health), count)| (kind, health, count))
            .collect()
    })
}
