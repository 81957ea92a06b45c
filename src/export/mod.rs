//! `kvop export`: manifests for buckets and keys that already exist, so that kvop can
//! adopt them. Steps: check the arguments → read each bucket (config and one sweep of
//! the matching keys) → name the objects → render → write everything or nothing.
//!
//! The output is the round trip of `kvop reconcile`: reconciling it against the same
//! server changes nothing, and applying it to an empty one recreates the buckets' config
//! and the live keys byte for byte.

mod bucket;
mod filters;
mod naming;
mod output;
mod render;
mod scalar;

use std::path::PathBuf;

use futures::{StreamExt, TryStreamExt};

use crate::manifest::yaml::parse_documents;
use crate::names;
use crate::nats::{ConnectionSettings, NatsError, Snapshot, connect, require_jetstream};
use crate::observed::Operation;
use crate::spec::canonical_json;

pub use bucket::bucket_spec;
pub use filters::check_filter;
pub use naming::assign_names;
use output::BucketFile;
use render::{Meta, ValueField, bucket_document, entry_document};

/// Buckets read at once.
const CONCURRENT_BUCKETS: usize = 4;

/// Everything `kvop export` was asked to do.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub buckets: Vec<String>,
    /// Key filters with NATS wildcards; empty means every key.
    pub keys: Vec<String>,
    pub json_values: bool,
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
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error("no such bucket: {}", .0.join(", "))]
    UnknownBuckets(Vec<String>),
    #[error("bucket {bucket:?} cannot be exported as a manifest: {reason}")]
    Unexportable { bucket: String, reason: String },
    #[error("refusing to overwrite {} (pass --force to replace)", .0.join(", "))]
    Exists(Vec<String>),
    #[error("writing {path}: {error}")]
    Output { path: String, error: std::io::Error },
}

