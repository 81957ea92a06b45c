//! `kvop export`: manifests for buckets and keys that already exist, so that kvop can
//! adopt them, the keys as one `KeyValueEntry` each or (`--sets`) as one
//! `KeyValueEntrySet` per bucket. Steps: check the arguments → read each bucket (config and one sweep of
//! the matching keys) → name the objects → render → write everything or nothing.
//!
//! The output is the round trip of `kvop reconcile`: reconciling it against the same
//! server changes nothing, and applying it to an empty one recreates the buckets' config
//! and the live keys byte for byte.

mod bucket;
mod entries;
mod filters;
mod naming;
mod output;
mod render;
mod scalar;
mod set;

use std::path::PathBuf;

use futures::{StreamExt, TryStreamExt};

use crate::names;
use crate::nats::{ConnectionSettings, Doing, NatsError, Snapshot, connect, require_jetstream};
use crate::observed::Operation;
use crate::progress::KeysRead;

pub use bucket::{Unexportable, bucket_spec};
use entries::{Entries, Exported};
pub use filters::{FilterError, FilterProblem, PrefixError, check_filter, check_prefix};
pub use naming::assign_names;
use output::{BucketFile, Keys};
use render::{Meta, bucket_document};
use set::PlannedSet;

/// Buckets read at once.
const CONCURRENT_BUCKETS: usize = 4;

/// Everything `kvop export` was asked to do.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub buckets: Vec<String>,
    /// Key filters with NATS wildcards; empty means every key.
    pub keys: Vec<String>,
    pub json_values: bool,
    /// One `KeyValueEntrySet` per bucket instead of one `KeyValueEntry` per key.
    pub sets: bool,
    /// With `sets`: only the keys that start with this, as the set's `keyPrefix`.
    pub prefix: Option<String>,
    /// `metadata.namespace` of every object; absent, the files leave it out (`default`).
    pub namespace: Option<String>,
    /// A directory for one file per bucket; absent, stdout.
    pub output: Option<PathBuf>,
    pub force: bool,
    pub connection: ConnectionSettings,
}

/// Why an export wrote nothing (or, for `Output`, stopped writing).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ArgumentError>),
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error("no such bucket: {}", .0.join(", "))]
    UnknownBuckets(Vec<String>),
    #[error("bucket {bucket:?} cannot be exported as a manifest: {reason}")]
    Unexportable {
        bucket: String,
        #[source]
        reason: Unexportable,
    },
    #[error("refusing to overwrite {} (pass --force to replace)", .0.join(", "))]
    Exists(Vec<String>),
    #[error("writing {path}: {error}")]
    Output { path: String, error: std::io::Error },
    #[error(
        "bucket {bucket:?} has {keys} keys to export{}, more than the {} a KeyValueEntrySet may hold: export part of them (--prefix, --keys), or leave out --sets for one KeyValueEntry per key",
        .prefix.as_ref().map(|prefix| format!(" under prefix {prefix:?}")).unwrap_or_default(),
        crate::api::entry_set::MAX_SET_ITEMS
    )]
    TooManyForSet {
        bucket: String,
        keys: usize,
        prefix: Option<String>,
    },
}

/// One command-line argument of `kvop export` that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArgumentError {
    #[error("--bucket: {0}")]
    Bucket(#[source] names::BucketNameError),
    #[error(transparent)]
    Keys(#[from] FilterError),
    #[error("--namespace: {0}")]
    Namespace(#[source] names::ObjectNameError),
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    /// Without a set there is no `keyPrefix` to write: a filter is what `--keys` is for.
    #[error(
        "--prefix needs --sets: it becomes the KeyValueEntrySet's keyPrefix (to export only some keys as KeyValueEntry objects, use --keys, e.g. --keys 'app.>')"
    )]
    PrefixWithoutSets,
}

