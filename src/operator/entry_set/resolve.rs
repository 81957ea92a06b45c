//! Step 1 of a set reconcile: everything the set needs before it can be decided. Its
//! bucket resource is found (and waited for while not ready), the ConfigMaps and
//! Secrets it names are read (`objects`), and its keys expanded by the shared rules
//! (`spec::entry_set`: prefix, key checks, collisions refused naming both sources). A
//! mirror is refused; whether each value fits is the pass's to check, once it knows the
//! value will be written. Values are never logged or put into status.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef as StoreRef;

use super::objects;
use crate::api::KeyValueEntrySet;
use crate::desired::{DesiredBucket, DesiredEntry, DesiredSet, ObjectRef, Origin};
use crate::manifest::{Known, Limits, check_writable};
use crate::operator::context::Context;
use crate::operator::error::ControllerError;
use crate::operator::{bucket_ref, connection, origin};
use crate::spec::FieldProblem;
use crate::spec::entry_set::{desired_set, set_keys};

/// Everything a set needs before it can be decided.
pub(super) struct Resolved {
    pub bucket: DesiredBucket,
    pub set: DesiredSet,
    /// Its keys, each owned by the set, in declaration order.
    pub keys: Vec<DesiredEntry>,
    /// The bucket's connection.
    pub nats: crate::nats::Connection,
}

/// The written name of a set's keys' owner: `namespace/KeyValueEntrySet/name`.
pub(super) fn owner_of(set: &KeyValueEntrySet) -> ObjectRef {
    ObjectRef::entry_set(set.namespace().unwrap_or_default(), set.name_any())
}

/// Finds the bucket, reads what the set names and expands its keys.
pub(super) async fn resolve(
    set: &KeyValueEntrySet,
    context: &Context,
) -> Result<Resolved, ControllerError> {
    let owner = owner_of(set);
    let namespace = owner.namespace.clone();
    let (_, bucket, nats) = bucket_ref::ready_bucket(
        context,
        &namespace,
        &set.spec.bucket_ref.name,
        &connection::Reader::EntrySet(StoreRef::from_obj(set)),
    )
    .await?;
    let set_origin = origin(set);
    let desired = desired_set(
        owner.clone(),
        set_origin.clone(),
        &set.spec,
        set.metadata.annotations.as_ref(),
        Arc::from(bucket.name.as_str()),
    )
    .map_err(ControllerError::InvalidSpec)?;
    let mut read = objects::fetch(context, set).await?;
    // A missing object is waited for (it may be created next), not a spec to fix.
    let missing = read.missing(&namespace);
    if !missing.is_empty() {
        return Err(ControllerError::ReferenceNotFound(format!(
            "{} {} not exist",
            missing.join(", "),
            if missing.len() == 1 { "does" } else { "do" }
        )));
    }
    let keys = set_keys(&set.spec, &mut read).map_err(ControllerError::InvalidSpec)?;
    let bucket_name: Arc<str> = Arc::from(bucket.name.as_str());
    let keys: Vec<DesiredEntry> = keys
        .into_iter()
        .map(|key| DesiredEntry {
            owner: owner.clone(),
            // Where the key comes from (`spec.entries[3]`, `ConfigMap app (key "k")`):
            // what a problem with its value names.
            origin: Origin {
                source: key.source.to_string().into(),
                line: 0,
            },
            bucket: bucket_name.clone(),
            key: key.key.into(),
            value: key.value,
            update_policy: set.spec.update_policy,
            deletion_policy: set.spec.deletion_policy,
            take_over: None,
            sensitive: key.sensitive,
        })
        .collect();
    // A mirror takes no writes at all.
    if let Some(first) = keys.first() {
        let mirror = Limits {
            bucket: &bucket.name,
            mirror: bucket.config.mirror.is_some().then_some(Known::Declared),
            max_value_size: -1,
            max_payload: None,
        };
        check_writable(first, &mirror, &context.settings.manager).map_err(|unwritable| {
            ControllerError::InvalidSpec(vec![FieldProblem::new(
                unwritable.field,
                unwritable.message,
            )])
        })?;
    }
    Ok(Resolved {
        bucket,
        set: desired,
        keys,
        nats,
    })
}
