//! Turns parsed documents into [`Desired`] state, applying every rule of the resource
//! types (the same rules the CRD schema and CEL enforce in Kubernetes mode).

use std::collections::HashSet;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::entry_sets::{self, PendingSet};
use super::resolve::{self, BucketRef, InvalidEntry};
use super::value_blocks::ValueBlocks;
use super::value_sources::{SourceKind, ValueReference, ValueSources};
use super::wording;
use super::yaml::Document;
use super::{LoadError, Loaded};
use crate::api::{self, KeyValueBucket, KeyValueEntry, KeyValueEntrySet};
use crate::desired::{DesiredBucket, DesiredEntry, ObjectRef, Origin};
use crate::names;
use crate::spec::{self, ValueSource};

/// What the loader needs to know beyond the files.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The `--manager` name; its header bytes count toward value size limits.
    pub manager: String,
}

/// Fields a manifest may have at its top level.
const TOP_LEVEL_FIELDS: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];

/// Type errors reported per document at most; a document with more is mostly not a
/// manifest at all.
const MAX_TYPE_ERRORS: usize = 20;

/// A document read as a resource; not `exact` when fields were set aside to read the
/// rest (its problems are recorded, and it is checked but never declared).
struct Typed<T> {
    resource: T,
    exact: bool,
}

/// Accumulates documents, then resolves references across all of them.
pub(super) struct Collector {
    buckets: Vec<DesiredBucket>,
    entries: Vec<DesiredEntry>,
    // Entry → its bucketRef, resolved in `finish`.
    bucket_refs: Vec<BucketRef>,
    // Buckets declared with problems of their own: their entries are told so, not that
    // the bucket is not declared.
    invalid_buckets: Vec<(ObjectRef, Origin)>,
    invalid_entries: Vec<InvalidEntry>,
    skipped: Vec<String>,
    errors: Vec<LoadError>,
    values: ValueBlocks,
    /// ConfigMaps and Secrets, for `valueFrom`.
    sources: ValueSources,
    /// The bucket names entries refer to, one copy each.
    bucket_names: HashSet<Arc<str>>,
    /// Sets, expanded into entries once every ConfigMap and Secret is read.
    sets: Vec<PendingSet>,
}

/// Error helper bound to one document.
struct Context<'d> {
    source: &'d Arc<str>,
    document: &'d Document,
}

impl Context<'_> {
    fn origin(&self) -> Origin {
        Origin {
            source: Arc::clone(self.source),
            line: self.document.line,
        }
    }

    fn error(&self, field: &str, message: impl Into<String>) -> LoadError {
        LoadError {
            origin: Origin {
                source: Arc::clone(self.source),
                line: self.document.line_of(field),
            },
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
        }
    }
}

impl Collector {
    pub(super) fn new() -> Self {
        Collector {
            buckets: Vec::new(),
            entries: Vec::new(),
            bucket_refs: Vec::new(),
            invalid_buckets: Vec::new(),
            invalid_entries: Vec::new(),
            skipped: Vec::new(),
            errors: Vec::new(),
            values: ValueBlocks::default(),
            sources: ValueSources::default(),
            bucket_names: HashSet::new(),
            sets: Vec::new(),
        }
    }

    /// Appends what another collector gathered (from the documents that follow).
    pub(super) fn merge(&mut self, other: Collector) {
        self.buckets.extend(other.buckets);
        self.sources.merge(other.sources, self.entries.len());
        self.entries.extend(other.entries);
        self.bucket_refs.extend(other.bucket_refs);
        self.invalid_buckets.extend(other.invalid_buckets);
        self.invalid_entries.extend(other.invalid_entries);
        self.skipped.extend(other.skipped);
        self.errors.extend(other.errors);
        self.sets.extend(other.sets);
    }

    /// A problem found outside the documents (a syntax error).
    pub(super) fn add_error(&mut self, error: LoadError) {
        self.errors.push(error);
    }

