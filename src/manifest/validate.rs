//! Turns parsed documents into [`Desired`] state, applying every rule of the resource
//! types (the same rules the CRD schema and CEL enforce in Kubernetes mode).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::yaml::Document;
use super::{LoadError, Loaded};
use crate::api::{self, KeyValueBucket, KeyValueBucketSpec, KeyValueEntry, KeyValueEntrySpec};
use crate::desired::{BucketConfig, DesiredBucket, DesiredEntry, ObjectRef, Origin};
use crate::{names, ownership, units};

/// What the loader needs to know beyond the files.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The `--manager` name; its header bytes count toward value size limits.
    pub manager: String,
}

/// Fields a manifest may have at its top level.
const TOP_LEVEL_FIELDS: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];

/// Accumulates documents, then resolves references across all of them.
pub(super) struct Collector<'a> {
    options: &'a LoadOptions,
    buckets: Vec<DesiredBucket>,
    entries: Vec<DesiredEntry>,
    // Entry → (namespace, bucketRef.name, line of bucketRef.name), resolved in `finish`.
    bucket_refs: Vec<(String, String, u64)>,
    skipped: Vec<String>,
    errors: Vec<LoadError>,
}

/// Error helper bound to one document.
struct Context<'d> {
    source: &'d str,
    document: &'d Document,
}

impl Context<'_> {
    fn origin(&self) -> Origin {
        Origin {
            source: self.source.to_string(),
            line: self.document.line,
        }
    }

    fn error(&self, field: &str, message: impl Into<String>) -> LoadError {
        LoadError {
            origin: Origin {
                source: self.source.to_string(),
                line: self.document.line_of(field),
            },
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
        }
    }
}

