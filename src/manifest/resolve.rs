//! Rules that span documents: references, duplicates and size limits.

use std::collections::HashMap;
use std::sync::Arc;

use super::LoadError;
use super::entry_sets::ExpandedSet;
use super::writable::{Known, Limits, check_writable};
use super::yaml::FieldLines;
use crate::desired::{DesiredBucket, DesiredEntry, ObjectRef, Origin};

/// An entry's `bucketRef` (in the entry's namespace), with where its document's fields
/// are, to find the field's line if needed. A load holds one per entry until the
/// references are resolved: the name is shared by every entry of a run that gives it.
pub(super) struct BucketRef {
    pub name: Arc<str>,
    pub fields: FieldLines,
}

/// An entry with problems of its own, whose `bucketRef` is still checked.
pub(super) struct InvalidEntry {
    pub origin: Origin,
    pub namespace: String,
    pub reference: BucketRef,
}

/// Resolves each entry's and set's `bucketRef` to its NATS bucket and checks duplicates
/// and mirrors. A set's keys follow the entries declared one by one, in its range. Sizes wait for `pass::check_against_server`: only a value that will be written
/// can be too large, and that depends on what the bucket already holds.
pub(super) fn resolve(
    buckets: &[DesiredBucket],
    entries: &mut [DesiredEntry],
    bucket_refs: &[BucketRef],
    invalid_buckets: &[(ObjectRef, Origin)],
    invalid_entries: &[InvalidEntry],
    sets: &mut [ExpandedSet],
    manager: &str,
) -> Vec<LoadError> {
    let mut errors = Vec::new();
    let mut by_object: HashMap<(&str, &str), usize> = HashMap::new();
    let mut by_bucket: HashMap<&str, usize> = HashMap::new();
    for (index, bucket) in buckets.iter().enumerate() {
        let object = (bucket.owner.namespace.as_str(), bucket.owner.name.as_str());
        if let Some(first) = by_object.insert(object, index) {
            errors.push(duplicate(
                &bucket.origin,
                &format!("KeyValueBucket {} is declared twice", bucket.owner),
                &buckets[first].origin,
            ));
        }
        if let Some(first) = by_bucket.insert(&bucket.name, index) {
            errors.push(duplicate(
                &bucket.origin,
                &format!("bucket {:?} is declared twice", bucket.name),
                &buckets[first].origin,
            ));
        }
    }
    // An entry with problems of its own is still told of a bucketRef that leads nowhere:
    // every problem at once.
    for InvalidEntry {
        origin,
        namespace,
        reference,
    } in invalid_entries
    {
        if let Err(message) = find_bucket(
            buckets,
            &by_object,
            invalid_buckets,
            namespace,
            &reference.name,
        ) {
            errors.push(LoadError {
                origin: Origin {
                    source: origin.source.clone(),
                    line: reference.fields.line_of("spec.bucketRef.name"),
                },
                field: Some("spec.bucketRef.name".into()),
                message: message.to_string(),
            });
        }
    }
    // Keyed by borrowed names, not copies: these maps hold every entry of a large load.
    let count = entries.len();
    let mut entry_objects: HashMap<&ObjectRef, &Origin> = HashMap::with_capacity(count);
    let mut keys: HashMap<(&str, &str), &Origin> = HashMap::with_capacity(count);
    // Each entry's bucket, set once every entry is checked (the maps borrow the entries).
    let mut resolved: Vec<Option<&DesiredBucket>> = Vec::with_capacity(count);
    // Each set's bucket, resolved once for all its keys: one problem, not one per key.
    let mut set_buckets: Vec<Option<&DesiredBucket>> = Vec::with_capacity(sets.len());
    let mut set_objects: HashMap<&ObjectRef, &Origin> = HashMap::with_capacity(sets.len());
    for expanded in sets.iter() {
        let set = &expanded.set;
        if let Some(first) = set_objects.insert(&set.owner, &set.origin) {
            errors.push(duplicate(
                &set.origin,
                &format!(
                    "KeyValueEntrySet {}/{} is declared twice",
                    set.owner.namespace, set.owner.name
                ),
                first,
            ));
        }
        match find_bucket(
            buckets,
            &by_object,
            invalid_buckets,
            &set.owner.namespace,
            &set.bucket,
        ) {
            Ok(bucket) => set_buckets.push(Some(bucket)),
            Err(message) => {
                errors.push(LoadError {
                    origin: Origin {
                        source: set.origin.source.clone(),
                        line: expanded.fields.line_of("spec.bucketRef.name"),
                    },
                    field: Some("spec.bucketRef.name".into()),
                    message: message.to_string(),
                });
                set_buckets.push(None);
            }
        }
    }
    for (expanded, bucket) in sets.iter_mut().zip(&set_buckets) {
        if let Some(bucket) = bucket {
            expanded.set.bucket = Arc::from(bucket.name.as_str());
        }
    }
    let mut set_of_entry = sets
        .iter()
        .zip(&set_buckets)
        .flat_map(|(expanded, bucket)| expanded.entries.clone().map(move |_| (expanded, *bucket)));
    for (index, entry) in entries.iter().enumerate() {
        resolved.push(None);
        let declared = if let Some(reference) = bucket_refs.get(index) {
            Declared::Entry(reference)
        } else {
            match set_of_entry.next() {
                Some((expanded, Some(bucket))) => Declared::Set(expanded, bucket),
                // Its set's bucketRef leads nowhere: said once, above.
                Some((_, None)) | None => continue,
            }
        };
        if let Declared::Entry(_) = declared
            && let Some(first) = entry_objects.insert(&entry.owner, &entry.origin)
        {
            errors.push(duplicate(
                &entry.origin,
                &format!("KeyValueEntry {} is declared twice", entry.owner),
                first,
            ));
        }
        // Only a problem needs the field's line, and finding it parses the document again.
        let at_ref = |entry: &DesiredEntry| Origin {
            source: entry.origin.source.clone(),
            line: declared.fields().line_of("spec.bucketRef.name"),
        };
        let bucket = match declared {
            Declared::Set(_, bucket) => bucket,
            Declared::Entry(reference) => {
                let namespace = &entry.owner.namespace;
                match find_bucket(
                    buckets,
                    &by_object,
                    invalid_buckets,
                    namespace,
                    &reference.name,
                ) {
                    Ok(bucket) => bucket,
                    Err(message) => {
                        errors.push(LoadError {
                            origin: at_ref(entry),
                            field: Some("spec.bucketRef.name".into()),
                            message: message.to_string(),
                        });
                        continue;
                    }
                }
            }
        };
        *resolved.last_mut().expect("pushed above") = Some(bucket);
        let limits = Limits {
            bucket: &bucket.name,
            mirror: bucket.config.mirror.is_some().then_some(Known::Declared),
            max_value_size: -1,
            max_payload: None,
        };
        let writable = check_writable(entry, &limits, manager);
        if let Err(unwritable) = &writable
            && unwritable.field == "spec.bucketRef.name"
        {
            // A mirror refuses every key of a set alike: said once, for its first.
            let first_of_set = match declared {
                Declared::Set(expanded, _) => expanded.entries.start == index,
                Declared::Entry(_) => true,
            };
            if first_of_set {
                errors.push(LoadError {
                    origin: at_ref(entry),
                    field: Some(unwritable.field.into()),
                    message: unwritable.message.clone(),
                });
            }
            continue;
        }
        if let Some(first) = keys.insert((&bucket.name, &entry.key), &entry.origin) {
            let mut error = duplicate(
                &entry.origin,
                &format!(
                    "key {:?} of bucket {:?} is declared twice",
                    entry.key, bucket.name
                ),
                first,
            );
            // Which object declares it here: the line of a set names only the set.
            error.message.push_str(&format!(
                "; here by {}: kvop never lets two declarations fight over a key",
                declared.describe(entry)
            ));
            errors.push(error);
        }
        if let Err(unwritable) = writable {
            errors.push(LoadError {
                origin: entry.origin.clone(),
                field: Some(unwritable.field.into()),
                message: unwritable.message,
            });
        }
    }
    // One shared name per bucket, not a copy per entry.
    let mut names: HashMap<&str, Arc<str>> = HashMap::new();
    for (entry, bucket) in entries.iter_mut().zip(resolved) {
        if let Some(bucket) = bucket {
            entry.bucket = names
                .entry(&bucket.name)
                .or_insert_with(|| Arc::from(bucket.name.as_str()))
                .clone();
        }
    }
    errors
}

