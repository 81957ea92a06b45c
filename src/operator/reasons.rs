//! Every reason kvop writes into a `Ready` condition, classified once: ready, still
//! progressing (kvop retries on its own), or stalled (it needs a human: retrying cannot
//! help until the object, the cluster's settings or NATS's permissions change), or
//! paused. The one table drives the `Reconciling` and `Stalled` conditions (which
//! kstatus, and so Flux and `kubectl`'s waits, read), the Argo CD health check
//! ([`super::argocd`]) and the reason table of docs/gitops.md; tests/generated_files.rs
//! keeps the docs equal to what this generates.

/// What a reason means for whoever waits on the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// `Ready=True`: NATS holds what the object declares.
    Ready,
    /// Not ready yet; kvop retries on its own (NATS down, a referenced object missing).
    Progressing,
    /// Not ready, and retrying will not help: a human must act.
    Stalled,
    /// Paused by a human (`kvop.dev/paused`): `Ready` says whether NATS holds the
    /// declaration anyway; kvop is not working on it (neither reconciling nor stalled).
    Paused,
}

/// One reason kvop writes, with what it means.
#[derive(Debug, Clone, Copy)]
pub struct Reason {
    pub name: &'static str,
    pub health: Health,
    /// The kinds that carry it: `KeyValueBucket`, the kinds that declare keys
    /// (`KeyValueEntry`, `KeyValueEntrySet`), or all.
    pub kinds: &'static str,
    pub meaning: &'static str,
}

const BOTH: &str = "all";
const BUCKET: &str = "KeyValueBucket";
const ENTRY: &str = "KeyValueEntry, KeyValueEntrySet";

const fn reason(
    name: &'static str,
    health: Health,
    kinds: &'static str,
    meaning: &'static str,
) -> Reason {
    Reason {
        name,
        health,
        kinds,
        meaning,
    }
}

/// Every reason of a `Ready` condition, in the order the docs list them.
pub const REASONS: &[Reason] = &[
    reason(
        "Ready",
        Health::Ready,
        BUCKET,
        "the bucket matches its spec",
    ),
    reason("Created", Health::Ready, BUCKET, "the bucket was created"),
    reason(
        "Updated",
        Health::Ready,
        BUCKET,
        "the bucket's configuration was changed to its spec",
    ),
    reason(
        "Observed",
        Health::Ready,
        BUCKET,
        "`managementPolicy: Observe`: the bucket exists",
    ),
    reason(
        "Synced",
        Health::Ready,
        ENTRY,
        "the key holds the declared value",
    ),
    reason(
        "CreateOnlyKeyExists",
        Health::Ready,
        ENTRY,
        "`updatePolicy: CreateOnly` and the key exists: left as it is",
    ),
    reason(
        "BucketNotReady",
        Health::Progressing,
        ENTRY,
        "the entry's bucket is not ready yet",
    ),
    reason(
        "ReferenceNotFound",
        Health::Progressing,
        ENTRY,
        "a referenced Secret, ConfigMap or key does not exist (yet)",
    ),
    reason(
        "NotWritten",
        Health::Progressing,
        ENTRY,
        "the key could not be written yet (its bucket is missing)",
    ),
    reason(
        "NatsUnavailable",
        Health::Progressing,
        BOTH,
        "NATS cannot be reached",
    ),
    reason(
        "Timeout",
        Health::Progressing,
        BOTH,
        "NATS did not answer in time",
    ),
    reason(
        "RevisionConflict",
        Health::Progressing,
        BOTH,
        "someone wrote between kvop's read and its write; retried",
    ),
    reason(
        "NatsError",
        Health::Progressing,
        BOTH,
        "another NATS error; retried with backoff",
    ),
    reason(
        "KubernetesApiError",
        Health::Progressing,
        BOTH,
        "the apiserver refused or failed a request; retried",
    ),
    reason(
        "FinalizerError",
        Health::Progressing,
        BOTH,
        "adding or removing kvop's finalizer failed; retried",
    ),
    reason(
        "DeletionBlocked",
        Health::Progressing,
        BOTH,
        "being deleted; NATS refuses the cleanup for now, the finalizer stays",
    ),
    reason(
        "InvalidSpec",
        Health::Stalled,
        BOTH,
        "the spec cannot be carried out (a value over the bucket's limit, a bad reference, ...)",
    ),
    reason(
        "ImmutableFieldChanged",
        Health::Stalled,
        BUCKET,
        "a field the server cannot change on an existing bucket was changed (`storage`, ...)",
    ),
    reason(
        "BucketMissing",
        Health::Stalled,
        BUCKET,
        "`managementPolicy: Observe` and the bucket does not exist",
    ),
    reason(
        "Conflict",
        Health::Stalled,
        ENTRY,
        "`updatePolicy: IfUnchanged` and another client wrote the key: left as it is",
    ),
    reason(
        "ClaimedElsewhere",
        Health::Stalled,
        BOTH,
        "another kvop object (or manager) holds the bucket or key",
    ),
    reason(
        "AdoptionRequired",
        Health::Stalled,
        BUCKET,
        "the bucket exists and kvop did not create it: needs `kvop.dev/adopt: \"true\"`",
    ),
    reason(
        "Unauthorized",
        Health::Stalled,
        BOTH,
        "NATS refused the credentials",
    ),
    reason(
        "Forbidden",
        Health::Stalled,
        BOTH,
        "NATS refused the operation to these credentials",
    ),
    reason(
        "InvalidConnectionSettings",
        Health::Stalled,
        BOTH,
        "the connection settings cannot work (a bad URL, TLS material, ...)",
    ),
    reason(
        "Rejected",
        Health::Stalled,
        BOTH,
        "NATS rejected the request as invalid",
    ),
    reason(
        "ServerNotAllowed",
        Health::Stalled,
        BOTH,
        "the operator's tenancy settings refuse the servers `spec.connection` names",
    ),
    reason(
        "BucketNotAllowed",
        Health::Stalled,
        BOTH,
        "the namespace's tenant may not use this bucket name",
    ),
    reason(
        "NamespaceNotAllowed",
        Health::Stalled,
        BOTH,
        "no tenant rule admits the namespace",
    ),
];

