//! Leader election on a `coordination.k8s.io/v1` Lease: one active instance, the others
//! standing by. Updates are guarded by resourceVersion, so two instances never both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long a lease holds without renewal.
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the leader renews, and a standby retries.
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// One participant in the election.
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
}

impl LeaderElection {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
    ) -> LeaderElection {
        LeaderElection {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
        }
    }

    /// Waits until this instance holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire().await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "acquired leadership");
                    return;
                }
                Ok(false) => {
                    tracing::debug!(lease = %self.name, "another instance leads; standing by")
                }
                Err(error) => {
                    tracing::warn!(lease = %self.name, %error, "leader election failed; retrying")
                }
            }
            tokio::time::sleep(RENEW_EVERY).await;
        }
    }

    /// Renews the lease until it is lost (another instance took it, or renewal failed for
    /// a whole lease duration); then returns.
    pub async fn hold(&self) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match self.try_acquire().await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.name, "leadership lost to another instance");
                    return;
                }
                Err(error) if last_renewal.elapsed() < LEASE_DURATION => {
                    tracing::warn!(%error, "lease renewal failed; retrying")
                }
                Err(error) => {
                    tracing::error!(%error, "lease not renewed for a whole lease duration; leadership lost");
                    return;
                }
            }
        }
    }

    /// Takes or renews the lease when it is free, expired or ours.
    async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = OffsetDateTime::now_utc();
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let lease = self.lease(None, now, 0)?;
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(error) => Err(error),
            };
        };
        let spec = serde_json::to_value(&current.spec).unwrap_or_default();
        let holder = spec["holderIdentity"].as_str().unwrap_or_default();
        let renewed = spec["renewTime"]
            .as_str()
            .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok());
        let duration = spec["leaseDurationSeconds"]
            .as_i64()
            .unwrap_or(LEASE_DURATION.as_secs() as i64);
        let expired =
            renewed.is_none_or(|renewed| renewed + time::Duration::seconds(duration) < now);
        if holder != self.identity && !holder.is_empty() && !expired {
            return Ok(false);
        }
        let transitions =
            spec["leaseTransitions"].as_i64().unwrap_or(0) + i64::from(holder != self.identity);
        let lease = self.lease(current.metadata.resource_version.clone(), now, transitions)?;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            // Someone else updated it first: they won this round.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn lease(
        &self,
        resource_version: Option<String>,
        now: OffsetDateTime,
        transitions: i64,
    ) -> Result<Lease, kube::Error> {
        let micro = micro_time(now);
        let value = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": { "name": self.name, "resourceVersion": resource_version },
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": LEASE_DURATION.as_secs(),
                "renewTime": micro,
                "acquireTime": micro,
                "leaseTransitions": transitions,
            }
        });
        serde_json::from_value(value).map_err(kube::Error::SerdeError)
    }
}

/// `metav1.MicroTime`: RFC 3339 with exactly six fractional digits, in UTC.
fn micro_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}
