//! Step 1 of an entry reconcile: everything the entry needs before it can be decided.
//! The spec is checked, its bucket resource found (and waited for while not ready), the
//! value read (inline, or from a Secret or ConfigMap for `valueFrom`) and a mirror
//! refused; whether a value fits is the pass's to check, once it knows the value will be
//! written. Values are never logged or put into status.

use bytes::Bytes;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef as StoreRef;

use crate::api::{KeyValueEntry, ValueFrom};
use crate::desired::{DesiredBucket, DesiredEntry};
use crate::manifest::{Known, Limits, check_writable};
use crate::operator::context::Context;
use crate::operator::error::{ControllerError, reference_not_found};
use crate::operator::{bucket_ref, connection};
use crate::operator::{object_ref, origin};
use crate::spec::{self, FieldProblem};

/// Everything an entry needs before it can be decided.
pub(super) struct Resolved {
    pub bucket: DesiredBucket,
    pub entry: DesiredEntry,
    /// The bucket's connection.
    pub nats: crate::nats::Connection,
}

/// Finds the bucket, checks the key and resolves the value.
pub(super) async fn resolve(
    entry: &KeyValueEntry,
    context: &Context,
) -> Result<Resolved, ControllerError> {
    let owner = object_ref(entry);
    let key = spec::entry_key(&owner, &entry.spec)
        .map_err(|problem| ControllerError::InvalidSpec(vec![problem]))?;
    let namespace = entry.namespace().unwrap_or_default();
    let (_, desired_bucket, nats) = bucket_ref::ready_bucket(
        context,
        &namespace,
        &entry.spec.bucket_ref.name,
        &connection::Reader::Entry(StoreRef::from_obj(entry)),
    )
    .await?;
    let (value, sensitive) = match spec::entry_value(&entry.spec)
        .map_err(|problem| ControllerError::InvalidSpec(vec![problem]))?
    {
        spec::ValueSource::Inline(value) => (value, false),
        spec::ValueSource::From(from) => (
            read_value_from(context, entry, &namespace, from).await?,
            from.secret_key_ref.is_some(),
        ),
    };
    let take_over = spec::take_over(entry.metadata.annotations.as_ref())
        .map_err(|problem| ControllerError::InvalidSpec(vec![problem]))?;
    let entry = DesiredEntry {
        owner,
        origin: origin(entry),
        bucket: desired_bucket.name.as_str().into(),
        key: key.into(),
        value,
        update_policy: entry.spec.update_policy,
        deletion_policy: entry.spec.deletion_policy,
        take_over,
        sensitive,
    };
    // A mirror takes no writes at all; sizes are checked only for what will be written
    // (by the pass): a value NATS already holds as declared is never refused.
    let mirror = Limits {
        bucket: &desired_bucket.name,
        mirror: desired_bucket
            .config
            .mirror
            .is_some()
            .then_some(Known::Declared),
        max_value_size: -1,
        max_payload: None,
    };
    check_writable(&entry, &mirror, &context.settings.manager).map_err(invalid)?;
    Ok(Resolved {
        bucket: desired_bucket,
        entry,
        nats,
    })
}

fn invalid(unwritable: crate::manifest::Unwritable) -> ControllerError {
    ControllerError::InvalidSpec(vec![FieldProblem::new(
        unwritable.field,
        unwritable.message,
    )])
}

/// Reads a `valueFrom` reference. The value is never logged or put into status.
async fn read_value_from(
    context: &Context,
    entry: &KeyValueEntry,
    namespace: &str,
    from: &ValueFrom,
) -> Result<Bytes, ControllerError> {
    if let Some(reference) = &from.secret_key_ref {
        let secrets: Api<Secret> = Api::namespaced(context.client.clone(), namespace);
        let secret = secrets.get_opt(&reference.name).await?;
        let version = secret
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone());
        context.secret_versions.record(
            namespace,
            &reference.name,
            connection::Reader::Entry(StoreRef::from_obj(entry)),
            version,
        );
        let exists = secret.is_some();
        let value =
            secret.and_then(|secret| secret.data.and_then(|mut data| data.remove(&reference.key)));
        return value.map(|bytes| Bytes::from(bytes.0)).ok_or_else(|| {
            reference_not_found("Secret", namespace, &reference.name, &reference.key, exists)
        });
    }
    if let Some(reference) = &from.config_map_key_ref {
        let config_maps: Api<ConfigMap> = Api::namespaced(context.client.clone(), namespace);
        let config_map = config_maps.get_opt(&reference.name).await?;
        let exists = config_map.is_some();
        let value = config_map.and_then(|config_map| {
            let text = config_map
                .data
                .and_then(|mut data| data.remove(&reference.key))
                .map(Bytes::from);
            text.or_else(|| {
                config_map
                    .binary_data
                    .and_then(|mut data| data.remove(&reference.key))
                    .map(|bytes| Bytes::from(bytes.0))
            })
        });
        return value.ok_or_else(|| {
            reference_not_found(
                "ConfigMap",
                namespace,
                &reference.name,
                &reference.key,
                exists,
            )
        });
    }
    Err(ControllerError::InvalidSpec(vec![FieldProblem::new(
        "spec.valueFrom",
        "valueFrom needs secretKeyRef or configMapKeyRef",
    )]))
}
