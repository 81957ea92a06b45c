//! Desired state: what the manifests declare, validated and normalized, independent of
//! where it came from (files or custom resources).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::api::stream::{Placement, Republish, StreamSource};
use crate::api::{
    BucketDeletionPolicy, EntryDeletionPolicy, ManagementPolicy, SetPrune, StorageType,
    UpdatePolicy,
};

/// Every declared bucket and entry, and the sets some of the entries come from.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub buckets: Vec<DesiredBucket>,
    /// Every declared key, a set's keys included (owned by the set).
    pub entries: Vec<DesiredEntry>,
    pub sets: Vec<DesiredSet>,
}

impl Desired {
    /// The sets whose keys are in `bucket` (a NATS bucket name).
    pub fn sets_of<'a>(&'a self, bucket: &'a str) -> impl Iterator<Item = &'a DesiredSet> + 'a {
        self.sets.iter().filter(move |set| &*set.bucket == bucket)
    }

    /// The entries that target `bucket` (a NATS bucket name).
    pub fn entries_of<'a>(
        &'a self,
        bucket: &'a str,
    ) -> impl Iterator<Item = &'a DesiredEntry> + 'a {
        self.entries
            .iter()
            .filter(move |entry| &*entry.bucket == bucket)
    }
}

/// A declaring object: its kind of holder, namespace and name. Written (in `Kvop-Owner`
/// headers and claims) as `namespace/name` for buckets and entries, as they always were,
/// and as `namespace/KeyValueEntrySet/name` for sets: an entry and a set of the same name
/// are different holders, and a set's key must never read as an entry's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: OwnerKind,
    pub namespace: String,
    pub name: String,
}

/// Which kind of object declares something, as far as its written name tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwnerKind {
    /// A `KeyValueBucket` or a `KeyValueEntry`: written `namespace/name`.
    Resource,
    /// A `KeyValueEntrySet`: written `namespace/KeyValueEntrySet/name`.
    EntrySet,
}

/// The middle part of a set's written name.
const ENTRY_SET_KIND: &str = "KeyValueEntrySet";

impl ObjectRef {
    /// A bucket or an entry.
    pub fn resource(namespace: impl Into<String>, name: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind: OwnerKind::Resource,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// A `KeyValueEntrySet`.
    pub fn entry_set(namespace: impl Into<String>, name: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind: OwnerKind::EntrySet,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Reads a written name back (`namespace/name` or `namespace/KeyValueEntrySet/name`);
    /// `None` for anything else.
    pub fn parse(written: &str) -> Option<ObjectRef> {
        let (namespace, rest) = written.split_once('/')?;
        let (kind, name) = match rest.split_once('/') {
            Some((ENTRY_SET_KIND, name)) => (OwnerKind::EntrySet, name),
            Some(_) => return None,
            None => (OwnerKind::Resource, rest),
        };
        (!namespace.is_empty() && !name.is_empty() && !name.contains('/')).then(|| ObjectRef {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// Whether `written` names this object, without building the name.
    pub fn is_written_as(&self, written: &str) -> bool {
        let Some(rest) = written
            .strip_prefix(self.namespace.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return false;
        };
        let rest = match self.kind {
            OwnerKind::Resource => Some(rest),
            OwnerKind::EntrySet => rest
                .strip_prefix(ENTRY_SET_KIND)
                .and_then(|rest| rest.strip_prefix('/')),
        };
        rest == Some(self.name.as_str())
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            OwnerKind::Resource => write!(f, "{}/{}", self.namespace, self.name),
            OwnerKind::EntrySet => {
                write!(f, "{}/{ENTRY_SET_KIND}/{}", self.namespace, self.name)
            }
        }
    }
}

/// Where a declaration was read: a file and line, or a custom resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file (shared by every object it declares) or other input.
    pub source: Arc<str>,
    pub line: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.source)
        } else {
            write!(f, "{}:{}", self.source, self.line)
        }
    }
}

