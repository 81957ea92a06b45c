//! `allowMsgTtl` against a real nats-server: per-message TTL is turned on where declared,
//! left as the server has it where the field is left out, and never turned off (the
//! server refuses that, 10052); an export of a bucket that has it reconciles to nothing.

mod support;

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, kv};
use support::{NatsServer, Run, bucket, kvop, manifests, path, stream_config};

/// `kvop reconcile --detailed-exitcode` of bucket `b` declared with `spec`.
async fn reconcile(server: &NatsServer, spec: &str) -> Run {
    let dir = manifests(&[("m.yaml", &bucket("b", spec))]);
    kvop(
        &server.url(),
        &["reconcile", "-f", path(&dir), "--detailed-exitcode"],
    )
    .await
}

/// Whether the server stores a value of bucket `b` written with a `Nats-TTL` header.
async fn takes_a_message_ttl(js: &jetstream::Context) -> bool {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-TTL", "1h");
    let ack = js
        .publish_with_headers("$KV.b.expiring", headers, "v".into())
        .await
        .expect("publish");
    ack.await.is_ok()
}

#[tokio::test]
async fn a_bucket_declared_with_per_message_ttl_is_created_with_it_and_then_unchanged() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let created = reconcile(&server, "  allowMsgTtl: true\n").await;
    assert_eq!(created.code, 2, "{created:?}");
    assert!(
        created.stdout.contains("+ allowMsgTtl: true"),
        "{}",
        created.stdout
    );
    let config = stream_config(&js, "b").await;
    assert!(config.allow_message_ttl, "{config:?}");
    assert_eq!(
        config.subject_delete_marker_ttl, None,
        "per-message TTL needs no limit markers"
    );
    assert!(takes_a_message_ttl(&js).await);
    let again = reconcile(&server, "  allowMsgTtl: true\n").await;
    assert_eq!(again.code, 0, "nothing left to change: {again:?}");
}

#[tokio::test]
async fn turning_per_message_ttl_on_for_an_existing_bucket_is_an_update() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    assert_eq!(reconcile(&server, "  history: 2\n").await.code, 2);
    assert!(!stream_config(&js, "b").await.allow_message_ttl);
    assert!(
        !takes_a_message_ttl(&js).await,
        "without it the server refuses a message TTL (10166)"
    );
    let update = reconcile(&server, "  history: 2\n  allowMsgTtl: true\n").await;
    assert_eq!(update.code, 2, "{update:?}");
    assert!(
        update.stdout.contains("~ allowMsgTtl: false -> true"),
        "{}",
        update.stdout
    );
    assert!(stream_config(&js, "b").await.allow_message_ttl);
    assert!(takes_a_message_ttl(&js).await);
}

#[tokio::test]
async fn turning_per_message_ttl_off_is_blocked_and_leaves_the_stream_unchanged() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    assert_eq!(reconcile(&server, "  allowMsgTtl: true\n").await.code, 2);
    let before = stream_config(&js, "b").await;
    let run = reconcile(&server, "  allowMsgTtl: false\n  history: 3\n").await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("! allowMsgTtl: true -> false"),
        "{}",
        run.stdout
    );
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(
        output.contains("cannot change allowMsgTtl on an existing bucket (the server refuses it"),
        "{output}"
    );
    assert_eq!(
        stream_config(&js, "b").await,
        before,
        "nothing of the blocked update is written, not even history"
    );
}

#[tokio::test]
async fn leaving_allow_msg_ttl_out_plans_nothing_for_a_bucket_that_has_it() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    assert_eq!(reconcile(&server, "  allowMsgTtl: true\n").await.code, 2);
    let left_out = reconcile(&server, "").await;
    assert_eq!(left_out.code, 0, "{left_out:?}");
    assert!(stream_config(&js, "b").await.allow_message_ttl);
}

#[tokio::test]
async fn an_exported_bucket_with_per_message_ttl_reconciles_to_nothing_and_recreates_it() {
    let origin = NatsServer::start();
    let js = origin.jetstream().await;
    // As legacy nats.py made TTL buckets: per-message TTL on, no limit markers.
    js.create_key_value(kv::Config {
        bucket: "legacy".into(),
        history: 2,
        ..Default::default()
    })
    .await
    .expect("create legacy");
    let mut legacy = stream_config(&js, "legacy").await;
    legacy.allow_message_ttl = true;
    js.update_stream(legacy)
        .await
        .expect("turn per-message TTL on");
    js.create_key_value(kv::Config {
        bucket: "marked".into(),
        limit_markers: Some(Duration::from_secs(5)),
        ..Default::default()
    })
    .await
    .expect("create marked");

    let exported = kvop(
        &origin.url(),
        &["export", "--bucket", "legacy", "--bucket", "marked"],
    )
    .await;
    assert_eq!(exported.code, 0, "{exported:?}");
    assert_eq!(
        exported.stdout.matches("allowMsgTtl: true").count(),
        1,
        "written for the legacy bucket only (limit markers imply it): {}",
        exported.stdout
    );
    assert!(
        !exported.stderr.contains("per-message TTL"),
        "nothing about it is left out: {}",
        exported.stderr
    );
    let dir = manifests(&[("all.yaml", &exported.stdout)]);
    let reconcile = |url: String| {
        let dir = path(&dir).to_string();
        async move { kvop(&url, &["reconcile", "-f", &dir, "--detailed-exitcode"]).await }
    };

    // The origin: the first run takes the buckets over (their claims), then nothing.
    let claimed = reconcile(origin.url()).await;
    assert_eq!(claimed.code, 2, "{claimed:?}");
    assert!(
        !claimed.stdout.contains("allowMsgTtl"),
        "{}",
        claimed.stdout
    );
    let again = reconcile(origin.url()).await;
    assert_eq!(again.code, 0, "the export must plan nothing: {again:?}");

    // An empty server: both buckets made with per-message TTL.
    let empty = NatsServer::start();
    let copy = empty.jetstream().await;
    assert_eq!(reconcile(empty.url()).await.code, 2);
    for name in ["legacy", "marked"] {
        assert!(
            stream_config(&copy, name).await.allow_message_ttl,
            "{name} on the new server"
        );
    }
    assert_eq!(reconcile(empty.url()).await.code, 0);
}
