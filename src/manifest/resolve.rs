//! Rules that span documents: references, duplicates and size limits.

use std::collections::HashMap;

use super::LoadError;
use super::yaml::Document;
use crate::desired::{Desired, DesiredBucket, DesiredEntry, ObjectRef, Origin};
use crate::ownership;

/// An entry's `bucketRef`, with its document to find the field's line in if needed.
pub(super) struct BucketRef<'a> {
    pub namespace: String,
    pub name: String,
    pub document: &'a Document,
}

/// Resolves each entry's `bucketRef` to its NATS bucket and checks duplicates, mirrors
/// and declared value size limits.
pub(super) fn resolve(
    buckets: &[DesiredBucket],
    entries: &mut [DesiredEntry],
    bucket_refs: &[BucketRef],
    invalid_buckets: &[(ObjectRef, Origin)],
    manager: &str,
) -> Vec<LoadError> {
    let mut errors = Vec::new();
    let mut by_object: HashMap<(String, String), usize> = HashMap::new();
    let mut by_bucket: HashMap<String, usize> = HashMap::new();
    for (index, bucket) in buckets.iter().enumerate() {
        let object = (bucket.owner.namespace.clone(), bucket.owner.name.clone());
        if let Some(first) = by_object.insert(object, index) {
            errors.push(duplicate(
                &bucket.origin,
                &format!("KeyValueBucket {} is declared twice", bucket.owner),
                &buckets[first].origin,
            ));
        }
        if let Some(first) = by_bucket.insert(bucket.name.clone(), index) {
            errors.push(duplicate(
                &bucket.origin,
                &format!("bucket {:?} is declared twice", bucket.name),
                &buckets[first].origin,
            ));
        }
    }
    let mut entry_objects: HashMap<ObjectRef, Origin> = HashMap::new();
    let mut keys: HashMap<(String, String), Origin> = HashMap::new();
    for (
        entry,
        BucketRef {
            namespace,
            name: reference,
            document,
        },
    ) in entries.iter_mut().zip(bucket_refs)
    {
        // Only a problem needs the field's line, and finding it parses the document again.
        let at_ref = |entry: &DesiredEntry| Origin {
            source: entry.origin.source.clone(),
            line: document.line_of("spec.bucketRef.name"),
        };
        if let Some(first) = entry_objects.insert(entry.owner.clone(), entry.origin.clone()) {
            errors.push(duplicate(
                &entry.origin,
                &format!("KeyValueEntry {} is declared twice", entry.owner),
                &first,
            ));
        }
        let Some(bucket) = by_object
            .get(&(namespace.clone(), reference.clone()))
            .map(|index| &buckets[*index])
        else {
            let invalid = invalid_buckets
                .iter()
                .find(|(owner, _)| owner.namespace == *namespace && owner.name == *reference);
            let message = match invalid {
                Some((_, origin)) => format!(
                    "the KeyValueBucket {reference:?} in namespace {namespace:?} is declared at {origin} but invalid (see its problems)"
                ),
                None => format!(
                    "no KeyValueBucket named {reference:?} in namespace {namespace:?} is declared in the manifests"
                ),
            };
            errors.push(LoadError {
                origin: at_ref(entry),
                field: Some("spec.bucketRef.name".into()),
                message,
            });
            continue;
        };
        entry.bucket = bucket.name.clone();
        if bucket.config.mirror.is_some() {
            errors.push(LoadError {
                origin: at_ref(entry),
                field: Some("spec.bucketRef.name".into()),
                message: format!(
                    "bucket {:?} is a read-only mirror; declare the entry on the origin bucket",
                    bucket.name
                ),
            });
            continue;
        }
        if let Some(first) = keys.insert(
            (entry.bucket.clone(), entry.key.clone()),
            entry.origin.clone(),
        ) {
            errors.push(duplicate(
                &entry.origin,
                &format!(
                    "key {:?} of bucket {:?} is declared twice",
                    entry.key, entry.bucket
                ),
                &first,
            ));
        }
        let limit = bucket.config.max_value_size;
        let total =
            entry.value.len() + ownership::write_overhead(manager, &entry.owner.to_string());
        if limit >= 0 && total as i64 > limit {
            errors.push(LoadError {
                    origin: entry.origin.clone(),
                    field: Some("spec".into()),
                    message: format!(
                        "the value is {} bytes, plus {} bytes of headers, over the maxValueSize of bucket {:?} ({limit} bytes)",
                        entry.value.len(),
                        total - entry.value.len(),
                        bucket.name
                    ),
                });
        }
    }
    errors
}

/// Checks values against limits only the server knows: its `max_payload`, and the
/// `max_value_size` of buckets kvop observes but does not manage.
pub fn check_value_sizes(
    desired: &Desired,
    manager: &str,
    max_payload: usize,
    observed_limit: impl Fn(&str) -> Option<i64>,
) -> Vec<LoadError> {
    let mut errors = Vec::new();
    for entry in &desired.entries {
        let headers = ownership::write_overhead(manager, &entry.owner.to_string());
        let total = entry.value.len() + headers;
        let too_big = |limit: String| LoadError {
            origin: entry.origin.clone(),
            field: Some("spec".into()),
            message: format!(
                "the value is {} bytes, plus {headers} bytes of headers, over {limit}",
                entry.value.len()
            ),
        };
        if total > max_payload {
            errors.push(too_big(format!(
                "the server's max_payload ({max_payload} bytes)"
            )));
        } else if let Some(limit) =
            observed_limit(&entry.bucket).filter(|limit| *limit >= 0 && total as i64 > *limit)
        {
            errors.push(too_big(format!(
                "the max value size of bucket {:?} ({limit} bytes)",
                entry.bucket
            )));
        }
    }
    errors
}

fn duplicate(origin: &Origin, what: &str, first: &Origin) -> LoadError {
    LoadError {
        origin: origin.clone(),
        field: None,
        message: format!("{what}: first declared at {first}"),
    }
}