impl<'a> Collector<'a> {
    pub(super) fn new(options: &'a LoadOptions) -> Self {
        Collector {
            options,
            buckets: Vec::new(),
            entries: Vec::new(),
            bucket_refs: Vec::new(),
            skipped: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub(super) fn add_document(&mut self, source: &str, document: &Document) {
        let context = Context { source, document };
        let Some(object) = document.value.as_object() else {
            self.errors
                .push(context.error("", "a manifest must be a mapping with apiVersion and kind"));
            return;
        };
        let api_version = object
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if api_version.is_empty() || kind.is_empty() {
            let field = if api_version.is_empty() {
                "apiVersion"
            } else {
                "kind"
            };
            self.errors
                .push(context.error(field, format!("{field} is missing")));
            return;
        }
        let ours = matches!(kind, "KeyValueBucket" | "KeyValueEntry");
        let our_group = api_version.split('/').next() == Some(api::GROUP);
        if !ours && !our_group {
            self.skipped.push(format!(
                "{}: skipped {api_version} {kind} {}",
                context.origin(),
                describe_name(object)
            ));
            return;
        }
        if !ours {
            self.errors.push(context.error(
                "kind",
                format!(
                    "unknown kind {kind:?} in {}: expected KeyValueBucket or KeyValueEntry",
                    api::GROUP
                ),
            ));
            return;
        }
        if api_version != api::API_VERSION {
            self.errors.push(context.error(
                "apiVersion",
                format!(
                    "unsupported apiVersion {api_version:?} for {kind}: use {}",
                    api::API_VERSION
                ),
            ));
            return;
        }
        for field in object
            .keys()
            .filter(|field| !TOP_LEVEL_FIELDS.contains(&field.as_str()))
        {
            self.errors
                .push(context.error(field, format!("unknown field {field:?}")));
        }
        if kind == "KeyValueBucket" {
            if let Some(resource) = self.deserialize::<KeyValueBucket>(&context) {
                self.add_bucket(&context, resource);
            }
        } else if let Some(resource) = self.deserialize::<KeyValueEntry>(&context) {
            self.add_entry(&context, resource);
        }
    }

    fn deserialize<T: DeserializeOwned>(&mut self, context: &Context) -> Option<T> {
        match serde_path_to_error::deserialize(&context.document.value) {
            Ok(resource) => Some(resource),
            Err(error) => {
                // The path names the failing field itself, unknown fields included.
                let mut path = error.path().to_string();
                let message = error.inner().to_string();
                if path == "." {
                    path.clear();
                }
                let message = if message.starts_with("invalid type:")
                    && message.ends_with("expected a string")
                {
                    // YAML 1.1, like kubectl, reads unquoted 100, true, yes, on, y as
                    // numbers and booleans.
                    format!("{message} (quote the value to make it a string)")
                } else {
                    message
                };
                self.errors.push(context.error(&path, message));
                None
            }
        }
    }

    fn object_ref(
        &mut self,
        context: &Context,
        metadata: &kube::api::ObjectMeta,
    ) -> Option<ObjectRef> {
        let name = metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            self.errors
                .push(context.error("metadata.name", "metadata.name is required"));
            return None;
        }
        let namespace = metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        Some(ObjectRef { namespace, name })
    }

    fn add_bucket(&mut self, context: &Context, resource: KeyValueBucket) {
        let Some(owner) = self.object_ref(context, &resource.metadata) else {
            return;
        };
        let errors_before = self.errors.len();
        let spec = &resource.spec;
        let (name, name_field) = match &spec.bucket {
            Some(bucket) => (bucket.clone(), "spec.bucket"),
            None => (owner.name.clone(), "metadata.name"),
        };
        if let Err(message) = names::check_bucket_name(&name) {
            self.errors.push(context.error(name_field, message));
        }
        let config = self.bucket_config(context, spec);
        if spec.connection.is_some() {
            self.errors.push(context.error(
                "spec.connection",
                "per-bucket connections and their Secrets are read by the Kubernetes operator only; in standalone mode use --nats-url and the credential flags",
            ));
        }
        if self.errors.len() > errors_before {
            return;
        }
        if let Some(config) = config {
            self.buckets.push(DesiredBucket {
                owner,
                origin: context.origin(),
                name,
                config,
                management: spec.management_policy,
                deletion: spec.deletion_policy,
            });
        }
    }

    fn bucket_config(
        &mut self,
        context: &Context,
        spec: &KeyValueBucketSpec,
    ) -> Option<BucketConfig> {
        let KeyValueBucketSpec {
            bucket: _,
            description,
            history,
            ttl,
            max_value_size,
            max_bytes,
            storage,
            replicas,
            compression,
            limit_marker_ttl,
            placement,
            republish,
            mirror,
            sources,
            metadata,
            connection: _,
            deletion_policy: _,
            management_policy: _,
        } = spec;
        let mut ok = true;
        let mut fail = |field: &str, message: String, errors: &mut Vec<LoadError>| {
            errors.push(context.error(field, message));
            ok = false;
        };
        if !(1..=64).contains(history) {
            fail(
                "spec.history",
                format!("history must be between 1 and 64, got {history}"),
                &mut self.errors,
            );
        }
        if !(1..=5).contains(replicas) {
            fail(
                "spec.replicas",
                format!("replicas must be between 1 and 5, got {replicas}"),
                &mut self.errors,
            );
        }
        let mut duration = |field: &str,
                            text: &Option<String>,
                            minimum: Duration,
                            errors: &mut Vec<LoadError>|
         -> Option<Duration> {
            let text = text.as_ref()?;
            match units::parse_duration(text) {
                Ok(value) if value >= minimum => Some(value),
                Ok(_) => {
                    fail(
                        field,
                        format!(
                            "{text:?} is shorter than the minimum of {}",
                            units::format_duration(minimum)
                        ),
                        errors,
                    );
                    None
                }
                Err(message) => {
                    fail(field, message, errors);
                    None
                }
            }
        };
        let ttl = duration(
            "spec.ttl",
            ttl,
            Duration::from_millis(100),
            &mut self.errors,
        );
        let limit_marker_ttl = duration(
            "spec.limitMarkerTtl",
            limit_marker_ttl,
            Duration::from_secs(1),
            &mut self.errors,
        );
        let mut size = |field: &str, value: &Option<_>, errors: &mut Vec<LoadError>| -> i64 {
            match value.as_ref().map(units::parse_size) {
                None => -1,
                Some(Ok(0)) => {
                    fail(
                        field,
                        "must be at least 1 byte (leave it out for no limit)".into(),
                        errors,
                    );
                    -1
                }
                Some(Ok(bytes)) => bytes,
                Some(Err(message)) => {
                    fail(field, message, errors);
                    -1
                }
            }
        };
        let max_value_size = size("spec.maxValueSize", max_value_size, &mut self.errors);
        let max_bytes = size("spec.maxBytes", max_bytes, &mut self.errors);
        // The stream's max_msg_size is a 32-bit integer on the server.
        if max_value_size > i64::from(i32::MAX) {
            fail(
                "spec.maxValueSize",
                format!(
                    "{max_value_size} bytes is over the server's limit of {}",
                    i32::MAX
                ),
                &mut self.errors,
            );
        }
        if mirror.is_some() && !sources.is_empty() {
            fail(
                "spec.mirror",
                "a bucket cannot have both a mirror and sources".into(),
                &mut self.errors,
            );
        }
        for (field, source) in mirror.iter().map(|m| ("spec.mirror".to_string(), m)).chain(
            sources
                .iter()
                .enumerate()
                .map(|(index, source)| (format!("spec.sources[{index}]"), source)),
        ) {
            if let Err(message) = names::check_bucket_name(&source.name) {
                fail(&format!("{field}.name"), message, &mut self.errors);
            }
        }
        if let Some(reserved) = metadata.keys().find(|key| key.starts_with("_nats.")) {
            fail(
                "spec.metadata",
                format!("metadata key {reserved:?} is reserved for the server"),
                &mut self.errors,
            );
        }
        ok.then(|| BucketConfig {
            description: description.clone().unwrap_or_default(),
            history: i64::from(*history),
            ttl: ttl.unwrap_or_default(),
            max_value_size,
            max_bytes,
            storage: *storage,
            replicas: i64::from(*replicas),
            compression: *compression,
            allow_msg_ttl: limit_marker_ttl.is_some(),
            limit_marker_ttl,
            placement: placement.clone(),
            republish: republish.clone(),
            mirror: mirror.clone(),
            sources: sources.clone(),
            metadata: metadata.clone(),
        })
    }

    fn add_entry(&mut self, context: &Context, resource: KeyValueEntry) {
        let Some(owner) = self.object_ref(context, &resource.metadata) else {
            return;
        };
        let KeyValueEntrySpec {
            bucket_ref,
            key,
            value,
            binary_value,
            json_value,
            value_from,
            update_policy,
            deletion_policy,
        } = resource.spec;
        let errors_before = self.errors.len();
        let (key, key_field) = match key {
            Some(key) => (key, "spec.key"),
            None => (owner.name.clone(), "metadata.name"),
        };
        if let Err(message) = names::check_key(&key) {
            self.errors.push(context.error(key_field, message));
        }
        let given: Vec<&str> = [
            (value.is_some(), "value"),
            (binary_value.is_some(), "binaryValue"),
            (json_value.is_some(), "jsonValue"),
            (value_from.is_some(), "valueFrom"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if given.len() != 1 {
            let found = if given.is_empty() {
                "none".to_string()
            } else {
                given.join(", ")
            };
            self.errors.push(context.error("spec", format!("exactly one of value, binaryValue, jsonValue and valueFrom must be set, found {found}")));
        }
        let bytes = if let Some(text) = value {
            Some(Bytes::from(text))
        } else if let Some(encoded) = binary_value {
            match base64::engine::general_purpose::STANDARD.decode(encoded.trim()) {
                Ok(raw) => Some(Bytes::from(raw)),
                Err(error) => {
                    self.errors.push(
                        context.error("spec.binaryValue", format!("invalid base64: {error}")),
                    );
                    None
                }
            }
        } else if let Some(json) = json_value {
            Some(Bytes::from(canonical_json(json)))
        } else {
            if value_from.is_some() {
                self.errors.push(context.error(
                    "spec.valueFrom",
                    "valueFrom reads Secrets and ConfigMaps, which only the Kubernetes operator can do; in standalone mode put the value in value, binaryValue or jsonValue",
                ));
            }
            None
        };
        if bucket_ref.name.is_empty() {
            self.errors
                .push(context.error("spec.bucketRef.name", "bucketRef.name is required"));
        }
        if self.errors.len() > errors_before {
            return;
        }
        let Some(bytes) = bytes else { return };
        self.bucket_refs.push((
            owner.namespace.clone(),
            bucket_ref.name,
            context.document.line_of("spec.bucketRef.name"),
        ));
        self.entries.push(DesiredEntry {
            owner,
            origin: context.origin(),
            bucket: String::new(),
            key,
            value: bytes,
            update_policy,
            deletion_policy,
        });
    }

    /// Resolves bucket references and checks rules that span documents.
    pub(super) fn finish(mut self) -> (Loaded, Vec<LoadError>) {
        let mut by_object: HashMap<(String, String), usize> = HashMap::new();
        let mut by_bucket: HashMap<String, usize> = HashMap::new();
        for (index, bucket) in self.buckets.iter().enumerate() {
            let object = (bucket.owner.namespace.clone(), bucket.owner.name.clone());
            if let Some(first) = by_object.insert(object, index) {
                self.errors.push(duplicate(
                    &bucket.origin,
                    &format!("KeyValueBucket {} is declared twice", bucket.owner),
                    &self.buckets[first].origin,
                ));
            }
            if let Some(first) = by_bucket.insert(bucket.name.clone(), index) {
                self.errors.push(duplicate(
                    &bucket.origin,
                    &format!("bucket {:?} is declared twice", bucket.name),
                    &self.buckets[first].origin,
                ));
            }
        }
        let mut entry_objects: HashMap<ObjectRef, Origin> = HashMap::new();
        let mut keys: HashMap<(String, String), Origin> = HashMap::new();
        for (entry, (namespace, reference, line)) in self.entries.iter_mut().zip(&self.bucket_refs)
        {
            let at_ref = Origin {
                source: entry.origin.source.clone(),
                line: *line,
            };
            if let Some(first) = entry_objects.insert(entry.owner.clone(), entry.origin.clone()) {
                self.errors.push(duplicate(
                    &entry.origin,
                    &format!("KeyValueEntry {} is declared twice", entry.owner),
                    &first,
                ));
            }
            let Some(bucket) = by_object
                .get(&(namespace.clone(), reference.clone()))
                .map(|index| &self.buckets[*index])
            else {
                self.errors.push(LoadError {
                    origin: at_ref,
                    field: Some("spec.bucketRef.name".into()),
                    message: format!("no KeyValueBucket named {reference:?} in namespace {namespace:?} is declared in the manifests"),
                });
                continue;
            };
            entry.bucket = bucket.name.clone();
            if bucket.config.mirror.is_some() {
                self.errors.push(LoadError {
                    origin: at_ref,
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
                self.errors.push(duplicate(
                    &entry.origin,
                    &format!(
                        "key {:?} of bucket {:?} is declared twice",
                        entry.key, entry.bucket
                    ),
                    &first,
                ));
            }
            let limit = bucket.config.max_value_size;
            let total = entry.value.len()
                + ownership::write_overhead(&self.options.manager, &entry.owner.to_string());
            if limit >= 0 && total as i64 > limit {
                self.errors.push(LoadError {
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
        let loaded = Loaded {
            desired: crate::desired::Desired {
                buckets: self.buckets,
                entries: self.entries,
            },
            skipped: self.skipped,
        };
        (loaded, self.errors)
    }
}

/// Checks values against limits only the server knows: its `max_payload`, and the
/// `max_value_size` of buckets kvop observes but does not manage.
pub fn check_value_sizes(
    desired: &crate::desired::Desired,
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

fn describe_name(object: &serde_json::Map<String, serde_json::Value>) -> String {
    let metadata = object.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(|v| v.as_str())
        .unwrap_or("<unnamed>");
    match metadata
        .and_then(|m| m.get("namespace"))
        .and_then(|v| v.as_str())
    {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    }
}

/// Compact JSON with object keys sorted at every level, so the stored bytes do not
/// depend on the order keys were written in.
fn canonical_json(mut value: serde_json::Value) -> Vec<u8> {
    fn sort(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.sort_keys();
                map.values_mut().for_each(sort);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(sort),
            _ => {}
        }
    }
    sort(&mut value);
    // Serializing a Value cannot fail: its keys are strings and its numbers finite.
    serde_json::to_vec(&value).unwrap_or_default()
}
