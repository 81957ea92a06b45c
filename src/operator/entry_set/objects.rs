//! The ConfigMaps and Secrets a set reads, fetched by name from its namespace before
//! its keys are expanded (`spec::set_keys` reads them through [`SetObjects`], which is
//! synchronous). Secrets are read by name only, as for an entry's `valueFrom` (RBAC
//! `get`, never `list` or `watch`), and the version read is recorded so that a rotation
//! re-queues the set (`secret_refresh`). Values are never logged or put into status.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef as StoreRef;

use crate::api::{KeyValueEntrySet, KeyValueEntrySetSpec};
use crate::operator::connection::Reader;
use crate::operator::context::Context;
use crate::operator::error::ControllerError;
use crate::spec::entry_set::{ObjectKind, SetObjects};

/// Every key of an object with its value.
type Data = Vec<(String, Bytes)>;

/// The objects one reconcile of a set read: each one's keys and values, `None` when it
/// does not exist.
pub(super) struct ClusterObjects {
    read: HashMap<(ObjectKind, String), Option<Data>>,
}

impl ClusterObjects {
    /// The objects the set names that do not exist, as `Kind namespace/name`.
    pub(super) fn missing(&self, namespace: &str) -> Vec<String> {
        let mut missing: Vec<String> = self
            .read
            .iter()
            .filter(|(_, data)| data.is_none())
            .map(|((kind, name), _)| format!("{kind} {namespace}/{name}"))
            .collect();
        missing.sort();
        missing
    }
}

impl SetObjects for ClusterObjects {
    fn read(&mut self, kind: ObjectKind, name: &str) -> Result<Vec<(String, Bytes)>, String> {
        match self.read.get(&(kind, name.to_string())) {
            Some(Some(data)) => Ok(data.clone()),
            Some(None) => Err(format!("{kind} {name} does not exist")),
            // Every name the spec holds was read first; nothing else is asked for.
            None => Err(format!("{kind} {name} was not read")),
        }
    }
}

/// Every ConfigMap and Secret `spec` names (whole in `from`, or one key of it in an
/// item's `valueFrom`), each once.
pub(super) fn referenced(spec: &KeyValueEntrySetSpec) -> BTreeSet<(ObjectKind, &str)> {
    let whole = spec.from.iter().flat_map(|source| {
        let config_map = source
            .config_map_ref
            .as_ref()
            .map(|r| (ObjectKind::ConfigMap, r.name.as_str()));
        let secret = source
            .secret_ref
            .as_ref()
            .map(|r| (ObjectKind::Secret, r.name.as_str()));
        config_map.into_iter().chain(secret)
    });
    let items = spec
        .entries
        .iter()
        .filter_map(|item| item.value_from.as_ref())
        .flat_map(|from| {
            let config_map = from
                .config_map_key_ref
                .as_ref()
                .map(|r| (ObjectKind::ConfigMap, r.name.as_str()));
            let secret = from
                .secret_key_ref
                .as_ref()
                .map(|r| (ObjectKind::Secret, r.name.as_str()));
            config_map.into_iter().chain(secret)
        });
    whole.chain(items).collect()
}

/// Reads every object the set names.
pub(super) async fn fetch(
    context: &Context,
    set: &KeyValueEntrySet,
) -> Result<ClusterObjects, ControllerError> {
    let namespace = set.namespace().unwrap_or_default();
    let mut read = HashMap::new();
    for (kind, name) in referenced(&set.spec) {
        let data = match kind {
            ObjectKind::ConfigMap => config_map(context, &namespace, name).await?,
            ObjectKind::Secret => secret(context, set, &namespace, name).await?,
        };
        read.insert((kind, name.to_string()), data);
    }
    Ok(ClusterObjects { read })
}

/// A ConfigMap's `data` and `binaryData`.
async fn config_map(
    context: &Context,
    namespace: &str,
    name: &str,
) -> Result<Option<Data>, ControllerError> {
    let api: Api<ConfigMap> = Api::namespaced(context.client.clone(), namespace);
    let Some(config_map) = api.get_opt(name).await? else {
        return Ok(None);
    };
    let text = config_map
        .data
        .into_iter()
        .flatten()
        .map(|(key, value)| (key, Bytes::from(value)));
    let binary = config_map
        .binary_data
        .into_iter()
        .flatten()
        .map(|(key, value)| (key, Bytes::from(value.0)));
    Ok(Some(text.chain(binary).collect()))
}

/// A Secret's `data` (and `stringData`, which the apiserver folds into `data` but a
/// Secret read from elsewhere may still carry), its version recorded for rotation.
async fn secret(
    context: &Context,
    set: &KeyValueEntrySet,
    namespace: &str,
    name: &str,
) -> Result<Option<Data>, ControllerError> {
    let api: Api<Secret> = Api::namespaced(context.client.clone(), namespace);
    let secret = api.get_opt(name).await?;
    context.secret_versions.record(
        namespace,
        name,
        Reader::EntrySet(StoreRef::from_obj(set)),
        secret
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone()),
    );
    let Some(secret) = secret else {
        return Ok(None);
    };
    let mut data: Data = secret
        .data
        .into_iter()
        .flatten()
        .map(|(key, value)| (key, Bytes::from(value.0)))
        .collect();
    for (key, value) in secret.string_data.into_iter().flatten() {
        if !data.iter().any(|(known, _)| *known == key) {
            data.push((key, Bytes::from(value)));
        }
    }
    Ok(Some(data))
}
