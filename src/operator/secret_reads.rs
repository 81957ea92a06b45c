//! The Secrets each object read, and which version: recorded by the reconciles that read
//! them (a `valueFrom`, a `spec.connection`), so that `secret_refresh` can re-queue
//! exactly the readers of a Secret that changed since. Only names and resource
//! versions, never a Secret's contents.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use kube::runtime::reflector::ObjectRef;

use crate::api::{KeyValueBucket, KeyValueEntry, KeyValueEntrySet};

/// A Secret by namespace and name.
pub(super) type SecretRef = (String, String);

/// An object that read a Secret, re-queued when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reader {
    Bucket(ObjectRef<KeyValueBucket>),
    Entry(ObjectRef<KeyValueEntry>),
    EntrySet(ObjectRef<KeyValueEntrySet>),
}

/// The version of each Secret that each reader last read (`None`: it did not exist),
/// so that a rotation between a read and the next check is not missed, and only the
/// readers that read an older version are re-queued.
#[derive(Default)]
pub struct ReadVersions {
    read: Mutex<HashMap<SecretRef, HashMap<Reader, Option<String>>>>,
}

impl ReadVersions {
    /// Records what `reader` read of `namespace/name`.
    pub fn record(&self, namespace: &str, name: &str, reader: Reader, version: Option<String>) {
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        read.entry((namespace.to_string(), name.to_string()))
            .or_default()
            .insert(reader, version);
    }

    /// The Secrets read so far, forgetting those no object references any more.
    pub(super) fn secrets(&self, keep: &BTreeSet<SecretRef>) -> Vec<SecretRef> {
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        read.retain(|secret, _| keep.contains(secret));
        read.keys().cloned().collect()
    }

    /// The readers of `secret` that read another version than `current`.
    pub(super) fn stale(&self, secret: &SecretRef, current: &Option<String>) -> Vec<Reader> {
        let read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        read.get(secret)
            .map(|readers| {
                readers
                    .iter()
                    .filter(|(_, version)| *version != current)
                    .map(|(reader, _)| reader.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two readers of one Secret that read it at different times: only the one that
    /// read an older version than the current one is stale (a later reader's read must
    /// not hide an earlier one's).
    #[test]
    fn only_readers_of_an_older_version_are_stale() {
        let versions = ReadVersions::default();
        let bucket = Reader::Bucket(ObjectRef::new("b").within("ns"));
        let entry = Reader::Entry(ObjectRef::new("e").within("ns"));
        versions.record("ns", "creds", bucket.clone(), Some("2".into()));
        versions.record("ns", "creds", entry.clone(), Some("3".into()));
        let secret = ("ns".to_string(), "creds".to_string());
        assert_eq!(
            versions.stale(&secret, &Some("3".into())),
            std::slice::from_ref(&bucket)
        );
        let mut both = versions.stale(&secret, &None);
        both.sort_by_key(|reader| matches!(reader, Reader::Entry(_)));
        assert_eq!(both, [bucket, entry]);
        assert!(
            versions.secrets(&BTreeSet::new()).is_empty(),
            "unreferenced: forgotten"
        );
    }
}