/// Runs an export; the manifests go to stdout or files, progress and notes to stderr.
pub async fn run(options: &ExportOptions) -> Result<(), ExportError> {
    let mut buckets = options.buckets.clone();
    buckets.sort();
    buckets.dedup();
    check_arguments(&buckets, options)?;
    // A prefix alone reads only its whole tokens; with --keys, those filters are read and
    // the keys cut to the prefix after.
    let filters: Vec<String> = match &options.prefix {
        Some(prefix) if options.keys.is_empty() => {
            filters::prefix_filter(prefix).into_iter().collect()
        }
        _ => options.keys.clone(),
    };
    let started = std::time::Instant::now();
    let connection = connect(&options.connection).await?;
    require_jetstream(&connection, &options.connection).await?;
    // Reading is what takes long (50,000 keys over a WAN): counted on a terminal.
    let progress = KeysRead::new();
    let snapshots: Result<Vec<Option<Snapshot>>, NatsError> =
        futures::stream::iter(buckets.iter().map(|name| {
            let handle = connection.bucket(name);
            let keys = progress.bucket(name);
            let filters = &filters;
            async move {
                handle
                    .snapshot(filters, &|| keys.tick())
                    .await
                    .map_err(|error| {
                        error.context(Doing::Reading {
                            bucket: name.clone(),
                        })
                    })
            }
        }))
        .buffered(CONCURRENT_BUCKETS)
        .try_collect()
        .await;
    // Cleared before anything else is printed: an error, the manifests, the summary.
    progress.finish();
    let snapshots = snapshots?;
    let unknown: Vec<String> = buckets
        .iter()
        .zip(&snapshots)
        .filter(|(_, snapshot)| snapshot.is_none())
        .map(|(name, _)| format!("{name:?}"))
        .collect();
    if !unknown.is_empty() {
        return Err(ExportError::UnknownBuckets(unknown));
    }
    let snapshots: Vec<(String, Snapshot)> = buckets
        .into_iter()
        .zip(snapshots.into_iter().flatten())
        .collect();
    let read = started.elapsed();
    let (files, summary) = prepare(&snapshots, options)?;
    let prepared = started.elapsed();
    match &options.output {
        None => output::to_stdout(&files)?,
        Some(dir) => {
            for path in output::to_dir(dir, &files, options.force)? {
                eprintln!("wrote {}", path.display());
            }
        }
    }
    tracing::debug!(
        read_ms = read.as_millis() as u64,
        prepare_ms = (prepared - read).as_millis() as u64,
        render_and_write_ms = (started.elapsed() - prepared).as_millis() as u64,
        "export finished"
    );
    // Said once everything is written: a refused or failed write exports nothing.
    for line in summary {
        eprintln!("{line}");
    }
    drop(files);
    // 100,000 keys are 200,000 allocations, which take tens of milliseconds to free: a
    // thread frees them while the process finishes, and the exit ends it if it is late.
    std::thread::spawn(move || drop(snapshots));
    Ok(())
}

fn check_arguments(buckets: &[String], options: &ExportOptions) -> Result<(), ExportError> {
    let mut problems: Vec<ArgumentError> = buckets
        .iter()
        .filter_map(|bucket| names::check_bucket_name(bucket).err())
        .map(ArgumentError::Bucket)
        .collect();
    problems.extend(
        options
            .keys
            .iter()
            .filter_map(|filter| check_filter(filter).err())
            .map(ArgumentError::Keys),
    );
    if let Some(namespace) = &options.namespace
        && let Err(error) = names::check_namespace(namespace)
    {
        problems.push(ArgumentError::Namespace(error));
    }
    match &options.prefix {
        Some(_) if !options.sets => problems.push(ArgumentError::PrefixWithoutSets),
        Some(prefix) => problems.extend(check_prefix(prefix).err().map(ArgumentError::Prefix)),
        None => {}
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ExportError::Invalid(problems))
    }
}

