//! Leader election on a `coordination.k8s.io/v1` Lease: one active instance, the others
//! standing by. Updates are guarded by resourceVersion, so two instances never both win;
//! a leader that stops gracefully releases the Lease, so a standby takes over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long a lease holds without renewal.
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the leader renews (and a standby retries after an apiserver error: no need
/// to press an apiserver in trouble; a leader retries a failed renewal every second, as
/// its deadline runs).
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// A leader that has not renewed for this long stops leading: before its lease can
/// expire and a standby take it, so that two instances never reconcile at once (as
/// client-go's RenewDeadline).
const RENEW_DEADLINE: Duration = Duration::from_secs(10);
const _: () = assert!(RENEW_DEADLINE.as_secs() < LEASE_DURATION.as_secs());
/// How often a standby reads the lease. Much shorter than RENEW_EVERY: a GET a second per
/// standby costs the apiserver little, and the time to notice a released or expired
/// lease is the hand-over users see (nothing reconciles meanwhile).
const STANDBY_RETRY: Duration = Duration::from_secs(1);
/// The longest a graceful shutdown spends releasing the lease: with the apiserver
/// unreachable the process must still exit promptly (the lease then expires instead).
const RELEASE_WITHIN: Duration = Duration::from_secs(2);

/// One participant in the election.
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
}

/// The outcome of one attempt to take or renew the lease.
enum Attempt {
    Held,
    /// Another instance holds it (`None`: it won a race, its name is not known here).
    Standby {
        holder: Option<String>,
    },
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
        let mut reported: Option<String> = None;
        loop {
            let retry = match self.try_acquire().await {
                Ok(Attempt::Held) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "acquired leadership");
                    return;
                }
                Ok(Attempt::Standby { holder }) => {
                    // Once per leader, not once a second.
                    if holder.is_some() && holder != reported {
                        tracing::info!(
                            lease = %self.name,
                            identity = %self.identity,
                            leader = holder.as_deref().unwrap_or_default(),
                            "another instance leads; standing by"
                        );
                        reported = holder;
                    }
                    STANDBY_RETRY
                }
                Err(error) => {
                    tracing::warn!(lease = %self.name, %error, "leader election failed; retrying");
                    RENEW_EVERY
                }
            };
            tokio::time::sleep(retry).await;
        }
    }

    /// Renews the lease until it is lost (another instance took it, or renewal failed for
    /// a whole lease duration); then returns.
    pub async fn hold(&self) {
        // When the last renewal that succeeded was sent: the Lease's renewTime is about
        // then, so its expiry counts from there, not from the response.
        let mut renewed_at = tokio::time::Instant::now();
        let mut wait = RENEW_EVERY;
        loop {
            tokio::time::sleep(wait).await;
            let sent = tokio::time::Instant::now();
            let left = RENEW_DEADLINE.saturating_sub(renewed_at.elapsed());
            match tokio::time::timeout(left, self.try_acquire()).await {
                Ok(Ok(Attempt::Held)) => {
                    renewed_at = sent;
                    wait = RENEW_EVERY;
                }
                Ok(Ok(Attempt::Standby { holder })) => {
                    tracing::error!(
                        lease = %self.name,
                        leader = holder.as_deref().unwrap_or("<unknown>"),
                        "leadership lost to another instance"
                    );
                    return;
                }
                Ok(Err(error)) if renewed_at.elapsed() < RENEW_DEADLINE => {
                    tracing::warn!(%error, "lease renewal failed; retrying");
                    wait = STANDBY_RETRY;
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, deadline = ?RENEW_DEADLINE, "lease not renewed in time; stepping down before it can expire");
                    return;
                }
                Err(_) => {
                    tracing::error!(deadline = ?RENEW_DEADLINE, "lease renewal did not answer in time; stepping down before it can expire");
                    return;
                }
            }
        }
    }

    /// Gives the lease up on a graceful shutdown, so that a standby takes over within its
    /// retry period instead of after the lease expires. Call it only once this instance
    /// writes nothing any more. A failure is no error: the lease then expires.
    pub async fn release(&self) {
        match tokio::time::timeout(RELEASE_WITHIN, self.try_release()).await {
            Ok(Ok(true)) => {
                tracing::info!(lease = %self.name, identity = %self.identity, "released leadership")
            }
            Ok(Ok(false)) => {
                tracing::info!(lease = %self.name, identity = %self.identity, "the lease is no longer ours; nothing to release")
            }
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.name, %error, "could not release the lease; a standby takes over when it expires")
            }
            Err(_) => {
                tracing::warn!(lease = %self.name, "the apiserver did not answer within {RELEASE_WITHIN:?}; a standby takes over when the lease expires")
            }
        }
    }

    /// Takes or renews the lease when it is free, expired or ours.
    async fn try_acquire(&self) -> Result<Attempt, kube::Error> {
        let current = self.api.get_opt(&self.name).await?;
        // Taken after the read, however long it took, for both the expiry check and the
        // record: a lease taken over on expiry records a time after that expiry.
        let at = OffsetDateTime::now_utc();
        let now = micro_time(at);
        let Some(current) = current else {
            let lease = self.lease(None, self.holding(&now, now.clone(), 0))?;
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Held),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    Ok(Attempt::Standby { holder: None })
                }
                Err(error) => Err(error),
            };
        };
        let record = Record::of(&current);
        if !record.open_to(&self.identity, at) {
            return Ok(Attempt::Standby {
                holder: Some(record.holder),
            });
        }
        let ours = record.holder == self.identity;
        // A renewal keeps the time this instance became the leader.
        let acquired = match record.acquired {
            Some(acquired) if ours => acquired,
            _ => now.clone(),
        };
        let transitions = record.transitions + i64::from(!ours);
        let spec = self.holding(&now, acquired, transitions);
        if self
            .replace(current.metadata.resource_version, spec)
            .await?
        {
            Ok(Attempt::Held)
        } else {
            // Someone else updated it first: they won this round.
            Ok(Attempt::Standby { holder: None })
        }
    }

    /// Clears the holder while this instance still holds the lease. A conflict is
    /// retried on the lease as it is now: a renewal of ours, cut off by the shutdown, may
    /// still land after the read.
    async fn try_release(&self) -> Result<bool, kube::Error> {
        loop {
            let Some(current) = self.api.get_opt(&self.name).await? else {
                return Ok(false);
            };
            let record = Record::of(&current);
            if record.holder != self.identity {
                return Ok(false);
            }
            if self
                .replace(current.metadata.resource_version, released(&record))
                .await?
            {
                return Ok(true);
            }
        }
    }

    /// The spec of a lease held by this instance.
    fn holding(&self, now: &str, acquired: String, transitions: i64) -> serde_json::Value {
        json!({
            "holderIdentity": self.identity,
            "leaseDurationSeconds": LEASE_DURATION.as_secs(),
            "renewTime": now,
            "acquireTime": acquired,
            "leaseTransitions": transitions,
        })
    }

    /// Replaces the lease if it is still at `resource_version`; `false` on a conflict.
    async fn replace(
        &self,
        resource_version: Option<String>,
        spec: serde_json::Value,
    ) -> Result<bool, kube::Error> {
        let lease = self.lease(resource_version, spec)?;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn lease(
        &self,
        resource_version: Option<String>,
        spec: serde_json::Value,
    ) -> Result<Lease, kube::Error> {
        let value = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": { "name": self.name, "resourceVersion": resource_version },
            "spec": spec,
        });
        serde_json::from_value(value).map_err(kube::Error::SerdeError)
    }
}

