//! The decision for a bucket whose resource is deleted: delete it, keep it and release
//! its claim, or leave it as it is. The bucket counterpart of [`super::decide_removal`].

use crate::api::{BucketDeletionPolicy, ManagementPolicy};
use crate::desired::BucketClaim;
use crate::observed::ObservedStream;

/// What a deleted bucket resource declared about its bucket's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    pub management: ManagementPolicy,
    pub deletion: BucketDeletionPolicy,
    /// `kvop.dev/delete-adopted: "true"`: `Delete` deletes a bucket kvop did not create.
    pub delete_adopted: bool,
    /// The claim the resource recorded (its manager and `namespace/name`).
    pub claim: BucketClaim,
}

/// What happens to the bucket of a deleted resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketRemoval {
    /// `deletionPolicy: Delete` of a bucket this resource holds: the stream goes, every
    /// key and its history with it.
    Delete,
    /// `deletionPolicy: Retain`: the bucket stays and the resource's claim goes with it,
    /// so another resource may take the bucket over.
    Retain,
    /// `deletionPolicy: Delete`, but kvop did not create the bucket (it was adopted) and
    /// the resource does not say `kvop.dev/delete-adopted`: kept, its claim released.
    KeepAdopted,
    /// Another object holds the bucket (or nobody does and kvop did not create it): left
    /// exactly as it is, its claim included.
    HeldElsewhere { holder: String },
    /// `managementPolicy: Observe`: kvop never changed the bucket and never claimed it,
    /// so it changes nothing now either.
    Observe,
    /// There is no bucket (any more): nothing to do.
    Gone,
}

impl Departure {
    /// Whether the decision depends on the bucket's stream. `Observe` and `Retain` are
    /// decided without it, so a resource going that way never waits for NATS to be read
    /// (`Retain`'s release is itself conditional on the claim still being this one).
    pub fn reads_stream(&self) -> bool {
        self.management == ManagementPolicy::Manage && self.deletion == BucketDeletionPolicy::Delete
    }

    /// Whether the departure may change anything in NATS: its decision reads the stream,
    /// or writes without it (`Retain` releases the claim). Otherwise (`Observe`: never
    /// claimed) the resource goes without a connection.
    pub fn touches_nats(&self) -> bool {
        self.reads_stream() || decide_bucket_removal(self, None).writes()
    }
}

/// Decides what happens to the bucket of a deleted resource, given its stream (`None`:
/// missing, or not read because [`Departure::reads_stream`] says it does not matter).
/// Deletion acts only under the resource's own claim or, for a bucket made before
/// claims, kvop's creation mark: another object's bucket is never touched.
pub fn decide_bucket_removal(
    departure: &Departure,
    stream: Option<&ObservedStream>,
) -> BucketRemoval {
    let Departure {
        management,
        deletion,
        delete_adopted,
        claim: ours,
    } = departure;
    if *management == ManagementPolicy::Observe {
        return BucketRemoval::Observe;
    }
    if *deletion == BucketDeletionPolicy::Retain {
        return BucketRemoval::Retain;
    }
    let Some(stream) = stream else {
        return BucketRemoval::Gone;
    };
    let holds = match &stream.claim {
        Some(held) => held.manager == ours.manager && held.owner == ours.owner,
        None => stream.created_by.as_deref() == Some(ours.manager.as_str()) || *delete_adopted,
    };
    if !holds {
        let holder = match (&stream.claim, &stream.created_by) {
            (Some(held), _) => held.to_string(),
            (None, Some(creator)) => format!("nobody (manager {creator:?} created it)"),
            (None, None) => "nobody (kvop did not create it)".to_string(),
        };
        return BucketRemoval::HeldElsewhere { holder };
    }
    if stream.created_by.is_none() && !delete_adopted {
        return BucketRemoval::KeepAdopted;
    }
    BucketRemoval::Delete
}

impl BucketRemoval {
    /// Whether carrying it out writes to NATS (deletes the stream or releases a claim).
    pub fn writes(&self) -> bool {
        *self == BucketRemoval::Delete || self.releases_claim()
    }

    /// Whether carrying it out removes the resource's claim from the stream metadata.
    pub fn releases_claim(&self) -> bool {
        matches!(self, BucketRemoval::Retain | BucketRemoval::KeepAdopted)
    }

    /// Why the bucket is deleted or kept, in the words every report uses (Events,
    /// conditions, logs).
    pub fn explain(&self) -> String {
        match self {
            BucketRemoval::Delete => {
                "deletionPolicy Delete, and this resource holds the bucket".to_string()
            }
            BucketRemoval::Retain => "deletionPolicy Retain keeps the bucket; its claim is released so another resource may take it over".to_string(),
            BucketRemoval::KeepAdopted => format!(
                "kvop did not create the bucket, so deletionPolicy Delete leaves it; annotate the resource {}=true before deleting it to delete the bucket too",
                crate::spec::DELETE_ADOPTED_ANNOTATION
            ),
            BucketRemoval::HeldElsewhere { holder } => {
                format!("it is held by {holder}, not by this resource")
            }
            BucketRemoval::Observe => {
                "managementPolicy Observe never changes the bucket".to_string()
            }
            BucketRemoval::Gone => "the bucket does not exist".to_string(),
        }
    }
}