    pub(super) fn add_document(&mut self, source: &Arc<str>, document: &Document) {
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
        if let Some(source) = SourceKind::of(api_version, kind) {
            let metadata = object.get("metadata");
            let field = |name: &str| metadata.and_then(|m| m.get(name)?.as_str());
            self.sources.add(
                source,
                (
                    field("namespace").unwrap_or("default").to_string(),
                    field("name").unwrap_or_default().to_string(),
                ),
                describe_name(object),
                context.origin(),
                object.clone(),
            );
            return;
        }
        let ours = matches!(
            kind,
            "KeyValueBucket" | "KeyValueEntry" | "KeyValueEntrySet"
        );
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
                    "unknown kind {kind:?} in {}: expected KeyValueBucket, KeyValueEntry or KeyValueEntrySet",
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
            match self.deserialize::<KeyValueBucket>(&context) {
                Some(typed) => self.add_bucket(&context, typed),
                None => self.invalid_bucket(&context, object),
            }
        } else if kind == "KeyValueEntrySet" {
            if let Some(typed) = self.deserialize::<KeyValueEntrySet>(&context) {
                self.add_set(&context, typed);
            }
        } else if let Some(typed) = self.deserialize::<KeyValueEntry>(&context) {
            self.add_entry(&context, typed);
        }
    }

    /// Reads the document as `T`, recording every field of the wrong type or unknown
    /// (each read stops at the first, so that field is set aside and the rest read
    /// again). `None` when what is left cannot be read at all, e.g. a required field is
    /// missing.
    fn deserialize<T: DeserializeOwned>(&mut self, context: &Context) -> Option<Typed<T>> {
        let mut stand_in: Option<serde_json::Value> = None;
        for _ in 0..MAX_TYPE_ERRORS {
            let value = stand_in.as_ref().unwrap_or(&context.document.value);
            let error = match serde_path_to_error::deserialize(value) {
                Ok(resource) => {
                    return Some(Typed {
                        resource,
                        exact: stand_in.is_none(),
                    });
                }
                Err(error) => error,
            };
            // The path names the failing field itself, unknown fields included.
            let mut path = error.path().to_string();
            if path == "." {
                path.clear();
            }
            let message = wording::serde_message(&error.inner().to_string());
            self.errors.push(context.error(&path, message.text));
            if !message.field_can_be_set_aside {
                return None;
            }
            let next = stand_in.get_or_insert_with(|| context.document.value.clone());
            if !set_aside(next, error.path()) {
                return None;
            }
        }
        None
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
        // What `kubectl apply` of the same file would refuse is refused here too: a dry
        // run in CI must not pass where the cluster fails, and `namespace/name` in the
        // owner header must split back.
        let mut valid = true;
        if let Err(error) = names::check_object_name(&name) {
            self.errors
                .push(context.error("metadata.name", error.to_string()));
            valid = false;
        }
        if let Err(error) = names::check_namespace(&namespace) {
            self.errors
                .push(context.error("metadata.namespace", error.to_string()));
            valid = false;
        }
        valid.then_some(ObjectRef::resource(namespace, name))
    }

    fn add_bucket(&mut self, context: &Context, typed: Typed<KeyValueBucket>) {
        let Typed { resource, exact } = typed;
        let Some(owner) = self.object_ref(context, &resource.metadata) else {
            return;
        };
        if resource.spec.connection.is_some() {
            self.errors.push(context.error(
                "spec.connection",
                "per-bucket connections and their Secrets are read by the Kubernetes operator only; in standalone mode use --nats-url and the credential flags",
            ));
        }
        match spec::desired_bucket(owner.clone(), context.origin(), &resource) {
            Ok(bucket) if exact && resource.spec.connection.is_none() => self.buckets.push(bucket),
            Ok(_) => self.invalid_buckets.push((owner, context.origin())),
            Err(problems) => {
                for problem in problems {
                    self.errors
                        .push(context.error(&problem.field, problem.message));
                }
                self.invalid_buckets.push((owner, context.origin()));
            }
        }
    }

    /// Records a bucket whose document could not be read as one, by the name it gives.
    fn invalid_bucket(
        &mut self,
        context: &Context,
        object: &serde_json::Map<String, serde_json::Value>,
    ) {
        let metadata = object.get("metadata");
        let field = |name: &str| metadata.and_then(|m| m.get(name)).and_then(|v| v.as_str());
        if let Some(name) = field("name") {
            let owner = ObjectRef::resource(
                field("namespace").unwrap_or("default").to_string(),
                name.to_string(),
            );
            self.invalid_buckets.push((owner, context.origin()));
        }
    }

    fn add_entry(&mut self, context: &Context<'_>, typed: Typed<KeyValueEntry>) {
        let Typed { resource, exact } = typed;
        let Some(owner) = self.object_ref(context, &resource.metadata) else {
            return;
        };
        let spec = &resource.spec;
        let key = spec::entry_key(&owner, spec).map_err(|problem| {
            self.errors
                .push(context.error(&problem.field, problem.message))
        });
        let mut value_from = None;
        let value = match spec::entry_value(spec) {
            Ok(ValueSource::Inline(bytes)) => Some(self.values.keep(&bytes)),
            // Read from the file set's ConfigMaps and Secrets once every file is loaded.
            Ok(ValueSource::From(from)) => {
                value_from = Some(from);
                Some(bytes::Bytes::new())
            }
            Err(problem) => {
                self.errors
                    .push(context.error(&problem.field, problem.message));
                None
            }
        };
        if spec.bucket_ref.name.is_empty() {
            self.errors
                .push(context.error("spec.bucketRef.name", "bucketRef.name is required"));
            return;
        }
        let take_over =
            spec::take_over(resource.metadata.annotations.as_ref()).map_err(|problem| {
                self.errors
                    .push(context.error(&problem.field, problem.message))
            });
        let bucket_ref = BucketRef {
            name: self.bucket_name(&spec.bucket_ref.name),
            fields: context.document.field_lines(),
        };
        let (true, Ok(key), Some(value), Ok(take_over)) = (exact, key, value, take_over) else {
            self.invalid_entries.push(InvalidEntry {
                origin: context.origin(),
                namespace: owner.namespace,
                reference: bucket_ref,
            });
            return;
        };
        self.bucket_refs.push(bucket_ref);
        if let Some(from) = value_from {
            let at = Origin {
                source: Arc::clone(context.source),
                line: context.document.line_of("spec.valueFrom"),
            };
            if let Some(reference) =
                ValueReference::new(self.entries.len(), &owner.namespace, from, at)
            {
                self.sources.refer(reference);
            }
        }
        self.entries.push(DesiredEntry {
            owner,
            origin: context.origin(),
            bucket: Arc::from(""),
            key: key.into(),
            value,
            update_policy: spec.update_policy,
            deletion_policy: spec.deletion_policy,
            take_over,
            sensitive: false,
        });
    }
}

