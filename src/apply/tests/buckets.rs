//! Apply's bucket entry points against a scripted bucket: a create or update as the
//! operator's bucket controller asks for one (its claim, no riding out), a create another
//! claimant won, and the decisions for a deleted resource's bucket.

use super::*;
use crate::apply::bucket::{BucketStep, Removed, carry_out, remove};
use crate::nats::Deleted;
use crate::nats::faults::stream_name_in_use;
use crate::plan::{BucketAction, BucketRefusal, BucketRemoval, Claimant};

/// The operator's claim for its object `default/b`, with the object's uid.
fn operators_claim() -> BucketClaim {
    BucketClaim {
        manager: MANAGER.into(),
        owner: "default/b".into(),
        uid: Some("uid-1".into()),
    }
}

fn claimant() -> Claimant {
    Claimant {
        claim: operators_claim(),
        per_object: true,
        released: false,
        adopt: false,
    }
}

fn create() -> BucketAction {
    BucketAction::Create {
        config: BucketConfig::defaults(),
    }
}

/// The stream an object `other/b` of `manager` created, holding its claim.
fn created_by_another(manager: &str) -> ObservedStream {
    ObservedStream {
        config: BucketConfig::defaults(),
        stats: BucketStats::default(),
        created_by: Some(manager.into()),
        claim: Some(BucketClaim {
            manager: manager.into(),
            owner: "other/b".into(),
            uid: Some("uid-9".into()),
        }),
    }
}

/// Carries out `action` on `bucket` as the operator does: its claimant, bucket `b` as
/// declared, no riding out.
async fn as_operator(bucket: &Scripted, action: &BucketAction) -> super::super::BucketApplied {
    let desired = declared(&[]);
    let claimant = claimant();
    let step = BucketStep {
        action,
        claimant: &claimant,
        desired: Some(&desired.buckets[0]),
    };
    let applied = carry_out(&bucket, step, false).await;
    bucket.assert_script_used();
    applied
}

#[tokio::test]
async fn an_operators_refused_create_fails_at_once_with_no_ride_out_and_no_second_read() {
    let bucket = Scripted::new().create(Err(create_refused("b")));
    let applied = as_operator(&bucket, &create()).await;
    assert_eq!(applied.action, create());
    assert_eq!(applied.error, Some(create_refused("b")));
    assert_eq!(bucket.calls(), [Call::Create]);
    assert_eq!(bucket.ridden_out(), Vec::<String>::new());
    assert_eq!(bucket.claims(), [operators_claim()]);
}

#[tokio::test]
async fn the_clis_bucket_writes_ride_out_transient_failures() {
    let bucket = Scripted::new().create(Ok(()));
    let (outcome, _) = apply(&bucket, &declared(&[]), &Observed::default(), true).await;
    assert_eq!(outcome.buckets[0].error, None);
    assert_eq!(bucket.ridden_out(), ["creating the bucket"]);
    let bucket = Scripted::new().create(Ok(()));
    apply(&bucket, &declared(&[]), &Observed::default(), false).await;
    assert_eq!(
        bucket.ridden_out(),
        Vec::<String>::new(),
        "ApplyOptions::ride_out is honoured"
    );
}

#[tokio::test]
async fn a_create_another_claimant_won_is_decided_again_and_names_its_holder() {
    let bucket = Scripted::new()
        .create(Err(stream_name_in_use()))
        .state(Ok(Some(created_by_another(MANAGER))));
    let applied = as_operator(&bucket, &create()).await;
    assert_eq!(
        applied.action,
        BucketAction::Refused {
            refusal: BucketRefusal::Claimed {
                holder: "manager \"kvop\" for other/b (uid uid-9)".into()
            }
        }
    );
    assert_eq!(applied.error, Some(stream_name_in_use()));
    assert_eq!(bucket.calls(), [Call::Create, Call::State]);
}

#[tokio::test]
async fn a_rejected_create_whose_stream_is_still_missing_keeps_its_error() {
    let bucket = Scripted::new()
        .create(Err(stream_name_in_use()))
        .state(Ok(None));
    let applied = as_operator(&bucket, &create()).await;
    assert_eq!(applied.action, create());
    assert_eq!(applied.error, Some(stream_name_in_use()));
}