/// A declared bucket.
#[derive(Debug, Clone)]
pub struct DesiredBucket {
    pub owner: ObjectRef,
    pub origin: Origin,
    /// The NATS bucket name.
    pub name: String,
    pub config: BucketConfig,
    pub management: ManagementPolicy,
    pub deletion: BucketDeletionPolicy,
    /// `kvop.dev/adopt: "true"`: take over the bucket if it exists without a claim.
    pub adopt: bool,
}

/// Who holds a bucket, recorded in its stream metadata: the manager and the declaring
/// object (`namespace/name`, and in the operator its uid). One object holds a bucket;
/// another that declares it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketClaim {
    pub manager: String,
    pub owner: String,
    pub uid: Option<String>,
}

impl fmt::Display for BucketClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "manager {:?} for {}", self.manager, self.owner)?;
        if let Some(uid) = &self.uid {
            write!(f, " (uid {uid})")?;
        }
        Ok(())
    }
}

/// The normalized projection of a bucket's configuration that kvop manages. Built from
/// a spec and from a server's stream config alike, so that two equal projections mean
/// "nothing to change" whatever the server filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketConfig {
    pub description: String,
    pub history: i64,
    /// Zero when values never expire.
    pub ttl: Duration,
    /// -1 when unlimited.
    pub max_value_size: i64,
    /// -1 when unlimited.
    pub max_bytes: i64,
    pub storage: StorageType,
    pub replicas: i64,
    pub compression: bool,
    /// Whether per-message TTL is on; it can never be turned off again. `None` where a
    /// declaration leaves it out: a new bucket is made without it and an existing one
    /// keeps what it has. A server's stream always projects to `Some`.
    pub allow_msg_ttl: Option<bool>,
    pub limit_marker_ttl: Option<Duration>,
    pub placement: Option<Placement>,
    pub republish: Option<Republish>,
    pub mirror: Option<StreamSource>,
    pub sources: Vec<StreamSource>,
    /// User metadata only: server-owned `_nats.*` keys are left out.
    pub metadata: BTreeMap<String, String>,
}

impl BucketConfig {
    /// What a bucket declared with an empty spec gets; plans show a new bucket's
    /// settings as the difference from this.
    pub fn defaults() -> BucketConfig {
        BucketConfig {
            description: String::new(),
            history: 1,
            ttl: Duration::ZERO,
            max_value_size: -1,
            max_bytes: -1,
            storage: StorageType::File,
            replicas: 1,
            compression: false,
            allow_msg_ttl: None,
            limit_marker_ttl: None,
            placement: None,
            republish: None,
            mirror: None,
            sources: Vec::new(),
            metadata: BTreeMap::new(),
        }
    }
}

/// A declared key.
#[derive(Debug, Clone)]
pub struct DesiredEntry {
    pub owner: ObjectRef,
    pub origin: Origin,
    /// The NATS bucket name, one copy per bucket.
    pub bucket: Arc<str>,
    /// Shared with the plan and the outcome of this key: one copy per key however many
    /// steps name it.
    pub key: Arc<str>,
    pub value: Bytes,
    pub update_policy: UpdatePolicy,
    pub deletion_policy: EntryDeletionPolicy,
    /// The foreign revision `IfUnchanged` may overwrite once (`kvop.dev/take-over`).
    pub take_over: Option<u64>,
    /// The value comes from a Secret: never shown, in a diff or anywhere else.
    pub sensitive: bool,
}

/// A declared `KeyValueEntrySet`, as far as the set as a whole decides: its keys are
/// [`DesiredEntry`]s owned by the set, planned and applied as any entry's; this is which
/// keys it removes once it no longer declares them.
#[derive(Debug, Clone)]
pub struct DesiredSet {
    pub owner: ObjectRef,
    pub origin: Origin,
    /// The NATS bucket name.
    pub bucket: Arc<str>,
    /// Prepended to every key of the set; empty when the set has none.
    pub key_prefix: String,
    pub prune: SetPrune,
    pub deletion_policy: EntryDeletionPolicy,
    /// `kvop.dev/allow-empty-prune: "true"`: the set may remove keys while it declares
    /// none (otherwise an emptied ConfigMap would delete every key the set wrote).
    pub allow_empty_prune: bool,
}