impl Collector {
    /// Keeps a set until every file is read: its `from` may name objects in later files.
    fn add_set(&mut self, context: &Context<'_>, typed: Typed<KeyValueEntrySet>) {
        let Typed { resource, exact } = typed;
        let Some(owner) = self.object_ref(context, &resource.metadata) else {
            return;
        };
        if !exact {
            return;
        }
        let bucket_ref = self.bucket_name(&resource.spec.bucket_ref.name);
        self.sets.push(PendingSet {
            owner: ObjectRef::entry_set(owner.namespace, owner.name),
            origin: context.origin(),
            resource,
            fields: context.document.field_lines(),
            bucket_ref,
        });
    }

    /// The one copy of a bucket name an entry refers to.
    fn bucket_name(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.bucket_names.get(name) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(name);
        self.bucket_names.insert(Arc::clone(&shared));
        shared
    }

    /// Resolves bucket references and checks the rules that span documents. The
    /// references are dropped first, with the file texts they point into.
    pub(super) fn finish(mut self, options: &LoadOptions) -> (Loaded, Vec<LoadError>) {
        let declared_entries = self.entries.len();
        let (mut sets, problems) = entry_sets::expand(
            std::mem::take(&mut self.sets),
            &mut self.sources,
            &mut self.values,
            &mut self.entries,
        );
        self.errors.extend(problems);
        let sources = std::mem::take(&mut self.sources);
        let (problems, unread) =
            sources.resolve(&mut self.entries[..declared_entries], &mut self.values);
        self.errors.extend(problems);
        self.skipped.extend(unread);
        let problems = resolve::resolve(
            &self.buckets,
            &mut self.entries,
            &self.bucket_refs,
            &self.invalid_buckets,
            &self.invalid_entries,
            &mut sets,
            &options.manager,
        );
        self.errors.extend(problems);
        drop(self.bucket_refs);
        drop(self.invalid_entries);
        let loaded = Loaded {
            desired: crate::desired::Desired {
                buckets: self.buckets,
                entries: self.entries,
                sets: sets.into_iter().map(|expanded| expanded.set).collect(),
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

/// Removes the field at `path` from `value` (a field inside a list: the whole list), so
/// that reading again gets past it. Whether there was such a field.
fn set_aside(value: &mut serde_json::Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    // The last field name on the path not inside a list.
    let Some(cut) = segments
        .iter()
        .position(|segment| matches!(segment, Segment::Seq { .. }))
        .map_or(segments.len(), |first_list| first_list)
        .checked_sub(1)
    else {
        return false;
    };
    let mut node = value;
    for segment in &segments[..cut] {
        let Segment::Map { key } = segment else {
            return false;
        };
        match node.get_mut(key.as_str()) {
            Some(child) => node = child,
            None => return false,
        }
    }
    match (segments[cut], node.as_object_mut()) {
        (Segment::Map { key }, Some(object)) => object.remove(key.as_str()).is_some(),
        _ => false,
    }
}
