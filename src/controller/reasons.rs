//! Every reason kvop writes into a `Ready` condition, classified once: ready, still
//! progressing (kvop retries on its own), or stalled (it needs a human: retrying cannot
//! help until the object, the cluster's settings or NATS's permissions change). The one
//! table drives the `Reconciling` and `Stalled` conditions (which kstatus, and so Flux
//! and `kubectl`'s waits, read), the Argo CD health check and the reason table of
//! docs/gitops.md; tests/generated_files.rs keeps the docs equal to what this generates.

/// What a reason means for whoever waits on the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// `Ready=True`: NATS holds what the object declares.
    Ready,
    /// Not ready yet; kvop retries on its own (NATS down, a referenced object missing).
    Progressing,
    /// Not ready, and retrying will not help: a human must act.
    Stalled,
}

/// One reason kvop writes, with what it means.
#[derive(Debug, Clone, Copy)]
pub struct Reason {
    pub name: &'static str,
    pub health: Health,
    /// The kinds that carry it: `KeyValueBucket`, `KeyValueEntry` or both.
    pub kinds: &'static str,
    pub meaning: &'static str,
}

const BOTH: &str = "both";
const BUCKET: &str = "KeyValueBucket";
const ENTRY: &str = "KeyValueEntry";

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
        }
    }

    /// Argo CD's verdict with the health check of [`argocd_health_lua`].
    pub fn argocd(self) -> &'static str {
        match self {
            Health::Ready => "Healthy",
            Health::Progressing => "Progressing",
            Health::Stalled => "Degraded",
        }
    }
}

/// The Argo CD health check of both kinds, in Lua.
pub fn argocd_health_lua() -> String {
    let stalled: Vec<String> = REASONS
        .iter()
        .filter(|reason| reason.health == Health::Stalled)
        .map(|reason| format!("  {} = true,", reason.name))
        .collect();
    format!(
        r#"-- Generated from kvop's reason table (src/controller/reasons.rs).
local stalled = {{
{}
}}
hs = {{status = "Progressing", message = "waiting for kvop"}}
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "being deleted"
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "kvop has not seen the latest spec yet"
  return hs
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    hs.message = condition.reason .. ": " .. (condition.message or "")
    if condition.status == "True" then
      hs.status = "Healthy"
    elseif stalled[condition.reason] then
      hs.status = "Degraded"
    end
  end
end
return hs
"#,
        stalled.join("\n")
    )
}

/// The `argocd-cm` entries that register [`argocd_health_lua`] for both kinds.
pub fn argocd_config_map() -> String {
    let lua: String = argocd_health_lua()
        .lines()
        .map(|line| {
            if line.is_empty() {
                "\n".to_string()
            } else {
                format!("    {line}\n")
            }
        })
        .collect();
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\ndata:\n  resource.customizations.health.kvop.dev_KeyValueBucket: &kvop-health |\n{lua}  resource.customizations.health.kvop.dev_KeyValueEntry: *kvop-health\n"
    )
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

    #[test]
    fn the_lua_marks_exactly_the_stalled_reasons_degraded() {
        let lua = argocd_health_lua();
        for reason in REASONS {
            let listed = lua.contains(&format!("  {} = true,", reason.name));
            assert_eq!(listed, reason.health == Health::Stalled, "{}", reason.name);
        }
    }
}
