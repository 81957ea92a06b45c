//! `KeyValueEntrySet` manifests: each set, once every file is read, becomes its keys,
//! from its inline items and the ConfigMap and Secret manifests of the same files, by
//! the rules the operator follows too (`spec::entry_set`). A problem names the set's
//! file, the field's line and the field; a value is never quoted.

use std::sync::Arc;

use bytes::Bytes;

use super::LoadError;
use super::value_blocks::ValueBlocks;
use super::value_sources::{SourceKind, ValueSources};
use super::yaml::FieldLines;
use crate::api::KeyValueEntrySet;
use crate::desired::{DesiredEntry, DesiredSet, ObjectRef, Origin};
use crate::spec::FieldProblem;
use crate::spec::entry_set::{self, ObjectKind, SetObjects};

/// A set as read from its document, expanded once every file is loaded.
pub(super) struct PendingSet {
    pub owner: ObjectRef,
    pub origin: Origin,
    pub resource: KeyValueEntrySet,
    pub fields: FieldLines,
    /// The bucket name its `bucketRef` gives, shared with the other references to it.
    pub bucket_ref: Arc<str>,
}

/// A set whose keys were added to the entries: `entries` is their range there. Its
/// `bucketRef` is resolved with the entries'.
pub(super) struct ExpandedSet {
    pub set: DesiredSet,
    pub fields: FieldLines,
    pub entries: std::ops::Range<usize>,
}

/// Adds every set's keys to `entries` (owned by the set), reading its objects from
/// `sources`. Returns the sets that expanded and the problems of those that did not.
pub(super) fn expand(
    pending: Vec<PendingSet>,
    sources: &mut ValueSources,
    values: &mut ValueBlocks,
    entries: &mut Vec<DesiredEntry>,
) -> (Vec<ExpandedSet>, Vec<LoadError>) {
    let mut expanded = Vec::with_capacity(pending.len());
    let mut errors = Vec::new();
    for PendingSet {
        owner,
        origin,
        resource,
        fields,
        bucket_ref,
    } in pending
    {
        let at = |problem: FieldProblem| LoadError {
            origin: Origin {
                source: origin.source.clone(),
                line: fields.line_of(&problem.field),
            },
            field: Some(problem.field),
            message: problem.message,
        };
        let spec = &resource.spec;
        let set = entry_set::desired_set(
            owner.clone(),
            origin.clone(),
            spec,
            resource.metadata.annotations.as_ref(),
            bucket_ref,
        );
        let mut objects = FileObjects {
            sources: &mut *sources,
            namespace: &owner.namespace,
        };
        let keys = entry_set::set_keys(spec, &mut objects);
        let (set, keys) = match (set, keys) {
            (Ok(set), Ok(keys)) => (set, keys),
            (set, keys) => {
                let problems = set.err().into_iter().chain(keys.err()).flatten();
                errors.extend(problems.map(at));
                continue;
            }
        };
        let first = entries.len();
        entries.extend(keys.into_iter().map(|key| DesiredEntry {
            owner: owner.clone(),
            // The set's line: a key's own line is looked up only for a problem.
            origin: origin.clone(),
            bucket: set.bucket.clone(),
            key: key.key.into(),
            value: values.keep(&key.value),
            update_policy: spec.update_policy,
            deletion_policy: spec.deletion_policy,
            take_over: None,
            sensitive: key.sensitive,
        }));
        expanded.push(ExpandedSet {
            set,
            fields,
            entries: first..entries.len(),
        });
    }
    (expanded, errors)
}

/// The ConfigMaps and Secrets of the files, in one set's namespace.
struct FileObjects<'a> {
    sources: &'a mut ValueSources,
    namespace: &'a str,
}

impl SetObjects for FileObjects<'_> {
    fn read(&mut self, kind: ObjectKind, name: &str) -> Result<Vec<(String, Bytes)>, String> {
        let kind = match kind {
            ObjectKind::ConfigMap => SourceKind::ConfigMap,
            ObjectKind::Secret => SourceKind::Secret,
        };
        let keys = self.sources.read_object(kind, self.namespace, name)?;
        Ok(keys
            .into_iter()
            .map(|(key, value)| (key, Bytes::from(value)))
            .collect())
    }
}