/// The bucket `namespace/reference` names, or why there is none to write to.
fn find_bucket<'b>(
    buckets: &'b [DesiredBucket],
    by_object: &HashMap<(&str, &str), usize>,
    invalid_buckets: &[(ObjectRef, Origin)],
    namespace: &str,
    reference: &str,
) -> Result<&'b DesiredBucket, Unresolved> {
    if let Some(index) = by_object.get(&(namespace, reference)) {
        return Ok(&buckets[*index]);
    }
    let invalid = invalid_buckets
        .iter()
        .find(|(owner, _)| owner.namespace == namespace && owner.name == reference);
    let (namespace, name) = (namespace.to_string(), reference.to_string());
    Err(match invalid {
        Some((_, origin)) => Unresolved::Invalid {
            namespace,
            name,
            at: origin.clone(),
        },
        None => Unresolved::Undeclared { namespace, name },
    })
}

/// Why a `bucketRef` leads to no bucket.
#[derive(Debug, Clone, thiserror::Error)]
enum Unresolved {
    #[error(
        "the KeyValueBucket {name:?} in namespace {namespace:?} is declared at {at} but invalid (see its problems)"
    )]
    Invalid {
        namespace: String,
        name: String,
        at: Origin,
    },
    #[error(
        "no KeyValueBucket named {name:?} in namespace {namespace:?} is declared in the manifests"
    )]
    Undeclared { namespace: String, name: String },
}

fn duplicate(origin: &Origin, what: &str, first: &Origin) -> LoadError {
    LoadError {
        origin: origin.clone(),
        field: None,
        message: format!("{what}: first declared at {first}"),
    }
}

/// What declared a key: an entry and its `bucketRef`, or a set.
#[derive(Clone, Copy)]
enum Declared<'a> {
    Entry(&'a BucketRef),
    Set(&'a ExpandedSet, &'a DesiredBucket),
}

impl Declared<'_> {
    fn fields(&self) -> &FieldLines {
        match self {
            Declared::Entry(reference) => &reference.fields,
            Declared::Set(expanded, _) => &expanded.fields,
        }
    }

    /// Who declares the key, for a duplicate's message.
    fn describe(&self, entry: &DesiredEntry) -> String {
        match self {
            Declared::Entry(_) => format!("KeyValueEntry {}", entry.owner),
            Declared::Set(expanded, _) => expanded.set.owner.to_string(),
        }
    }
}
