//! What becomes of a bucket when its resource is deleted, rule by rule.

use super::*;
use crate::plan::{BucketRemoval, Departure, decide_bucket_removal};

fn stream(claim: Option<BucketClaim>, created_by: Option<&str>) -> ObservedStream {
    ObservedStream {
        config: config(),
        stats: BucketStats::default(),
        created_by: created_by.map(str::to_string),
        claim,
    }
}

fn held(manager: &str, owner: &str) -> BucketClaim {
    BucketClaim {
        manager: manager.into(),
        owner: owner.into(),
        uid: Some("uid-1".into()),
    }
}

/// The departing resource `default/b` of [`MANAGER`].
fn departing(
    management: ManagementPolicy,
    deletion: BucketDeletionPolicy,
    delete_adopted: bool,
) -> Departure {
    Departure {
        management,
        deletion,
        delete_adopted,
        claim: held(MANAGER, "default/b"),
    }
}

fn deleting(delete_adopted: bool) -> Departure {
    departing(
        ManagementPolicy::Manage,
        BucketDeletionPolicy::Delete,
        delete_adopted,
    )
}

#[test]
fn a_bucket_is_deleted_only_under_its_resources_own_claim_and_only_if_kvop_created_it() {
    let ours = Some(held(MANAGER, "default/b"));
    let elsewhere = |holder: &str| BucketRemoval::HeldElsewhere {
        holder: holder.into(),
    };
    let cases: Vec<(&str, Departure, Option<ObservedStream>, BucketRemoval)> = vec![
        (
            "its own claim on a bucket kvop created",
            deleting(false),
            Some(stream(ours.clone(), Some(MANAGER))),
            BucketRemoval::Delete,
        ),
        (
            "its own claim, even with another uid (a resource deleted and made again)",
            deleting(false),
            Some(stream(
                Some(BucketClaim {
                    uid: Some("uid-0".into()),
                    ..held(MANAGER, "default/b")
                }),
                Some(MANAGER),
            )),
            BucketRemoval::Delete,
        ),
        (
            "made by this manager before claims existed",
            deleting(false),
            Some(stream(None, Some(MANAGER))),
            BucketRemoval::Delete,
        ),
        (
            "another object of this manager holds it",
            deleting(false),
            Some(stream(Some(held(MANAGER, "default/other")), Some(MANAGER))),
            elsewhere("manager \"kvop\" for default/other (uid uid-1)"),
        ),
        (
            "another manager holds it under the same object name",
            deleting(true),
            Some(stream(Some(held("other", "default/b")), Some("other"))),
            elsewhere("manager \"other\" for default/b (uid uid-1)"),
        ),
        (
            "nobody holds it and kvop did not create it",
            deleting(false),
            Some(stream(None, None)),
            elsewhere("nobody (kvop did not create it)"),
        ),
        (
            "nobody holds it and another manager created it",
            deleting(false),
            Some(stream(None, Some("other"))),
            elsewhere("nobody (manager \"other\" created it)"),
        ),
        (
            "adopted: its own claim, but kvop did not create it",
            deleting(false),
            Some(stream(ours.clone(), None)),
            BucketRemoval::KeepAdopted,
        ),
        (
            "adopted and annotated delete-adopted",
            deleting(true),
            Some(stream(ours.clone(), None)),
            BucketRemoval::Delete,
        ),
        (
            "unclaimed, not created by kvop, annotated delete-adopted",
            deleting(true),
            Some(stream(None, None)),
            BucketRemoval::Delete,
        ),
        ("already gone", deleting(false), None, BucketRemoval::Gone),
    ];
    for (case, departure, stream, expected) in cases {
        assert!(departure.reads_stream(), "{case}");
        assert_eq!(
            decide_bucket_removal(&departure, stream.as_ref()),
            expected,
            "{case}"
        );
    }
}

#[test]
fn observe_and_retain_are_decided_without_the_stream_and_never_delete() {
    let ours = stream(Some(held(MANAGER, "default/b")), Some(MANAGER));
    let theirs = stream(Some(held("other", "default/x")), None);
    let cases = [
        (
            departing(
                ManagementPolicy::Observe,
                BucketDeletionPolicy::Delete,
                true,
            ),
            BucketRemoval::Observe,
        ),
        (
            departing(
                ManagementPolicy::Observe,
                BucketDeletionPolicy::Retain,
                false,
            ),
            BucketRemoval::Observe,
        ),
        (
            departing(ManagementPolicy::Manage, BucketDeletionPolicy::Retain, true),
            BucketRemoval::Retain,
        ),
    ];
    for (departure, expected) in cases {
        assert!(!departure.reads_stream(), "{departure:?}");
        for stream in [None, Some(&ours), Some(&theirs)] {
            assert_eq!(
                decide_bucket_removal(&departure, stream),
                expected,
                "{departure:?} over {stream:?}"
            );
        }
    }
}

/// Only an observed bucket's resource is let go without NATS: a deletion reads the
/// stream, and a retained bucket's claim is released in it.
#[test]
fn only_an_observed_buckets_departure_leaves_nats_untouched() {
    for management in [ManagementPolicy::Manage, ManagementPolicy::Observe] {
        for deletion in [BucketDeletionPolicy::Delete, BucketDeletionPolicy::Retain] {
            let departure = departing(management, deletion, false);
            assert_eq!(
                departure.touches_nats(),
                management == ManagementPolicy::Manage,
                "{departure:?}"
            );
        }
    }
}

#[test]
fn only_a_deletion_and_a_kept_bucket_this_resource_held_write_to_nats() {
    // (removal, writes, releases its claim)
    let cases = [
        (BucketRemoval::Delete, true, false),
        (BucketRemoval::Retain, true, true),
        (BucketRemoval::KeepAdopted, true, true),
        (
            BucketRemoval::HeldElsewhere { holder: "x".into() },
            false,
            false,
        ),
        (BucketRemoval::Observe, false, false),
        (BucketRemoval::Gone, false, false),
    ];
    for (removal, writes, releases) in cases {
        assert_eq!(removal.writes(), writes, "{removal:?}");
        assert_eq!(removal.releases_claim(), releases, "{removal:?}");
    }
}

#[test]
fn every_removal_explains_itself_and_an_adopted_bucket_names_the_annotation_that_deletes_it() {
    assert!(
        BucketRemoval::KeepAdopted
            .explain()
            .contains("kvop.dev/delete-adopted=true")
    );
    assert_eq!(
        BucketRemoval::HeldElsewhere {
            holder: "manager \"kvop\" for default/other".into()
        }
        .explain(),
        "it is held by manager \"kvop\" for default/other, not by this resource"
    );
    for removal in [
        BucketRemoval::Delete,
        BucketRemoval::Retain,
        BucketRemoval::Observe,
        BucketRemoval::Gone,
    ] {
        assert!(!removal.explain().is_empty(), "{removal:?}");
    }
}
