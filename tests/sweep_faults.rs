//! The sweep under interference: its consumer deleted mid-sweep, keys purged or expiring
//! before delivery. It must neither report stale revisions nor stall.

mod support;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::{StreamExt, TryStreamExt};
use support::{NatsServer, bucket, entry, kv_get, kvop, manifests, path};

/// Pipelined raw puts (another client), for filler and drift.
async fn fill(js: &jetstream::Context, bucket: &str, keys: impl Iterator<Item = (String, String)>) {
    let mut acks = Vec::new();
    for (key, value) in keys {
        acks.push(
            js.publish(format!("$KV.{bucket}.{key}"), value.into())
                .await
                .expect("publish"),
        );
        if acks.len() >= 512 {
            for ack in acks.drain(..) {
                ack.await.expect("ack");
            }
        }
    }
    for ack in acks {
        ack.await.expect("ack");
    }
}

/// Waits for the sweep's consumer to appear on `stream`, then runs `interfere` once.
async fn when_consumer_appears<F, Fut>(js: jetstream::Context, stream: &str, interfere: F) -> bool
where
    F: FnOnce(jetstream::stream::Stream, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let stream = js.get_stream(stream).await.expect("stream");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let names: Vec<String> = stream
            .consumer_names()
            .try_collect()
            .await
            .unwrap_or_default();
        if let Some(name) = names.into_iter().next() {
            interfere(stream, name).await;
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_consumer_lost_mid_sweep_restarts_the_sweep_instead_of_reporting_stale_revisions() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let mut docs = vec![bucket("b", "  history: 5\n")];
    docs.extend((0..100).map(|i| entry(&format!("e{i}"), "b", &format!("k{i}"), "desired", "")));
    let dir = manifests(&[("m.yaml", &docs.join("---\n"))]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&dir)])
            .await
            .code,
        0
    );
    // Filler after kvop's writes, then another client changes every declared key.
    fill(&js, "b", (0..20_000).map(|i| (format!("f{i}"), "x".into()))).await;
    fill(
        &js,
        "b",
        (0..100).map(|i| (format!("k{i}"), "drift".into())),
    )
    .await;
    let deleter = tokio::spawn(when_consumer_appears(
        js.clone(),
        "KV_b",
        |stream, name| async move {
            stream
                .delete_consumer(&name)
                .await
                .expect("delete consumer");
        },
    ));
    let run = kvop(&server.url(), &["reconcile", "-f", path(&dir), "--prune"]).await;
    assert!(
        deleter.await.expect("deleter"),
        "the sweep's consumer was deleted"
    );
    assert_eq!(run.code, 0, "{run:?}");
    for i in [0, 50, 99] {
        assert_eq!(
            kv_get(&js, "b", &format!("k{i}")).await.as_deref(),
            Some(&b"desired"[..]),
            "k{i} restored"
        );
    }
}

#[tokio::test]
async fn keys_purged_before_delivery_do_not_stall_the_sweep() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = manifests(&[(
        "m.yaml",
        &[bucket("b", ""), entry("e", "b", "k", "v", "")].join("---\n"),
    )]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&dir)])
            .await
            .code,
        0
    );
    fill(
        &js,
        "b",
        (0..100_000).map(|i| (format!("f.{i}"), "x".into())),
    )
    .await;
    let purger = tokio::spawn(when_consumer_appears(
        js.clone(),
        "KV_b",
        |stream, _| async move {
            stream.purge().filter("$KV.b.f.>").await.expect("purge");
        },
    ));
    let run = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            path(&dir),
            "--prune",
            "--detailed-exitcode",
        ],
    )
    .await;
    assert!(purger.await.expect("purger"));
    assert_eq!(
        run.code, 0,
        "a purge during the sweep is not an error: {run:?}"
    );
}

#[tokio::test]
async fn keys_expiring_during_the_sweep_do_not_stall_it() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = manifests(&[(
        "m.yaml",
        &[bucket("b", "  ttl: 3s\n"), entry("e", "b", "k", "v", "")].join("---\n"),
    )]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&dir)])
            .await
            .code,
        0
    );
    fill(
        &js,
        "b",
        (0..100_000).map(|i| (format!("f{i}"), "x".into())),
    )
    .await;
    let filled = Instant::now();
    // Start the sweep just before the filler starts to expire.
    tokio::time::sleep(Duration::from_millis(2700).saturating_sub(filled.elapsed())).await;
    let run = kvop(&server.url(), &["reconcile", "-f", path(&dir), "--prune"]).await;
    assert_eq!(run.code, 0, "{run:?}");
}

#[tokio::test]
async fn declared_keys_are_observed_when_their_filter_exceeds_a_small_max_payload() {
    // Ten 305-character keys make a filtered-sweep request of over 3 KB: it must be split
    // (or replaced by a whole-bucket sweep) to fit the server's 2 KB max_payload.
    let server = NatsServer::start_with_config("max_payload: 2048\n");
    let js = server.jetstream().await;
    let key = |i: usize| format!("k{i}-{}", "x".repeat(302));
    let mut docs = vec![bucket("b", "")];
    docs.extend((0..10).map(|i| entry(&format!("e{i}"), "b", &key(i), "desired", "")));
    let dir = manifests(&[("m.yaml", &docs.join("---\n"))]);
    let first = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(first.code, 0, "{first:?}");
    // Enough other keys that a sweep filtered to the declared keys is the narrower one.
    fill(&js, "b", (0..5_000).map(|i| (format!("f{i}"), "x".into()))).await;
    fill(&js, "b", [(key(7), "drift".to_string())].into_iter()).await;

    // Every consumer the dry run creates is announced (kvop deletes its sweeps'
    // consumers when done, so counting the ones left says nothing).
    let client = async_nats::connect(server.url()).await.expect("connect");
    let mut created = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.CREATED.KV_b.*")
        .await
        .expect("subscribe to consumer advisories");
    client.flush().await.expect("flush");
    let dry = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            path(&dir),
            "--dry-run",
            "--detailed-exitcode",
        ],
    )
    .await;
    assert_eq!(dry.code, 2, "one drifted key to update: {dry:?}");
    // The sweep was split over several filtered consumers, not replaced by one sweep of
    // the whole bucket.
    let mut consumers = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), created.next()).await {
        consumers += 1;
    }
    assert!(consumers >= 2, "{consumers} consumers created");
    let fixed = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(fixed.code, 0, "{fixed:?}");
    assert_eq!(
        kv_get(&js, "b", &key(7)).await.as_deref(),
        Some(&b"desired"[..])
    );
    // Every declared key was seen: none is planned as new, nothing left to change.
    let again = kvop(
        &server.url(),
        &["reconcile", "-f", path(&dir), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(again.code, 0, "{again:?}");
}
