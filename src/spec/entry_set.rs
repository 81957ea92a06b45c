//! The rules of a `KeyValueEntrySet`, shared by the manifest loader and the operator:
//! its keys, from inline items and whole ConfigMaps and Secrets, each checked after its
//! prefix, with collisions refused naming both sources. Where the objects come from (the
//! files, or the cluster) is the caller's, behind [`SetObjects`].

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use bytes::Bytes;

use super::{FieldProblem, ValueFields, ValueSource, problem, value_source};
use crate::api::entry_set::ITEM_VALUE_SOURCES;
use crate::api::{KeyValueEntrySetSpec, SetPrune, ValueFrom};
use crate::desired::{DesiredSet, ObjectRef, Origin};
use crate::names;

/// The annotation that lets a set remove keys while it declares none.
pub const ALLOW_EMPTY_PRUNE_ANNOTATION: &str = "kvop.dev/allow-empty-prune";

/// The kinds a set reads whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    ConfigMap,
    Secret,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "ConfigMap",
            ObjectKind::Secret => "Secret",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ConfigMaps and Secrets of a set's namespace, as its front door reads them.
pub trait SetObjects {
    /// Every key of the object with its value, decoded (a ConfigMap's `data` and
    /// `binaryData`, a Secret's `stringData` and `data`); or why it cannot be read, in
    /// words that never quote a value.
    fn read(&mut self, kind: ObjectKind, name: &str) -> Result<Vec<(String, Bytes)>, String>;
}

/// Where a key of a set comes from, for messages and origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `spec.entries[index]`.
    Item(usize),
    /// A key of the object `spec.from[index]` names.
    Object {
        index: usize,
        kind: ObjectKind,
        name: String,
        key: String,
    },
}

impl KeySource {
    /// The field that declares the key.
    pub fn field(&self) -> String {
        match self {
            KeySource::Item(index) => format!("spec.entries[{index}]"),
            KeySource::Object { index, kind, .. } => {
                format!("spec.from[{index}].{}", ref_field(*kind))
            }
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Item(index) => write!(f, "spec.entries[{index}]"),
            KeySource::Object {
                kind, name, key, ..
            } => write!(f, "{kind} {name} (key {key:?})"),
        }
    }
}

/// One key of a set, with its prefix, and its value.
#[derive(Debug, Clone)]
pub struct SetKey {
    pub key: String,
    pub value: Bytes,
    /// From a Secret: never shown.
    pub sensitive: bool,
    pub source: KeySource,
}

fn ref_field(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::ConfigMap => "configMapRef",
        ObjectKind::Secret => "secretRef",
    }
}

/// The set as desired state beside its keys, or the problems of its spec.
pub fn desired_set(
    owner: ObjectRef,
    origin: Origin,
    spec: &KeyValueEntrySetSpec,
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    bucket: std::sync::Arc<str>,
) -> Result<DesiredSet, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let prefix = spec.key_prefix.clone().unwrap_or_default();
    if let Err(message) = check_prefix(&prefix) {
        problems.push(problem("spec.keyPrefix", message));
    }
    if spec.prune == SetPrune::Exclusive && prefix.is_empty() {
        problems.push(problem(
            "spec.prune",
            "prune Exclusive needs spec.keyPrefix: a set may own a prefix, never a whole bucket",
        ));
    }
    if spec.bucket_ref.name.is_empty() {
        problems.push(problem("spec.bucketRef.name", "bucketRef.name is required"));
    }
    let allow_empty_prune = super::flag(annotations, ALLOW_EMPTY_PRUNE_ANNOTATION)
        .map_err(|problem| problems.push(problem))
        .unwrap_or(false);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(DesiredSet {
        owner,
        origin,
        bucket,
        key_prefix: prefix,
        prune: spec.prune,
        deletion_policy: spec.deletion_policy,
        allow_empty_prune,
    })
}

/// A prefix is any run of key characters that cannot make a key invalid by itself
/// (a leading `.` or a `..`); a trailing `.` or `/` is what prefixes are for.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if let Some(bad) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-/_=.".contains(*c)))
    {
        return Err(format!(
            "invalid character {bad:?}: a key prefix may hold letters, digits and -/_=."
        ));
    }
    if prefix.starts_with('.') || prefix.contains("..") {
        return Err("a key prefix may not start with '.' nor contain '..'".into());
    }
    Ok(())
}

