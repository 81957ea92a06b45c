//! Each kvop kind's document, read into the collector: a bucket, an entry, a set (kept
//! until every file is read). The rules themselves are `spec`'s, shared with the
//! operator; here they meet file, line and field.

use std::sync::Arc;

use super::entry_sets::PendingSet;
use super::resolve::{BucketRef, InvalidEntry};
use super::validate::{Collector, Context, Typed};
use super::value_sources::ValueReference;
use crate::api::{KeyValueBucket, KeyValueEntry, KeyValueEntrySet};
use crate::desired::{DesiredEntry, ObjectRef, Origin};
use crate::spec::{self, ValueSource};

impl Collector {
    pub(super) fn add_bucket(&mut self, context: &Context, typed: Typed<KeyValueBucket>) {
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
    pub(super) fn invalid_bucket(
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

    pub(super) fn add_entry(&mut self, context: &Context<'_>, typed: Typed<KeyValueEntry>) {
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

    /// Keeps a set until every file is read: its `from` may name objects in later files.
    pub(super) fn add_set(&mut self, context: &Context<'_>, typed: Typed<KeyValueEntrySet>) {
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
}