/// The spec of a released lease, as client-go's ReleaseOnCancel writes it: no holder,
/// and a one-second duration for candidates that go by expiry alone.
fn released(record: &Record) -> serde_json::Value {
    let now = micro_time(OffsetDateTime::now_utc());
    json!({
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "renewTime": now,
        "acquireTime": now,
        "leaseTransitions": record.transitions,
    })
}

/// What the election reads of a Lease.
#[derive(Debug)]
struct Record {
    /// Empty when released or never held.
    holder: String,
    renewed: Option<OffsetDateTime>,
    duration_seconds: i64,
    acquired: Option<String>,
    transitions: i64,
}

impl Record {
    fn of(lease: &Lease) -> Record {
        let spec = serde_json::to_value(&lease.spec).unwrap_or_default();
        Record {
            holder: spec["holderIdentity"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            renewed: spec["renewTime"]
                .as_str()
                .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok()),
            duration_seconds: spec["leaseDurationSeconds"]
                .as_i64()
                .unwrap_or(LEASE_DURATION.as_secs() as i64),
            acquired: spec["acquireTime"].as_str().map(str::to_string),
            transitions: spec["leaseTransitions"].as_i64().unwrap_or(0),
        }
    }

    /// Whether `identity` may take the lease at `now`: it is ours, free (released or
    /// never held) or expired.
    fn open_to(&self, identity: &str, now: OffsetDateTime) -> bool {
        let expired = self
            .renewed
            .is_none_or(|renewed| renewed + time::Duration::seconds(self.duration_seconds) < now);
        self.holder == identity || self.holder.is_empty() || expired
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: &str, renewed_ago: Option<i64>, duration_seconds: i64) -> Record {
        let now = OffsetDateTime::now_utc();
        Record {
            holder: holder.to_string(),
            renewed: renewed_ago.map(|seconds| now - time::Duration::seconds(seconds)),
            duration_seconds,
            acquired: None,
            transitions: 3,
        }
    }

    #[test]
    fn a_lease_is_open_when_ours_free_or_expired_and_closed_while_another_holds_it() {
        let cases = [
            ("ours, live", record("me", Some(1), 15), true),
            ("ours, expired", record("me", Some(60), 15), true),
            ("another's, live", record("other", Some(1), 15), false),
            ("another's, expired", record("other", Some(16), 15), true),
            ("another's, never renewed", record("other", None, 15), true),
            ("released a moment ago", record("", Some(0), 1), true),
            ("never held", record("", None, 15), true),
        ];
        for (case, record, open) in cases {
            assert_eq!(
                record.open_to("me", OffsetDateTime::now_utc()),
                open,
                "{case}"
            );
        }
    }

    #[test]
    fn a_released_lease_has_no_holder_a_one_second_duration_and_keeps_its_transitions() {
        let spec = released(&record("me", Some(1), 15));
        assert_eq!(spec["holderIdentity"], "");
        assert_eq!(spec["leaseDurationSeconds"], 1);
        assert_eq!(spec["leaseTransitions"], 3);
        assert_eq!(spec["renewTime"], spec["acquireTime"]);
        let lease: Lease =
            serde_json::from_value(json!({"metadata": {}, "spec": spec})).expect("a valid Lease");
        let record = Record::of(&lease);
        assert!(record.open_to("anyone", OffsetDateTime::now_utc()));
        assert!(record.renewed.is_some(), "renewTime parses back");
    }

    #[test]
    fn micro_time_has_six_fractional_digits_in_utc() {
        let at = OffsetDateTime::parse("2025-03-04T05:06:07.089+02:00", &Rfc3339).expect("time");
        assert_eq!(micro_time(at), "2025-03-04T03:06:07.089000Z");
    }
}