/// How `name` reads; a reason not in the table (none should be: a test checks every
/// one kvop emits) counts as progressing, which never claims more than kvop knows.
pub fn health_of(name: &str) -> Health {
    REASONS
        .iter()
        .find(|reason| reason.name == name)
        .map_or(Health::Progressing, |reason| reason.health)
}

impl Health {
    /// kstatus' verdict (Flux's health checks and `wait`, `kubectl`-style waits).
    pub fn kstatus(self) -> &'static str {
        match self {
            Health::Ready => "Current",
            Health::Progressing => "InProgress",
            Health::Stalled => "Failed",
            Health::Paused => "Current if `Ready`, else InProgress",
        }
    }

    /// Argo CD's verdict with the health check of [`argocd_health_lua`].
    pub fn argocd(self) -> &'static str {
        match self {
            Health::Ready => "Healthy",
            Health::Progressing => "Progressing",
            Health::Stalled => "Degraded",
            Health::Paused => "Suspended",
        }
    }
}

/// The reason table of docs/gitops.md: what each reason means and what each tool shows.
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| reason | kinds | what it means | `Ready` | `Reconciling` / `Stalled` | kstatus (Flux, `kubectl`) | Argo CD |\n|---|---|---|---|---|---|---|\n",
    );
    for reason in REASONS {
        let (ready, extra) = match reason.health {
            Health::Ready => ("True", "neither"),
            Health::Progressing => ("False", "`Reconciling=True`"),
            Health::Stalled => ("False", "`Stalled=True`"),
            Health::Paused => ("as NATS holds it", "neither"),
        };
        table.push_str(&format!(
            "| `{}` | {} | {} | {ready} | {extra} | {} | {} |\n",
            reason.name,
            reason.kinds,
            reason.meaning,
            reason.health.kstatus(),
            reason.health.argocd()
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_once() {
        let mut names: Vec<&str> = REASONS.iter().map(|reason| reason.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a reason listed twice");
    }

    /// Every reason a condition can carry is in the table: the errors' reasons (each
    /// variant), the bucket actions' verdicts, the tenancy and claim refusals, and the
    /// entry verdicts' literals.
    #[test]
    fn every_reason_kvop_writes_is_classified() {
        use crate::nats::NatsError;
        use crate::operator::error::ControllerError;
        use crate::operator::tenancy::Refusal;
        use crate::plan::{BucketAction, BucketRefusal};
        let listed = |reason: &str| {
            assert!(
                REASONS.iter().any(|known| known.name == reason),
                "{reason} is not in src/operator/reasons.rs"
            );
        };
        let detail = || (None, String::new(), None);
        let (during, text, source) = detail();
        let nats = [
            NatsError::Unavailable {
                during,
                detail: text,
                source,
            },
            NatsError::NotConnected {
                servers: String::new(),
            },
            NatsError::Conflict,
            NatsError::Settings {
                during: None,
                detail: String::new(),
                source: None,
            },
            NatsError::Unauthorized {
                during: None,
                detail: String::new(),
                source: None,
            },
            NatsError::Forbidden {
                during: None,
                detail: String::new(),
                source: None,
            },
            NatsError::Timeout {
                during: None,
                detail: String::new(),
                source: None,
            },
            NatsError::Rejected {
                during: None,
                code: 0,
                message: String::new(),
                source: None,
            },
            NatsError::Other {
                during: None,
                detail: String::new(),
                source: None,
            },
        ];
        for error in nats {
            listed(ControllerError::Nats(error).reason());
        }
        for error in [
            ControllerError::InvalidSpec(Vec::new()),
            ControllerError::BucketNotReady(String::new()),
            ControllerError::ReferenceNotFound(String::new()),
        ] {
            listed(error.reason());
        }
        listed("KubernetesApiError");
        listed("FinalizerError");
        for refusal in [
            Refusal::ServersForbidden,
            Refusal::NamespaceNotListed {
                namespace: String::new(),
            },
            Refusal::BucketNotAllowed {
                field: String::new(),
                bucket: String::new(),
                namespace: String::new(),
                allowed: String::new(),
            },
            Refusal::OriginHeldElsewhere {
                field: String::new(),
                bucket: String::new(),
                holder: String::new(),
            },
        ] {
            listed(refusal.reason());
        }
        for refusal in [
            BucketRefusal::NotAdopted,
            BucketRefusal::Claimed {
                holder: String::new(),
            },
        ] {
            listed(refusal.reason());
        }
        for action in [
            BucketAction::Unchanged,
            BucketAction::Observe,
            BucketAction::Missing,
            BucketAction::Blocked { changes: vec![] },
        ] {
            listed(crate::operator::bucket::readiness_reason(&action));
        }
        // Creating and updating a bucket carry its configuration: their literals.
        for reason in ["Created", "Updated"] {
            listed(reason);
        }
        for entry_reason in [
            "Synced",
            "Created",
            "CreateOnlyKeyExists",
            "ClaimedElsewhere",
            "Conflict",
            "NotWritten",
            "DeletionBlocked",
        ] {
            listed(entry_reason);
        }
    }
}