/// Each bucket's file (its `KeyValueBucket`, then its live keys in byte order, as
/// entries or one set), ready to be written, and the lines that summarize it on stderr.
/// Everything that can refuse an export is checked here, before the first byte is
/// written.
fn prepare<'a>(
    snapshots: &'a [(String, Snapshot)],
    options: &'a ExportOptions,
) -> Result<(Vec<BucketFile<'a>>, Vec<String>), ExportError> {
    let bucket_names = assign_names(snapshots.len(), |index, out| {
        out.push_str(&snapshots[index].0);
    });
    let live: Vec<Vec<(&str, &bytes::Bytes)>> = snapshots
        .iter()
        .map(|(_, snapshot)| live_keys(snapshot))
        .collect();
    let prefix = options.prefix.as_deref();
    // A set is named after its bucket, and its prefix: `bucket.prefix` is distinct for
    // every bucket (a bucket name has no '.') and for every prefix across exports.
    let set_text = |index: usize| match prefix {
        Some(prefix) => format!("{}.{prefix}", snapshots[index].0),
        None => snapshots[index].0.clone(),
    };
    let set_names = if options.sets {
        assign_names(snapshots.len(), |index, out| out.push_str(&set_text(index)))
    } else {
        naming::Names::default()
    };
    // Entries of every bucket share the namespace: one set of names for all of them.
    // A bucket name has no '.', so `bucket.key` is distinct for every (bucket, key).
    let firsts: Vec<usize> = live
        .iter()
        .scan(0, |first, keys| {
            let this = *first;
            *first += keys.len();
            Some(this)
        })
        .collect();
    // Sets name no key: 100,000 keys are not checked as names for nothing.
    let total = if options.sets {
        0
    } else {
        live.iter().map(Vec::len).sum()
    };
    let mut entry_names = assign_names(total, |index, out| {
        let bucket = firsts.partition_point(|first| *first <= index) - 1;
        out.push_str(&snapshots[bucket].0);
        out.push('.');
        out.push_str(live[bucket][index - firsts[bucket]].0);
    });
    let namespace = options.namespace.as_deref();
    let (mut files, mut summary) = (Vec::new(), Vec::new());
    for (index, ((name, snapshot), keys)) in snapshots.iter().zip(&live).enumerate() {
        let object_name = bucket_names.of(index, name).to_string();
        let spec =
            bucket_spec(name, &snapshot.config).map_err(|reason| ExportError::Unexportable {
                bucket: name.clone(),
                reason,
            })?;
        let mut notes = notes(snapshot);
        let deleted = snapshot.keys.len() - keys.len();
        let set = options
            .sets
            .then(|| {
                let text = set_text(index);
                let set_name = set_names.of(index, &text).to_string();
                PlannedSet::new(name, set_name, keys, prefix, &mut notes)
            })
            .transpose()?;
        let exported = set.as_ref().map_or(keys.len(), |set| set.items.len());
        let counted = format!(
            "{exported} key{}{}",
            if exported == 1 { "" } else { "s" },
            match (&set, prefix) {
                (Some(_), Some(prefix)) => format!(
                    " under prefix {}",
                    serde_json::to_string(prefix).unwrap_or_default()
                ),
                _ => String::new(),
            }
        );
        let mut head = format!(
            "# kvop export of bucket {}: {counted}.\n# Values are written in clear, secrets included: keep this file as safe as the bucket.\n",
            serde_json::to_string(name).unwrap_or_default(),
        );
        if let Some(set) = set.as_ref().filter(|set| set.is_written()) {
            head.push_str(&format!(
                "# The keys are items of KeyValueEntrySet {}: it never deletes a key it did not write (prune: Owned), nor any when deleted (deletionPolicy: Retain).\n",
                serde_json::to_string(&set.name).unwrap_or_default()
            ));
        }
        for note in &notes {
            head.push_str(&format!("# Not exported: {note}.\n"));
        }
        bucket_document(
            &mut head,
            &Meta {
                name: &object_name,
                namespace,
            },
            &spec,
        );
        let file_name = format!("{object_name}.yaml");
        summary.push(format!(
            "exported bucket {name:?}: {counted}{}{}",
            match &set {
                Some(set) if set.is_written() => format!(" as KeyValueEntrySet {:?}", set.name),
                _ => String::new(),
            },
            if deleted > 0 && exports_keys(&snapshot.config) {
                format!(
                    " ({deleted} deleted or purged key{} left out)",
                    if deleted == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            }
        ));
        for note in notes {
            summary.push(format!("note: bucket {name:?}: not exported: {note}"));
        }
        let keys = match set {
            Some(set) => {
                Keys::Set(set.render(&object_name, prefix, namespace, options.json_values))
            }
            None => Keys::Entries(Entries {
                bucket: name,
                bucket_ref: object_name,
                namespace,
                json_values: options.json_values,
                keys: keys
                    .iter()
                    .enumerate()
                    .map(|(offset, (key, value))| Exported {
                        key,
                        value,
                        hashed_name: entry_names.take(firsts[index] + offset),
                    })
                    .collect(),
            }),
        };
        files.push(BucketFile {
            file_name,
            head,
            keys,
        });
    }
    Ok((files, summary))
}

/// A bucket's live keys (deleted and purged ones left out) in byte order, or none for a
/// bucket whose keys come from elsewhere.
fn live_keys(snapshot: &Snapshot) -> Vec<(&str, &bytes::Bytes)> {
    if !exports_keys(&snapshot.config) {
        return Vec::new();
    }
    // `&str`, not `&String`: a comparison then reads the key's bytes without first
    // reading its `String` in the map, one cache miss less per comparison.
    let keys: Vec<(&str, &bytes::Bytes)> = snapshot
        .keys
        .iter()
        .filter(|(_, key)| key.operation == Operation::Put)
        .map(|(key, observed)| (key.as_str(), &observed.value))
        .collect();
    sort_by_key_text(keys)
}

/// Below this many keys one thread sorts them.
const PARALLEL_SORT_FROM: usize = 10_000;

/// Sorts by key (distinct, so an unstable sort gives the one order), a large set as two
/// halves on two threads, then merged: sorting 100,000 keys is tens of milliseconds.
fn sort_by_key_text<'a>(
    mut keys: Vec<(&'a str, &'a bytes::Bytes)>,
) -> Vec<(&'a str, &'a bytes::Bytes)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if keys.len() < PARALLEL_SORT_FROM || threads < 2 {
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        return keys;
    }
    let middle = keys.len() / 2;
    let (low, high) = keys.split_at_mut(middle);
    std::thread::scope(|scope| {
        scope.spawn(|| low.sort_unstable_by(|a, b| a.0.cmp(b.0)));
        high.sort_unstable_by(|a, b| a.0.cmp(b.0));
    });
    let (low, high) = keys.split_at(middle);
    let mut merged = Vec::with_capacity(keys.len());
    let (mut i, mut j) = (0, 0);
    while i < low.len() && j < high.len() {
        if low[i].0 < high[j].0 {
            merged.push(low[i]);
            i += 1;
        } else {
            merged.push(high[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&low[i..]);
    merged.extend_from_slice(&high[j..]);
    merged
}

/// Whether a bucket's keys are its own: a mirror's and a sourced bucket's come from
/// their origins (export those).
fn exports_keys(config: &crate::desired::BucketConfig) -> bool {
    config.mirror.is_none() && config.sources.is_empty()
}

fn notes(snapshot: &Snapshot) -> Vec<String> {
    let mut notes = snapshot.unexpressible.clone();
    if snapshot.config.mirror.is_some() {
        notes.push("keys (a mirror's keys are its origin's: export the origin bucket)".into());
    } else if !snapshot.config.sources.is_empty() {
        notes.push(
            "keys (a sourced bucket's keys come from its sources: export those buckets)".into(),
        );
    }
    notes
}

#[cfg(test)]
mod set_tests;
#[cfg(test)]
mod tests;
