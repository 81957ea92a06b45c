//! The pass for one bucket, the operator's bucket controller's: **observe** the bucket's
//! stream, let a claim whose holder is gone pass on ([`Holders`]), and **plan** its
//! configuration and claim; for a deleted resource, its bucket's fate. Nothing is
//! checked against the server beyond the stream itself (the names a namespace may use
//! are its tenancy's, the operator's to refuse before), and nothing is guarded: a
//! paused bucket is its controller's to hold back.

use super::Holders;
use crate::desired::DesiredBucket;
use crate::nats::{Bucket, NatsError};
use crate::observed::{ObservedBucket, ObservedStream};
use crate::plan::{
    BucketAction, BucketRemoval, Claimant, Departure, decide_bucket, decide_bucket_removal,
};

/// A bucket's planned action and what it was planned from.
#[derive(Debug)]
pub struct BucketPlanned {
    pub action: BucketAction,
    /// The stream as observed; `None`: there is no bucket.
    pub stream: Option<ObservedStream>,
    /// The claimant the action was decided for, `released` filled in: apply decides a
    /// create that meets a stream made meanwhile again by it.
    pub claimant: Claimant,
}

/// Observes `bucket`'s stream and plans `desired` against it for `claimant`.
pub async fn plan_bucket(
    bucket: &Bucket,
    desired: &DesiredBucket,
    mut claimant: Claimant,
    holders: &impl Holders,
) -> Result<BucketPlanned, NatsError> {
    let observed = ObservedBucket {
        stream: bucket.state().await?,
        ..Default::default()
    };
    claimant.released = match held_by_another(&claimant, observed.stream.as_ref()) {
        Some(holder) => holders.gone(holder).await,
        None => false,
    };
    let action = decide_bucket(desired, &observed, &claimant);
    Ok(BucketPlanned {
        action,
        stream: observed.stream,
        claimant,
    })
}

/// Observes `bucket`'s stream, when the decision depends on it
/// ([`Departure::reads_stream`]), and plans the fate of a deleted resource's bucket.
pub async fn plan_bucket_removal(
    bucket: &Bucket,
    departure: &Departure,
) -> Result<BucketRemoval, NatsError> {
    let stream = if departure.reads_stream() {
        bucket.state().await?
    } else {
        None
    };
    Ok(decide_bucket_removal(departure, stream.as_ref()))
}

/// The holder (`namespace/name`) of the stream's claim when it is another object of the
/// claimant's manager: if that object is gone, its claim passes on.
fn held_by_another<'a>(claimant: &Claimant, stream: Option<&'a ObservedStream>) -> Option<&'a str> {
    let held = stream?.claim.as_ref()?;
    (held.manager == claimant.claim.manager && held.owner != claimant.claim.owner)
        .then_some(held.owner.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{BucketClaim, BucketConfig};
    use crate::observed::BucketStats;

    fn claim(manager: &str, owner: &str) -> BucketClaim {
        BucketClaim {
            manager: manager.into(),
            owner: owner.into(),
            uid: None,
        }
    }

    #[test]
    fn only_another_object_of_the_same_manager_can_hand_its_claim_on() {
        let claimant = Claimant {
            claim: claim("kvop", "ns/new"),
            per_object: true,
            released: false,
            adopt: false,
        };
        let stream = |held: Option<BucketClaim>| ObservedStream {
            config: BucketConfig::defaults(),
            stats: BucketStats::default(),
            created_by: None,
            claim: held,
        };
        let cases = [
            ("no bucket", None, None),
            ("no claim", Some(stream(None)), None),
            ("its own", Some(stream(Some(claim("kvop", "ns/new")))), None),
            (
                "another manager's",
                Some(stream(Some(claim("other", "ns/old")))),
                None,
            ),
            (
                "another object of its manager",
                Some(stream(Some(claim("kvop", "ns/old")))),
                Some("ns/old"),
            ),
        ];
        for (case, stream, holder) in cases {
            assert_eq!(
                held_by_another(&claimant, stream.as_ref()),
                holder,
                "{case}"
            );
        }
    }
}
