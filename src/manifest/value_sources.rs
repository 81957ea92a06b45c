//! The `ConfigMap` and `Secret` manifests of a file set, read for entries' `valueFrom`
//! as the operator reads them from the cluster, so a GitOps repository's ConfigMaps and
//! Secrets work without one. A Secret's values are marked sensitive: they are masked in
//! every diff, and no message here ever quotes a value.

use std::collections::HashMap;

use base64::Engine;

use super::LoadError;
use super::value_blocks::ValueBlocks;
use crate::api::ValueFrom;
use crate::desired::{DesiredEntry, Origin};

/// The kinds `valueFrom` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum SourceKind {
    ConfigMap,
    Secret,
}

impl SourceKind {
    /// The kind of a `v1` ConfigMap or Secret manifest; `None` for anything else.
    pub(super) fn of(api_version: &str, kind: &str) -> Option<SourceKind> {
        match (api_version, kind) {
            ("v1", "ConfigMap") => Some(SourceKind::ConfigMap),
            ("v1", "Secret") => Some(SourceKind::Secret),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => "ConfigMap",
            SourceKind::Secret => "Secret",
        }
    }
}

/// One object, by kind, namespace and name.
type ObjectKey = (SourceKind, String, String);

struct Source {
    origin: Origin,
    /// The name as the manifest gives it (`namespace/name`, or `name`), for the notice.
    shown: String,
    object: serde_json::Map<String, serde_json::Value>,
    read: bool,
}

/// An entry's `valueFrom`, to be read once every file is loaded.
pub(super) struct ValueReference {
    /// The entry's index among the collector's entries.
    pub entry: usize,
    pub kind: SourceKind,
    pub namespace: String,
    pub name: String,
    pub key: String,
    /// The line of `spec.valueFrom`, to blame.
    pub at: Origin,
}

impl ValueReference {
    /// The reference `from` makes from an entry in `namespace`; `None` when it names
    /// neither kind (the spec's rules report that).
    pub(super) fn new(entry: usize, namespace: &str, from: &ValueFrom, at: Origin) -> Option<Self> {
        let (kind, reference) = match (&from.secret_key_ref, &from.config_map_key_ref) {
            (Some(reference), None) => (SourceKind::Secret, reference),
            (None, Some(reference)) => (SourceKind::ConfigMap, reference),
            _ => return None,
        };
        Some(ValueReference {
            entry,
            kind,
            namespace: namespace.to_string(),
            name: reference.name.clone(),
            key: reference.key.clone(),
            at,
        })
    }

    fn field(&self) -> &'static str {
        match self.kind {
            SourceKind::ConfigMap => "spec.valueFrom.configMapKeyRef",
            SourceKind::Secret => "spec.valueFrom.secretKeyRef",
        }
    }
}

/// The ConfigMaps and Secrets read so far, and the references to them.
#[derive(Default)]
pub(super) struct ValueSources {
    objects: HashMap<ObjectKey, Source>,
    references: Vec<ValueReference>,
    duplicates: Vec<LoadError>,
}

impl ValueSources {
    /// Keeps a ConfigMap or Secret manifest (the whole document: only a referenced key is
    /// ever decoded).
    pub(super) fn add(
        &mut self,
        kind: SourceKind,
        (namespace, name): (String, String),
        shown: String,
        origin: Origin,
        object: serde_json::Map<String, serde_json::Value>,
    ) {
        let source = Source {
            origin,
            shown,
            object,
            read: false,
        };
        self.keep((kind, namespace, name), source);
    }

    /// Keeps `source` under `key`, unless another object already has that name.
    fn keep(&mut self, key: ObjectKey, source: Source) {
        if let Some(first) = self.objects.get(&key) {
            self.duplicates.push(LoadError {
                message: format!(
                    "{} {}/{} is declared twice: first declared at {}",
                    key.0.name(),
                    key.1,
                    key.2,
                    first.origin
                ),
                origin: source.origin,
                field: None,
            });
            return;
        }
        self.objects.insert(key, source);
    }

    pub(super) fn refer(&mut self, reference: ValueReference) {
        self.references.push(reference);
    }

    /// Appends what another collector read; its entries follow the first `entries`.
    pub(super) fn merge(&mut self, other: ValueSources, entries: usize) {
        self.duplicates.extend(other.duplicates);
        for (key, source) in other.objects {
            self.keep(key, source);
        }
        self.references
            .extend(other.references.into_iter().map(|mut reference| {
                reference.entry += entries;
                reference
            }));
    }