/// Runs an export; the manifests go to stdout or files, progress and notes to stderr.
pub async fn run(options: &ExportOptions) -> Result<(), ExportError> {
    let mut buckets = options.buckets.clone();
    buckets.sort();
    buckets.dedup();
    check_arguments(&buckets, options)?;
    let connection = connect(&options.connection).await?;
    require_jetstream(&connection, &options.connection).await?;
    let snapshots: Vec<Option<Snapshot>> = futures::stream::iter(buckets.iter().map(|name| {
        let handle = connection.bucket(name);
        async move {
            handle
                .snapshot(&options.keys)
                .await
                .map_err(|error| error.context(&format!("reading bucket {name:?}")))
        }
    }))
    .buffered(CONCURRENT_BUCKETS)
    .try_collect()
    .await?;
    let unknown: Vec<String> = buckets
        .iter()
        .zip(&snapshots)
        .filter(|(_, snapshot)| snapshot.is_none())
        .map(|(name, _)| format!("{name:?}"))
        .collect();
    if !unknown.is_empty() {
        return Err(ExportError::UnknownBuckets(unknown));
    }
    let snapshots: Vec<(&String, Snapshot)> = buckets
        .iter()
        .zip(snapshots.into_iter().flatten())
        .collect();
    let files = render_all(&snapshots, options)?;
    match &options.output {
        None => output::to_stdout(&files)?,
        Some(dir) => {
            for path in output::to_dir(dir, &files, options.force)? {
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

fn check_arguments(buckets: &[String], options: &ExportOptions) -> Result<(), ExportError> {
    let mut problems: Vec<String> = buckets
        .iter()
        .filter_map(|bucket| names::check_bucket_name(bucket).err())
        .map(|message| format!("--bucket: {message}"))
        .collect();
    problems.extend(
        options
            .keys
            .iter()
            .filter_map(|filter| check_filter(filter).err()),
    );
    if let Some(namespace) = &options.namespace
        && let Err(message) = names::check_namespace(namespace)
    {
        problems.push(format!("--namespace: {message}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ExportError::Invalid(problems.join("\n")))
    }
}

/// Each bucket's file: its `KeyValueBucket`, then its live keys in byte order.
fn render_all(
    snapshots: &[(&String, Snapshot)],
    options: &ExportOptions,
) -> Result<Vec<BucketFile>, ExportError> {
    let bucket_names = assign_names(
        &snapshots
            .iter()
            .map(|(name, _)| (*name).clone())
            .collect::<Vec<_>>(),
    );
    // Entries of every bucket share the namespace: one set of names for all of them.
    // A bucket name has no '.', so `bucket.key` is distinct for every (bucket, key).
    let mut live: Vec<Vec<(&String, &bytes::Bytes)>> = Vec::new();
    let mut entry_texts = Vec::new();
    for (name, snapshot) in snapshots {
        let mut keys: Vec<(&String, &bytes::Bytes)> = if exports_keys(&snapshot.config) {
            snapshot
                .keys
                .iter()
                .filter(|(_, key)| key.operation == Operation::Put)
                .map(|(key, observed)| (key, &observed.value))
                .collect()
        } else {
            Vec::new()
        };
        keys.sort_by(|a, b| a.0.cmp(b.0));
        entry_texts.extend(keys.iter().map(|(key, _)| format!("{name}.{key}")));
        live.push(keys);
    }
    let mut entry_names = assign_names(&entry_texts).into_iter();
    let mut files = Vec::new();
    for (((name, snapshot), object_name), keys) in snapshots.iter().zip(&bucket_names).zip(&live) {
        let spec =
            bucket_spec(name, &snapshot.config).map_err(|reason| ExportError::Unexportable {
                bucket: (*name).clone(),
                reason,
            })?;
        let notes = notes(snapshot);
        let deleted = snapshot.keys.len() - keys.len();
        let mut text = format!(
            "# kvop export of bucket {}: {} key{}.\n# Values are written in clear, secrets included: keep this file as safe as the bucket.\n",
            serde_json::to_string(name).unwrap_or_default(),
            keys.len(),
            if keys.len() == 1 { "" } else { "s" }
        );
        for note in &notes {
            text.push_str(&format!("# Not exported: {note}.\n"));
        }
        let namespace = options.namespace.as_deref();
        bucket_document(
            &mut text,
            &Meta {
                name: object_name,
                namespace,
            },
            &spec,
        );
        let mut json_checks = Vec::new();
        for (key, value) in keys {
            let entry_name = entry_names.next().unwrap_or_default();
            let field = ValueField::of(value, options.json_values);
            let start = text.len();
            text.push_str("---\n");
            entry_document(
                &mut text,
                &Meta {
                    name: &entry_name,
                    namespace,
                },
                object_name,
                key,
                &field,
            );
            if matches!(field, ValueField::Json(_)) {
                json_checks.push((start, text.len(), entry_name, *key, *value));
            }
        }
        if !json_checks.is_empty() {
            text = keep_exact_json(text, &json_checks, object_name, namespace);
        }
        eprintln!(
            "exported bucket {name:?}: {} key{}{}",
            keys.len(),
            if keys.len() == 1 { "" } else { "s" },
            if deleted > 0 && exports_keys(&snapshot.config) {
                format!(
                    " ({deleted} deleted or purged key{} left out)",
                    if deleted == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            }
        );
        for note in notes {
            eprintln!("note: bucket {name:?}: not exported: {note}");
        }
        files.push(BucketFile {
            file_name: format!("{object_name}.yaml"),
            text,
        });
    }
    Ok(files)
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

/// Reads the `jsonValue` documents back with kvop's own YAML reader and writes any that
/// would not store the same bytes (a number YAML reads differently) as `value` instead.
fn keep_exact_json(
    text: String,
    checks: &[(usize, usize, String, &String, &bytes::Bytes)],
    bucket_ref: &str,
    namespace: Option<&str>,
) -> String {
    let documents: String = checks
        .iter()
        .map(|(start, end, ..)| &text[*start..*end])
        .collect();
    let parsed = parse_documents(&documents).ok();
    let exact = |index: usize| {
        parsed
            .as_ref()
            .and_then(|documents| documents.get(index))
            .map(|document| canonical_json(document.value["spec"]["jsonValue"].clone()))
            .is_some_and(|stored| stored == checks[index].4.as_ref())
    };
    let mut fixed = String::with_capacity(text.len());
    let mut copied = 0;
    for (index, (start, end, name, key, value)) in checks.iter().enumerate() {
        if exact(index)
            && parsed
                .as_ref()
                .is_some_and(|documents| documents.len() == checks.len())
        {
            continue;
        }
        fixed.push_str(&text[copied..*start]);
        fixed.push_str("---\n");
        entry_document(
            &mut fixed,
            &Meta { name, namespace },
            bucket_ref,
            key,
            &ValueField::of(value, false),
        );
        copied = *end;
    }
    fixed.push_str(&text[copied..]);
    fixed
}

#[cfg(test)]
mod tests;
