//! The round machine when NATS fails: a timed-out write (landed, or left to the
//! operator's backoff), a leader election, a refused permission, a lost connection, a
//! bucket that could not be created.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_timed_out_write_that_landed_is_read_again_and_not_written_twice() {
    let bucket = Scripted::new()
        .writes(vec![failed(ack_timeout())])
        .reread(Ok(vec![Reread::Read(Some(value(
            "a",
            11,
            "1",
            Some(MANAGER),
        )))]));
    let desired = declared(&[("a", "1")]);
    let (outcome, _) = apply(&bucket, &desired, &stored(vec![]), true).await;
    assert_eq!(
        bucket.calls(),
        [round(vec![put("a", "1", 0)]), reread(&["a"])]
    );
    assert_eq!(
        results(&outcome),
        [(
            "a",
            &EntryResult::Settled(EntryAction::Unchanged { revision: 11 })
        )]
    );
    assert_eq!((outcome.conflicts(), outcome.retries()), (0, 1));
    assert!(outcome.problems().is_empty(), "{:?}", outcome.problems());
}

#[tokio::test]
async fn an_operators_timed_out_write_fails_at_once_for_its_backoff_to_retry() {
    let bucket = Scripted::new().writes(vec![failed(ack_timeout())]);
    let desired = declared(&[("a", "1")]);
    let (outcome, _) = apply(&bucket, &desired, &stored(vec![]), false).await;
    assert_eq!(bucket.calls(), [round(vec![put("a", "1", 0)])]);
    assert_eq!(
        results(&outcome),
        [(
            "a",
            &EntryResult::Failed {
                error: ack_timeout()
            }
        )]
    );
    assert_eq!(outcome.retries(), 0);
}

#[tokio::test(start_paused = true)]
async fn writes_cut_off_by_a_leader_election_are_read_again_once_the_stream_answers() {
    let bucket = Scripted::new()
        // The real bucket stops sending after the first transient failure.
        .writes(vec![
            failed(no_responders()),
            WriteResult::NotSent(Box::new(no_responders())),
        ])
        // Still electing when the keys are read again: wait, then read again.
        .reread(Err(no_quorum()))
        .reread(Ok(vec![Reread::Read(None), Reread::Read(None)]))
        .writes(vec![written(1), written(2)]);
    let desired = declared(&[("a", "1"), ("b", "2")]);
    let (outcome, sent) = apply(&bucket, &desired, &stored(vec![]), true).await;
    assert_eq!(
        bucket.calls(),
        [
            round(vec![put("a", "1", 0), put("b", "2", 0)]),
            reread(&["a", "b"]),
            reread(&["a", "b"]),
            round(vec![put("a", "1", 0), put("b", "2", 0)]),
        ]
    );
    assert_eq!(
        results(&outcome),
        [
            (
                "a",
                &EntryResult::Written {
                    action: crate::plan::EntryVerb::Create,
                    revision: 1
                }
            ),
            (
                "b",
                &EntryResult::Written {
                    action: crate::plan::EntryVerb::Create,
                    revision: 2
                }
            ),
        ]
    );
    assert_eq!(
        outcome.buckets[0]
            .entries
            .iter()
            .map(|entry| entry.retries)
            .collect::<Vec<_>>(),
        [1, 0],
        "a write never sent is no retry"
    );
    assert_eq!(
        sent, 3,
        "the failed write was sent, the one cut off was not"
    );
}

#[tokio::test]
async fn a_refused_write_fails_with_the_refusal_and_is_not_retried() {
    let bucket = Scripted::new().writes(vec![failed(publish_refused("b", "a"))]);
    let desired = declared(&[("a", "1")]);
    let (outcome, _) = apply(&bucket, &desired, &stored(vec![]), true).await;
    assert_eq!(bucket.calls(), [round(vec![put("a", "1", 0)])]);
    let [(_, EntryResult::Failed { error })] = results(&outcome)[..] else {
        panic!("{:?}", results(&outcome));
    };
    assert_eq!(error.reason(), "Forbidden");
    assert!(error.to_string().contains("$KV.b.a"), "{error}");
    assert_eq!(outcome.retries(), 0);
    assert_eq!(outcome.problems().len(), 1);
}

#[tokio::test]
async fn keys_of_a_bucket_that_could_not_be_created_are_not_attempted() {
    let bucket = Scripted::new().create(Err(create_refused("b")));
    let desired = declared(&[("a", "1")]);
    let (outcome, _) = apply(&bucket, &desired, &Observed::default(), true).await;
    assert_eq!(bucket.calls(), [Call::Create]);
    assert_eq!(outcome.buckets[0].error, Some(create_refused("b")));
    let [(_, EntryResult::NotAttempted { reason })] = results(&outcome)[..] else {
        panic!("{:?}", results(&outcome));
    };
    assert!(
        reason.starts_with("the bucket could not be created: permission denied"),
        "{reason}"
    );
    assert_eq!(outcome.writes(), 0);
}

#[tokio::test]
async fn an_operators_conflict_on_a_lost_connection_fails_without_a_read_that_would_time_out() {
    let bucket = Scripted::new()
        .writes(vec![failed(revision_conflict(5))])
        .disconnected();
    let desired = declared(&[("a", "1")]);
    let observed = stored(vec![("a", value("a", 5, "old", Some(MANAGER)))]);
    let (outcome, _) = apply(&bucket, &desired, &observed, false).await;
    assert_eq!(bucket.calls(), [round(vec![put("a", "1", 5)])]);
    assert_eq!(
        results(&outcome),
        [(
            "a",
            &EntryResult::Failed {
                error: crate::nats::NatsError::unavailable("the connection to NATS was lost")
            }
        )]
    );
}
