//! The round machine when writes land or meet other writers: one pipelined round, a
//! revision conflict decided again, a key taken by another manager meanwhile.

use super::*;

#[tokio::test]
async fn every_change_of_a_bucket_goes_out_in_one_pipelined_round_and_nothing_else_is_sent() {
    let bucket = Scripted::new().writes(vec![written(11), written(12)]);
    let desired = declared(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let observed = stored(vec![
        ("b", value("b", 5, "old", Some(MANAGER))),
        ("c", value("c", 6, "3", Some(MANAGER))),
    ]);
    let (outcome, sent) = apply(&bucket, &desired, &observed, true).await;
    assert_eq!(
        bucket.calls(),
        [round(vec![put("a", "1", 0), put("b", "2", 5)])],
        "one round, both writes handed over at once with the window, each expecting the \
         revision observed"
    );
    assert_eq!(
        results(&outcome),
        [
            (
                "a",
                &EntryResult::Written {
                    action: crate::plan::EntryVerb::Create,
                    revision: 11
                }
            ),
            (
                "b",
                &EntryResult::Written {
                    action: crate::plan::EntryVerb::Update,
                    revision: 12
                }
            ),
            (
                "c",
                &EntryResult::Settled(EntryAction::Unchanged { revision: 6 })
            ),
        ]
    );
    assert_eq!(sent, 2);
    assert_eq!(
        (outcome.writes(), outcome.conflicts(), outcome.retries()),
        (2, 0, 0)
    );
    assert!(outcome.problems().is_empty(), "{:?}", outcome.problems());
}

#[tokio::test]
async fn a_conflicting_write_is_read_again_decided_again_and_written_over_the_new_revision() {
    let bucket = Scripted::new()
        .writes(vec![failed(revision_conflict(5))])
        .reread(Ok(vec![Reread::Read(Some(value("a", 9, "theirs", None)))]))
        .writes(vec![written(10)]);
    let desired = declared(&[("a", "1")]);
    let observed = stored(vec![("a", value("a", 5, "old", Some(MANAGER)))]);
    let (outcome, _) = apply(&bucket, &desired, &observed, true).await;
    assert_eq!(
        bucket.calls(),
        [
            round(vec![put("a", "1", 5)]),
            reread(&["a"]),
            round(vec![put("a", "1", 9)]),
        ],
        "the second write expects the revision the re-read found, not the planned one"
    );
    assert_eq!(
        results(&outcome),
        [(
            "a",
            &EntryResult::Written {
                action: crate::plan::EntryVerb::Update,
                revision: 10
            }
        )]
    );
    assert_eq!((outcome.conflicts(), outcome.retries()), (1, 0));
}

#[tokio::test]
async fn a_key_another_manager_took_after_the_plan_is_left_to_it_and_reported() {
    let bucket = Scripted::new()
        .writes(vec![failed(revision_conflict(5))])
        .reread(Ok(vec![Reread::Read(Some(value(
            "a",
            9,
            "theirs",
            Some("other-kvop"),
        )))]));
    let desired = declared(&[("a", "1")]);
    let observed = stored(vec![("a", value("a", 5, "old", Some(MANAGER)))]);
    let (outcome, _) = apply(&bucket, &desired, &observed, true).await;
    assert_eq!(
        bucket.calls(),
        [round(vec![put("a", "1", 5)]), reread(&["a"])],
        "kvop never fights kvop: no second write"
    );
    assert_eq!(
        results(&outcome),
        [(
            "a",
            &EntryResult::Settled(EntryAction::Conflict {
                revision: 9,
                writer: "manager \"other-kvop\" for default/a".into(),
                cause: ConflictCause::Claimed,
            })
        )]
    );
    assert_eq!(outcome.conflicts(), 1);
    assert_eq!(outcome.problems().len(), 1, "the claim is reported");
}