    /// Gives each referring entry its value (a Secret's marked sensitive). Returns the
    /// problems, and the objects no entry read (said as skipped, like any manifest kvop
    /// does not declare).
    pub(super) fn resolve(
        mut self,
        entries: &mut [DesiredEntry],
        values: &mut ValueBlocks,
    ) -> (Vec<LoadError>, Vec<String>) {
        let mut errors = std::mem::take(&mut self.duplicates);
        for reference in std::mem::take(&mut self.references) {
            match self.read(&reference) {
                Ok(bytes) => {
                    let entry = &mut entries[reference.entry];
                    entry.value = values.keep(&bytes);
                    entry.sensitive = reference.kind == SourceKind::Secret;
                }
                Err(message) => errors.push(LoadError {
                    origin: reference.at.clone(),
                    field: Some(reference.field().into()),
                    message,
                }),
            }
        }
        let mut unread: Vec<(&Origin, String)> = self
            .objects
            .iter()
            .filter(|(_, source)| !source.read)
            .map(|((kind, _, _), source)| {
                (
                    &source.origin,
                    format!(
                        "{}: skipped v1 {} {} (no entry or set reads it)",
                        source.origin,
                        kind.name(),
                        source.shown
                    ),
                )
            })
            .collect();
        unread.sort_by(|a, b| (&*a.0.source, a.0.line).cmp(&(&*b.0.source, b.0.line)));
        (errors, unread.into_iter().map(|(_, said)| said).collect())
    }

    /// Every key of a whole object with its value, decoded, sorted by key, for a set's
    /// `from` or an item's `valueFrom`; or why it cannot be read (never quoting a value).
    pub(super) fn read_object(
        &mut self,
        kind: SourceKind,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, String> {
        let shown = kind.name();
        let Some(source) = self
            .objects
            .get_mut(&(kind, namespace.to_string(), name.to_string()))
        else {
            return Err(format!(
                "{shown} {namespace}/{name} is not in the files: in standalone mode a set reads the {shown} manifests given with -f"
            ));
        };
        source.read = true;
        let (text_field, base64_field) = fields_of(kind);
        let mut keys: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
        // A Secret's `stringData` wins over `data` for the same key, as the apiserver
        // merges them; the base64 field is read first so the text one overwrites it.
        if let Some(map) = source.object.get(base64_field).and_then(|v| v.as_object()) {
            for (key, value) in map {
                let decoded = value
                    .as_str()
                    .and_then(|encoded| {
                        base64::engine::general_purpose::STANDARD
                            .decode(encoded.trim())
                            .ok()
                    })
                    .ok_or_else(|| {
                        format!(
                            "{base64_field}.{key} of {shown} {namespace}/{name} is not valid base64"
                        )
                    })?;
                keys.insert(key.clone(), decoded);
            }
        }
        if let Some(map) = source.object.get(text_field).and_then(|v| v.as_object()) {
            for (key, value) in map {
                let text = value.as_str().ok_or_else(|| {
                    format!("{text_field}.{key} of {shown} {namespace}/{name} is not a string")
                })?;
                keys.insert(key.clone(), text.as_bytes().to_vec());
            }
        }
        Ok(keys.into_iter().collect())
    }

    /// The referenced value, or why there is none (never quoting a value).
    fn read(&mut self, reference: &ValueReference) -> Result<Vec<u8>, String> {
        let kind = reference.kind.name();
        let object = format!("{kind} {}/{}", reference.namespace, reference.name);
        let Some(source) = self.objects.get_mut(&(
            reference.kind,
            reference.namespace.clone(),
            reference.name.clone(),
        )) else {
            return Err(format!(
                "{object} is not in the files: in standalone mode valueFrom reads the {kind} manifests given with -f"
            ));
        };
        source.read = true;
        let (text_field, base64_field) = fields_of(reference.kind);
        let field = |name: &str| {
            source
                .object
                .get(name)
                .and_then(|field| field.get(&reference.key))
        };
        if let Some(value) = field(text_field) {
            return match value.as_str() {
                Some(text) => Ok(text.as_bytes().to_vec()),
                None => Err(format!(
                    "{text_field}.{} of {object} is not a string",
                    reference.key
                )),
            };
        }
        if let Some(value) = field(base64_field) {
            return value
                .as_str()
                .and_then(|encoded| {
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded.trim())
                        .ok()
                })
                .ok_or_else(|| {
                    format!(
                        "{base64_field}.{} of {object} is not valid base64",
                        reference.key
                    )
                });
        }
        let mut keys: Vec<&str> = [text_field, base64_field]
            .iter()
            .filter_map(|name| source.object.get(*name)?.as_object())
            .flat_map(|map| map.keys().map(String::as_str))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        Err(format!(
            "{object} has no key {:?} (it has: {})",
            reference.key,
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        ))
    }
}

/// The field of an object's values as text, and the one of its values in base64.
fn fields_of(kind: SourceKind) -> (&'static str, &'static str) {
    match kind {
        SourceKind::ConfigMap => ("data", "binaryData"),
        SourceKind::Secret => ("stringData", "data"),
    }
}
