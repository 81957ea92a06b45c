//! Turns parsed documents into [`Desired`] state, applying every rule of the resource
//! types (the same rules the CRD schema and CEL enforce in Kubernetes mode).

use base64::Engine;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::yaml::Document;
use super::{LoadError, Loaded};
use super::{bucket_spec, resolve};
use crate::api::{self, KeyValueBucket, KeyValueEntry, KeyValueEntrySpec};
use crate::desired::{DesiredBucket, DesiredEntry, ObjectRef, Origin};
use crate::names;

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
        let config = match bucket_spec::bucket_config(spec) {
            Ok(config) => Some(config),
            Err(problems) => {
                for (field, message) in problems {
                    self.errors.push(context.error(&field, message));
                }
                None
            }
        };
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
        let problems = resolve::resolve(
            &self.buckets,
            &mut self.entries,
            &self.bucket_refs,
            &self.options.manager,
        );
        self.errors.extend(problems);
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
