//! Every bucket setting survives the round trip through the server: created as declared,
//! then planned as unchanged (the server's normalisation is never mistaken for drift).

mod support;

use support::{NatsServer, bucket, entry, kv_get, kvop, manifests, path};

#[tokio::test]
async fn a_bucket_with_every_setting_is_created_and_then_unchanged() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let everything = [
        bucket("origin", "  history: 3\n"),
        bucket(
            "full",
            "  description: all settings\n  history: 7\n  ttl: 1h\n  maxValueSize: 64Ki\n  maxBytes: 10Mi\n  compression: true\n  allowMsgTtl: true\n  limitMarkerTtl: 5s\n  placement:\n    cluster: somewhere\n    tags: [ssd]\n  republish:\n    source: \">\"\n    destination: audit.full.>\n    headersOnly: true\n  sources:\n    - name: origin\n  metadata:\n    team: a\n    tier: gold\n",
        ),
        bucket("copy", "  mirror:\n    name: origin\n"),
        entry("seed", "origin", "from-origin", "hello", ""),
    ]
    .join("---\n");
    let dir = manifests(&[("m.yaml", &everything)]);
    let first = kvop(
        &server.url(),
        &["reconcile", "-f", path(&dir), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(first.code, 2, "{first:?}");
    let config = support::stream_config(&js, "full").await;
    assert!(
        config.allow_message_ttl
            && config.subject_delete_marker_ttl == Some(std::time::Duration::from_secs(5))
    );
    assert_eq!(
        config
            .placement
            .as_ref()
            .and_then(|placement| placement.cluster.as_deref()),
        Some("somewhere")
    );
    assert_eq!(
        config
            .republish
            .as_ref()
            .map(|republish| republish.destination.as_str()),
        Some("audit.full.>")
    );
    let second = kvop(
        &server.url(),
        &["reconcile", "-f", path(&dir), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(
        second.code, 0,
        "nothing may change on the second run: {second:?}"
    );

    // Sourced keys are renamed into the aggregate bucket's subjects, so its own KV API
    // reads them (async-nats' kv::Config would leave them under the origin's prefix).
    let mut found = None;
    for _ in 0..50 {
        found = js
            .get_key_value("full")
            .await
            .expect("bucket")
            .get("from-origin")
            .await
            .expect("read");
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(found.as_deref(), Some(&b"hello"[..]));
    assert_eq!(
        kv_get(&js, "origin", "from-origin").await.as_deref(),
        Some(&b"hello"[..])
    );
}

#[tokio::test]
async fn turning_off_limit_markers_is_blocked_because_the_server_cannot_disable_ttl() {
    let server = NatsServer::start();
    let with = manifests(&[("m.yaml", &bucket("b", "  ttl: 1h\n  limitMarkerTtl: 2s\n"))]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&with)])
            .await
            .code,
        0
    );
    let without = manifests(&[("m.yaml", &bucket("b", "  ttl: 1h\n"))]);
    let run = kvop(&server.url(), &["reconcile", "-f", path(&without)]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("! limitMarkerTtl: 2s -> none"),
        "{}",
        run.stdout
    );
    let changed = manifests(&[("m.yaml", &bucket("b", "  ttl: 2h\n  limitMarkerTtl: 3s\n"))]);
    let update = kvop(
        &server.url(),
        &["reconcile", "-f", path(&changed), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(
        update.code, 2,
        "changing the marker TTL and ttl of a TTL bucket works: {update:?}"
    );
    let config = support::stream_config(&server.jetstream().await, "b").await;
    assert_eq!(
        config.subject_delete_marker_ttl,
        Some(std::time::Duration::from_secs(3))
    );
}

#[tokio::test]
async fn observe_policy_reports_a_bucket_managed_elsewhere_and_writes_its_keys() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: "theirs".into(),
        history: 4,
        ..Default::default()
    })
    .await
    .expect("create");
    let text = [
        bucket("theirs", "  history: 1\n  managementPolicy: Observe\n"),
        entry("e", "theirs", "k", "v", ""),
    ]
    .join("---\n");
    let dir = manifests(&[("m.yaml", &text)]);
    let run = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("observed (managementPolicy Observe)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        support::stream_config(&js, "theirs")
            .await
            .max_messages_per_subject,
        4,
        "never changed"
    );
    assert_eq!(kv_get(&js, "theirs", "k").await.as_deref(), Some(&b"v"[..]));
    let missing = manifests(&[("m.yaml", &bucket("absent", "  managementPolicy: Observe\n"))]);
    let run = kvop(&server.url(), &["reconcile", "-f", path(&missing)]).await;
    assert_eq!(
        run.code, 1,
        "an observed bucket that does not exist is an error: {run:?}"
    );
    assert!(
        run.stderr
            .contains("does not exist and its managementPolicy is Observe"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn token_authentication_from_the_environment() {
    let server = NatsServer::start_with_config("authorization { token: s3cret-token }\n");
    let dir = manifests(&[("m.yaml", &bucket("b", ""))]);
    let refused = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("refused the credentials"),
        "{}",
        refused.stderr
    );
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kvop"));
    command
        .args(["reconcile", "-f", path(&dir)])
        .env("NATS_URL", server.url())
        .env("NATS_TOKEN", "s3cret-token");
    let output = command.output().await.expect("run kvop");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("s3cret"),
        "the token is never printed"
    );
}

#[tokio::test]
async fn filtered_sources_start_times_and_empty_placements_round_trip() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let text = [
        bucket("origin", "  history: 2\n"),
        bucket("apps", "  placement: {}\n  sources:\n    - name: origin\n      filterSubject: $KV.origin.app.>\n"),
        bucket("copy", "  mirror:\n    name: origin\n    startTime: \"2026-01-02T03:04:05.000+00:00\"\n"),
        entry("app", "origin", "app.one", "1", ""),
        entry("other", "origin", "sys.two", "2", ""),
    ]
    .join("---\n");
    let dir = manifests(&[("m.yaml", &text)]);
    let first = kvop(
        &server.url(),
        &["reconcile", "-f", path(&dir), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(first.code, 2, "{first:?}");
    let second = kvop(
        &server.url(),
        &["reconcile", "-f", path(&dir), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(second.code, 0, "normalized settings are stable: {second:?}");
    let mut found = None;
    for _ in 0..50 {
        found = js
            .get_key_value("apps")
            .await
            .expect("bucket")
            .get("app.one")
            .await
            .expect("read");
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        found.as_deref(),
        Some(&b"1"[..]),
        "the filtered source renames app.> into apps"
    );
    assert_eq!(
        kv_get(&js, "apps", "sys.two").await,
        None,
        "keys outside the filter are not sourced"
    );
}
