//! One claim per bucket: who may manage an existing bucket, rule by rule.

use super::*;
use crate::plan::{BucketRefusal, Claimant, refusal};

fn stream(claim: Option<BucketClaim>, created_by: Option<&str>) -> ObservedStream {
    ObservedStream {
        config: config(),
        stats: BucketStats::default(),
        created_by: created_by.map(str::to_string),
        claim,
    }
}

fn held(manager: &str, owner: &str, uid: Option<&str>) -> BucketClaim {
    BucketClaim {
        manager: manager.into(),
        owner: owner.into(),
        uid: uid.map(str::to_string),
    }
}

fn claimant(per_object: bool, released: bool, adopt: bool) -> Claimant {
    Claimant {
        claim: held(MANAGER, "default/b", Some("uid-2")),
        per_object,
        released,
        adopt,
    }
}

#[test]
fn an_existing_bucket_is_managed_only_by_its_holder_or_by_an_explicit_adoption() {
    let claimed = |holder: &str| {
        Some(BucketRefusal::Claimed {
            holder: holder.into(),
        })
    };
    let cases: Vec<(&str, ObservedStream, Claimant, Option<BucketRefusal>)> = vec![
        (
            "another manager's claim, in the operator",
            stream(Some(held("other", "team-a/b", None)), Some("other")),
            claimant(true, false, true),
            claimed("manager \"other\" for team-a/b"),
        ),
        (
            "another manager's claim, in a file run",
            stream(Some(held("other", "team-a/b", None)), Some("other")),
            claimant(false, false, true),
            claimed("manager \"other\" for team-a/b"),
        ),
        (
            "another object of this manager, in the operator",
            stream(
                Some(held(MANAGER, "team-a/b", Some("uid-1"))),
                Some(MANAGER),
            ),
            claimant(true, false, true),
            claimed("manager \"kvop\" for team-a/b (uid uid-1)"),
        ),
        (
            "another object of this manager that is gone",
            stream(
                Some(held(MANAGER, "team-a/b", Some("uid-1"))),
                Some(MANAGER),
            ),
            claimant(true, true, false),
            None,
        ),
        (
            "another manifest of this manager, in a file run",
            stream(Some(held(MANAGER, "team-a/b", None)), Some(MANAGER)),
            claimant(false, false, false),
            None,
        ),
        (
            "its own object created again (another uid)",
            stream(
                Some(held(MANAGER, "default/b", Some("uid-1"))),
                Some(MANAGER),
            ),
            claimant(true, false, false),
            None,
        ),
        (
            "created by this manager before claims existed",
            stream(None, Some(MANAGER)),
            claimant(true, false, false),
            None,
        ),
        (
            "created by another manager before claims existed",
            stream(None, Some("other")),
            claimant(true, false, true),
            claimed("manager \"other\", which created it"),
        ),
        (
            "not created by kvop, not adopted",
            stream(None, None),
            claimant(true, false, false),
            Some(BucketRefusal::NotAdopted),
        ),
        (
            "not created by kvop, adopted",
            stream(None, None),
            claimant(true, false, true),
            None,
        ),
    ];
    for (rule, stream, claimant, expected) in cases {
        assert_eq!(refusal(&claimant, &stream), expected, "{rule}");
    }
}

#[test]
fn taking_a_claim_is_an_update_and_refusing_one_changes_nothing() {
    let manage = bucket(ManagementPolicy::Manage, config());
    let observed = |claim, created_by| ObservedBucket {
        stream: Some(stream(claim, created_by)),
        ..Default::default()
    };
    // An unclaimed bucket of this manager: the claim is recorded, nothing else changes.
    let taken = decide_bucket(
        &manage,
        &observed(None, Some(MANAGER)),
        &claimant(true, false, false),
    );
    let BucketAction::Update { changes, .. } = &taken else {
        panic!("{taken:?}");
    };
    assert_eq!(
        changes
            .iter()
            .map(|change| (change.field, change.to.as_str()))
            .collect::<Vec<_>>(),
        [("claim", "manager \"kvop\" for default/b (uid uid-2)")]
    );
    // Held as declared: nothing to do.
    let mine = Some(held(MANAGER, "default/b", Some("uid-2")));
    assert_eq!(
        decide_bucket(
            &manage,
            &observed(mine.clone(), Some(MANAGER)),
            &claimant(true, false, false)
        ),
        BucketAction::Unchanged
    );
    // Held by another: refused, even with a config change pending.
    let mut changed = config();
    changed.history = 9;
    let refused = decide_bucket(
        &bucket(ManagementPolicy::Manage, changed),
        &observed(Some(held("other", "x/y", None)), Some("other")),
        &claimant(true, false, true),
    );
    assert!(
        matches!(refused, BucketAction::Refused { .. }),
        "{refused:?}"
    );
    assert!(!refused.writes());
    // Observing claims nothing and needs no claim.
    assert_eq!(
        decide_bucket(
            &bucket(ManagementPolicy::Observe, config()),
            &observed(Some(held("other", "x/y", None)), Some("other")),
            &claimant(true, false, false)
        ),
        BucketAction::Observe
    );
}