#[tokio::test]
async fn keys_of_a_bucket_another_manager_created_first_are_told_who_holds_it() {
    // A file run counts every claim of its own manager as its own: only another
    // manager's refuses it.
    let bucket = Scripted::new()
        .create(Err(stream_name_in_use()))
        .state(Ok(Some(created_by_another("other"))));
    let desired = declared(&[("a", "1")]);
    let (outcome, _) = apply(&bucket, &desired, &Observed::default(), true).await;
    assert_eq!(outcome.buckets[0].error, Some(stream_name_in_use()));
    let [(_, EntryResult::NotAttempted { reason })] = results(&outcome)[..] else {
        panic!("{:?}", results(&outcome));
    };
    assert!(
        reason.starts_with("the bucket is claimed by manager \"other\" for other/b"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_update_records_the_operators_claim_with_its_uid() {
    let update = BucketAction::Update {
        config: BucketConfig::defaults(),
        changes: Vec::new(),
    };
    let bucket = Scripted::new().update(Ok(()));
    let applied = as_operator(&bucket, &update).await;
    assert_eq!(applied.error, None);
    assert_eq!(bucket.calls(), [Call::Update]);
    assert_eq!(bucket.claims(), [operators_claim()]);
    let bucket = Scripted::new().update(Err(no_quorum()));
    let applied = as_operator(&bucket, &update).await;
    assert_eq!(
        (applied.action, applied.error),
        (update, Some(no_quorum())),
        "a failed update is not decided again"
    );
}

#[tokio::test]
async fn actions_that_write_nothing_send_nothing() {
    for action in [
        BucketAction::Unchanged,
        BucketAction::Observe,
        BucketAction::Missing,
        BucketAction::Blocked {
            changes: Vec::new(),
        },
        BucketAction::Refused {
            refusal: BucketRefusal::NotAdopted,
        },
    ] {
        let bucket = Scripted::new();
        let applied = as_operator(&bucket, &action).await;
        assert_eq!((applied.action, applied.error), (action, None));
        assert_eq!(bucket.calls(), []);
    }
}

#[tokio::test]
async fn a_deletion_deletes_the_stream_once_and_a_stream_already_gone_is_no_error() {
    let bucket = Scripted::new()
        .delete(Ok(Deleted::Deleted))
        .delete(Ok(Deleted::Missing));
    let claim = operators_claim();
    let removed = remove(&&bucket, &BucketRemoval::Delete, &claim).await;
    assert_eq!(removed, Ok(Removed::Deleted));
    let removed = remove(&&bucket, &BucketRemoval::Delete, &claim).await;
    assert_eq!(removed, Ok(Removed::AlreadyGone));
    assert_eq!(bucket.calls(), [Call::Delete, Call::Delete]);
    assert_eq!(bucket.ridden_out(), Vec::<String>::new());
}

#[tokio::test]
async fn a_refused_deletion_fails_with_its_error_for_the_finalizer_to_hold() {
    let refused = NatsError::forbidden("delete \"b\"");
    let bucket = Scripted::new().delete(Err(refused.clone()));
    let removed = remove(&&bucket, &BucketRemoval::Delete, &operators_claim()).await;
    assert_eq!(removed, Err(refused));
}

#[tokio::test]
async fn a_kept_bucket_releases_its_resources_claim_and_others_are_left_untouched() {
    for kept in [BucketRemoval::Retain, BucketRemoval::KeepAdopted] {
        let bucket = Scripted::new().release(Ok(()));
        let removed = remove(&&bucket, &kept, &operators_claim()).await;
        assert_eq!(removed, Ok(Removed::Released), "{kept:?}");
        assert_eq!(bucket.calls(), [Call::Release]);
        assert_eq!(bucket.claims(), [operators_claim()]);
    }
    for untouched in [
        BucketRemoval::HeldElsewhere {
            holder: "manager \"kvop\" for other/b".into(),
        },
        BucketRemoval::Observe,
        BucketRemoval::Gone,
    ] {
        let bucket = Scripted::new();
        let removed = remove(&&bucket, &untouched, &operators_claim()).await;
        assert_eq!(removed, Ok(Removed::Untouched), "{untouched:?}");
        assert_eq!(bucket.calls(), []);
    }
}