/// Every key `spec` declares, with its prefix, in declaration order (items, then each
/// object's keys sorted), or every problem found: a key that is invalid after its prefix,
/// an object or key that cannot be read, and two sources giving one key.
pub fn set_keys(
    spec: &KeyValueEntrySetSpec,
    objects: &mut impl SetObjects,
) -> Result<Vec<SetKey>, Vec<FieldProblem>> {
    let prefix = spec.key_prefix.as_deref().unwrap_or_default();
    let mut problems = Vec::new();
    let mut keys: Vec<SetKey> = Vec::with_capacity(spec.entries.len());
    for (index, item) in spec.entries.iter().enumerate() {
        let at = format!("spec.entries[{index}]");
        let fields = ValueFields {
            value: item.value.as_ref(),
            binary_value: item.binary_value.as_ref(),
            json_value: item.json_value.as_ref(),
            value_from: item.value_from.as_ref(),
        };
        let value = match value_source(fields, &at, &ITEM_VALUE_SOURCES) {
            Ok(ValueSource::Inline(bytes)) => Ok((bytes, false)),
            Ok(ValueSource::From(from)) => read_one(objects, from)
                .map_err(|message| problem(&format!("{at}.valueFrom"), message)),
            Err(problem) => Err(problem),
        };
        let key = format!("{prefix}{}", item.key);
        let checked = names::check_key(&key)
            .map_err(|error| problem(&format!("{at}.key"), with_prefix(prefix, error)));
        match (checked, value) {
            (Ok(()), Ok((value, sensitive))) => keys.push(SetKey {
                key,
                value,
                sensitive,
                source: KeySource::Item(index),
            }),
            (checked, value) => problems.extend(checked.err().into_iter().chain(value.err())),
        }
    }
    for (index, source) in spec.from.iter().enumerate() {
        let (kind, reference) = match (&source.config_map_ref, &source.secret_ref) {
            (Some(reference), None) => (ObjectKind::ConfigMap, reference),
            (None, Some(reference)) => (ObjectKind::Secret, reference),
            _ => {
                problems.push(problem(
                    &format!("spec.from[{index}]"),
                    "exactly one of configMapRef and secretRef must be set",
                ));
                continue;
            }
        };
        let field = format!("spec.from[{index}].{}", ref_field(kind));
        let data = match objects.read(kind, &reference.name) {
            Ok(data) => data,
            Err(message) => {
                problems.push(problem(&field, message));
                continue;
            }
        };
        for (data_key, value) in data {
            let key = format!("{prefix}{data_key}");
            if let Err(error) = names::check_key(&key) {
                problems.push(problem(
                    &field,
                    format!(
                        "{kind} {} key {data_key:?}: {}",
                        reference.name,
                        with_prefix(prefix, error)
                    ),
                ));
                continue;
            }
            keys.push(SetKey {
                key,
                value,
                sensitive: kind == ObjectKind::Secret,
                source: KeySource::Object {
                    index,
                    kind,
                    name: reference.name.clone(),
                    key: data_key,
                },
            });
        }
    }
    problems.extend(collisions(&keys));
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems)
    }
}

/// Two sources of one set giving the same key, each told once, naming both.
fn collisions(keys: &[SetKey]) -> Vec<FieldProblem> {
    let mut first: HashMap<&str, &KeySource> = HashMap::with_capacity(keys.len());
    let mut problems = Vec::new();
    for key in keys {
        match first.entry(&key.key) {
            Entry::Vacant(vacant) => {
                vacant.insert(&key.source);
            }
            Entry::Occupied(occupied) => problems.push(problem(
                &key.source.field(),
                format!(
                    "key {:?} comes from both {} and {}: each key of a set must have one source",
                    key.key,
                    occupied.get(),
                    key.source
                ),
            )),
        }
    }
    problems
}

/// One key of an object, for an item's `valueFrom`.
fn read_one(objects: &mut impl SetObjects, from: &ValueFrom) -> Result<(Bytes, bool), String> {
    let (kind, reference) = match (&from.secret_key_ref, &from.config_map_key_ref) {
        (Some(reference), None) => (ObjectKind::Secret, reference),
        (None, Some(reference)) => (ObjectKind::ConfigMap, reference),
        _ => return Err("exactly one of secretKeyRef and configMapKeyRef must be set".into()),
    };
    let data = objects.read(kind, &reference.name)?;
    let found = data
        .iter()
        .find(|(key, _)| *key == reference.key)
        .map(|(_, value)| value.clone());
    match found {
        Some(value) => Ok((value, kind == ObjectKind::Secret)),
        None => {
            let names: Vec<&str> = data.iter().map(|(key, _)| key.as_str()).collect();
            Err(format!(
                "{kind} {} has no key {:?} (it has: {})",
                reference.name,
                reference.key,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        }
    }
}

fn with_prefix(prefix: &str, error: names::KeyError) -> String {
    if prefix.is_empty() {
        error.to_string()
    } else {
        format!("{error} (with keyPrefix {prefix:?})")
    }
}
