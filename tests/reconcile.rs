//! `kvop reconcile` against a real nats-server 2.15.1: convergence, no-op re-runs, drift,
//! update policies, prune, dry run. Values are checked through async-nats' KV API.

mod support;

use std::time::Duration;

use futures::StreamExt;

use support::{
    NatsServer, bucket, entry, kv_entry, kv_get, kvop, last_sequence, manifests, path,
    stream_config,
};

fn examples() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples").to_string()
}

#[tokio::test]
async fn cold_apply_creates_every_example_bucket_and_key_with_ownership_headers() {
    let server = NatsServer::start();
    let run = kvop(&server.url(), &["reconcile", "-f", &examples()]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("Plan: 4 buckets to create, 11 keys to create."),
        "{}",
        run.stdout
    );
    let js = server.jetstream().await;
    assert_eq!(
        kv_get(&js, "app-config", "checkout/settings.json")
            .await
            .as_deref(),
        Some(&br#"{"currency":"EUR","features":{"newCart":true},"retries":3}"#[..]),
        "jsonValue is stored as compact JSON with sorted keys"
    );
    assert_eq!(
        kv_get(&js, "app-config", "checkout/schema.bin").await,
        Some(vec![0xca, 0xfe, 0xba, 0xbe, 0, 1, 0, 2])
    );
    assert_eq!(
        kv_get(&js, "cache", "fragments/homepage").await.as_deref(),
        Some(&b"<h1>Welcome</h1>\n"[..]),
        "a | block keeps its newline"
    );
    let sessions = stream_config(&js, "user-sessions").await;
    assert_eq!(
        (
            sessions.max_messages_per_subject,
            sessions.max_age,
            sessions.max_message_size
        ),
        (5, Duration::from_secs(30 * 86400), 1 << 20)
    );
    assert_eq!(
        stream_config(&js, "cache").await.storage,
        async_nats::jetstream::stream::StorageType::Memory
    );
    let message = js
        .get_stream("KV_cache")
        .await
        .expect("stream")
        .get_last_raw_message_by_subject("$KV.cache.fragments/homepage")
        .await
        .expect("message");
    assert_eq!(
        message.headers.get("Kvop-Manager").map(|v| v.as_str()),
        Some("kvop")
    );
    assert_eq!(
        message.headers.get("Kvop-Owner").map(|v| v.as_str()),
        Some("default/cache-homepage")
    );
    assert_eq!(
        kv_get(&js, "feature-flags", "checkout/new-cart")
            .await
            .as_deref(),
        Some(&b"true"[..]),
        "a set's ConfigMap key, under its prefix"
    );
    assert!(
        run.stdout.contains("user-sessions  2       2"),
        "status table shows values and keys:\n{}",
        run.stdout
    );
}

#[tokio::test]
async fn second_run_writes_nothing_and_exits_0_with_detailed_exitcode() {
    let server = NatsServer::start();
    assert_eq!(
        kvop(
            &server.url(),
            &["reconcile", "-f", &examples(), "--detailed-exitcode"]
        )
        .await
        .code,
        2
    );
    let js = server.jetstream().await;
    let before = support::sequences(
        &js,
        &["app-config", "cache", "feature-flags", "user-sessions"],
    )
    .await;
    let again = kvop(
        &server.url(),
        &["reconcile", "-f", &examples(), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains("Plan: 11 keys unchanged, 4 buckets unchanged."),
        "{}",
        again.stdout
    );
    assert_eq!(
        support::sequences(
            &js,
            &["app-config", "cache", "feature-flags", "user-sessions"]
        )
        .await,
        before,
        "no message was written"
    );
}

#[tokio::test]
async fn changed_value_is_updated_with_a_revision_check() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let v1 = manifests(&[(
        "m.yaml",
        &format!(
            "{}---\n{}",
            bucket("b", ""),
            entry("e", "b", "k", "one", "")
        ),
    )]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&v1)])
            .await
            .code,
        0
    );
    let v2 = manifests(&[(
        "m.yaml",
        &format!(
            "{}---\n{}",
            bucket("b", ""),
            entry("e", "b", "k", "two", "")
        ),
    )]);
    let run = kvop(
        &server.url(),
        &["reconcile", "-f", path(&v2), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains("~ key k: update revision 1"),
        "{}",
        run.stdout
    );
    let current = kv_entry(&js, "b", "k").await.expect("entry");
    assert_eq!(&current.value[..], b"two");
    let message = js
        .get_stream("KV_b")
        .await
        .expect("stream")
        .get_raw_message(current.revision)
        .await
        .expect("message");
    assert_eq!(
        message
            .headers
            .get("Nats-Expected-Last-Subject-Sequence")
            .map(|v| v.as_str()),
        Some("1"),
        "the update expected the observed revision"
    );
}

#[tokio::test]
async fn bucket_config_changes_are_applied_by_read_modify_write_and_then_stable() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let v1 = manifests(&[("b.yaml", &bucket("b", "  history: 2\n  ttl: 1h\n"))]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&v1)])
            .await
            .code,
        0
    );
    // A field kvop does not manage, set out of band, must survive the update.
    let mut config = stream_config(&js, "b").await;
    config.max_consumers = 7;
    js.update_stream(config).await.expect("out-of-band edit");
    let spec = "  history: 8\n  ttl: 30s\n  maxValueSize: 4Ki\n  maxBytes: 1Mi\n  description: changed\n  compression: true\n  metadata:\n    team: a\n";
    let v2 = manifests(&[("b.yaml", &bucket("b", spec))]);
    let run = kvop(
        &server.url(),
        &["reconcile", "-f", path(&v2), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    for field in [
        "history: 2 -> 8",
        "ttl: 1h -> 30s",
        "maxValueSize: unlimited -> 4Ki",
        "maxBytes: unlimited -> 1Mi",
        "description",
        "compression: false -> true",
        "metadata",
    ] {
        assert!(
            run.stdout.contains(field),
            "plan lists {field}:\n{}",
            run.stdout
        );
    }
    let config = stream_config(&js, "b").await;
    assert_eq!(config.max_messages_per_subject, 8);
    assert_eq!(config.max_age, Duration::from_secs(30));
    assert_eq!(
        config.duplicate_window,
        Duration::from_secs(30),
        "the duplicate window follows a short ttl"
    );
    assert_eq!((config.max_message_size, config.max_bytes), (4096, 1 << 20));
    assert_eq!(config.description.as_deref(), Some("changed"));
    assert_eq!(
        config.compression,
        Some(async_nats::jetstream::stream::Compression::S2)
    );
    assert_eq!(config.metadata.get("team").map(String::as_str), Some("a"));
    assert!(
        config.metadata.contains_key("_nats.level"),
        "server metadata kept"
    );
    assert_eq!(config.max_consumers, 7, "unmanaged fields survive");
    let again = kvop(
        &server.url(),
        &["reconcile", "-f", path(&v2), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(
        again.code, 0,
        "the server's normalisation is not mistaken for drift: {again:?}"
    );
}

#[tokio::test]
async fn storage_change_is_blocked_reported_and_not_attempted() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let file = manifests(&[(
        "b.yaml",
        &format!(
            "{}---\n{}",
            bucket("b", "  history: 1\n"),
            entry("e", "b", "k", "v", "")
        ),
    )]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&file)])
            .await
            .code,
        0
    );
    let before = last_sequence(&js, "b").await;
    let memory = manifests(&[(
        "b.yaml",
        &format!(
            "{}---\n{}",
            bucket("b", "  history: 3\n  storage: memory\n"),
            entry("e", "b", "k", "v", "")
        ),
    )]);
    let run = kvop(&server.url(), &["reconcile", "-f", path(&memory)]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("BLOCKED") && run.stdout.contains("! storage: file -> memory"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("cannot change storage on an existing bucket"),
        "{}",
        run.stderr
    );
    let config = stream_config(&js, "b").await;
    assert_eq!(
        config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
    assert_eq!(
        config.max_messages_per_subject, 1,
        "no partial update of the other fields"
    );
    assert_eq!(last_sequence(&js, "b").await, before);
}

#[tokio::test]
async fn key_deleted_or_purged_out_of_band_is_recreated_over_its_marker() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = manifests(&[(
        "m.yaml",
        &format!(
            "{}---\n{}---\n{}",
            bucket("b", "  history: 5\n"),
            entry("e1", "b", "deleted", "v", ""),
            entry("e2", "b", "purged", "v", "")
        ),
    )]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&dir)])
            .await
            .code,
        0
    );
    let store = js.get_key_value("b").await.expect("bucket");
    store.delete("deleted").await.expect("delete");
    store.purge("purged").await.expect("purge");
    let run = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(run.code, 0, "{run:?}");
    // Someone else's delete or purge is drift, put back over its marker.
    for key in ["deleted", "purged"] {
        assert!(
            run.stdout.contains(&format!(
                "+ key {key}: re-create, removed by another client (delete or purge marker at revision"
            )),
            "{}",
            run.stdout
        );
    }
    assert_eq!(
        kv_get(&js, "b", "deleted").await.as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(kv_get(&js, "b", "purged").await.as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn out_of_band_changes_follow_the_update_policy() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let text = [
        bucket("b", "  history: 5\n"),
        entry("overwrite", "b", "overwrite", "declared", ""),
        entry(
            "if-unchanged",
            "b",
            "if-unchanged",
            "declared",
            "  updatePolicy: IfUnchanged\n",
        ),
        entry(
            "create-only",
            "b",
            "create-only",
            "declared",
            "  updatePolicy: CreateOnly\n",
        ),
    ]
    .join("---\n");
    let dir = manifests(&[("m.yaml", &text)]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&dir)])
            .await
            .code,
        0
    );
    let store = js.get_key_value("b").await.expect("bucket");
    for key in ["overwrite", "if-unchanged", "create-only"] {
        store
            .put(key, "theirs".into())
            .await
            .expect("foreign write");
    }
    let run = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(
        run.code, 1,
        "a conflict means the declared state was not reached: {run:?}"
    );
    assert!(
        run.stdout.lines().any(|line| {
            line.contains("~ key overwrite: update, overwriting revision ")
                && line.contains(" written by another client")
        }),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("! key if-unchanged: conflict"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("key create-only: skip"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("if-unchanged") && run.stderr.contains("another client"),
        "{}",
        run.stderr
    );
    assert_eq!(
        kv_get(&js, "b", "overwrite").await.as_deref(),
        Some(&b"declared"[..]),
        "Overwrite restores"
    );
    assert_eq!(
        kv_get(&js, "b", "if-unchanged").await.as_deref(),
        Some(&b"theirs"[..]),
        "IfUnchanged leaves a foreign value"
    );
    assert_eq!(
        kv_get(&js, "b", "create-only").await.as_deref(),
        Some(&b"theirs"[..]),
        "CreateOnly leaves an existing value"
    );
}

#[tokio::test]
async fn a_take_over_annotation_overwrites_the_one_foreign_revision_it_names() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let declare = |annotation: &str| {
        let entry = entry("e", "b", "k", "declared", "  updatePolicy: IfUnchanged\n");
        let entry = entry.replacen("metadata:\n", &format!("metadata:\n{annotation}"), 1);
        manifests(&[("m.yaml", &[bucket("b", ""), entry].join("---\n"))])
    };
    let plain = declare("");
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&plain)])
            .await
            .code,
        0
    );
    let store = js.get_key_value("b").await.expect("bucket");
    let foreign = store
        .put("k", "theirs".into())
        .await
        .expect("foreign write");
    let conflict = kvop(&server.url(), &["reconcile", "-f", path(&plain)]).await;
    assert_eq!(conflict.code, 1, "{conflict:?}");
    let wrong = declare(&format!(
        "  annotations:\n    kvop.dev/take-over: \"{}\"\n",
        foreign + 100
    ));
    let still = kvop(&server.url(), &["reconcile", "-f", path(&wrong)]).await;
    assert_eq!(
        still.code, 1,
        "another revision is not taken over: {still:?}"
    );
    let taking = declare(&format!(
        "  annotations:\n    kvop.dev/take-over: \"{foreign}\"\n"
    ));
    let taken = kvop(&server.url(), &["reconcile", "-f", path(&taking)]).await;
    assert_eq!(taken.code, 0, "{taken:?}");
    assert_eq!(
        kv_get(&js, "b", "k").await.as_deref(),
        Some(&b"declared"[..])
    );
    let bad = declare("  annotations:\n    kvop.dev/take-over: soon\n");
    let refused = kvop(&server.url(), &["reconcile", "-f", path(&bad)]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("kvop.dev/take-over")
            && refused.stderr.contains("positive integer"),
        "{}",
        refused.stderr
    );
}

#[tokio::test]
async fn prune_deletes_only_undeclared_keys_this_manager_wrote() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let all = [
        bucket("b", ""),
        entry("a", "b", "a", "1", ""),
        entry("c", "b", "c", "3", ""),
    ]
    .join("---\n");
    let dir = manifests(&[("m.yaml", &all)]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&dir)])
            .await
            .code,
        0
    );
    let other = manifests(&[(
        "m.yaml",
        // Another manager may not manage the bucket (kvop's claim), only observe it.
        &[
            bucket("b", "  managementPolicy: Observe\n"),
            entry("y", "b", "y", "other", ""),
        ]
        .join("---\n"),
    )]);
    assert_eq!(
        kvop(
            &server.url(),
            &["reconcile", "-f", path(&other), "--manager", "someone-else"]
        )
        .await
        .code,
        0
    );
    js.get_key_value("b")
        .await
        .expect("bucket")
        .put("x", "foreign".into())
        .await
        .expect("put");

    let fewer = manifests(&[(
        "m.yaml",
        &[bucket("b", ""), entry("a", "b", "a", "1", "")].join("---\n"),
    )]);
    let dry = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            path(&fewer),
            "--prune",
            "--dry-run",
            "--detailed-exitcode",
        ],
    )
    .await;
    assert_eq!(dry.code, 2, "{dry:?}");
    assert!(dry.stdout.contains("- key c: delete"), "{}", dry.stdout);
    let run = kvop(&server.url(), &["reconcile", "-f", path(&fewer), "--prune"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        kv_get(&js, "b", "c").await,
        None,
        "ours and undeclared: deleted"
    );
    assert_eq!(kv_get(&js, "b", "a").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(
        kv_get(&js, "b", "x").await.as_deref(),
        Some(&b"foreign"[..]),
        "unmanaged keys stay"
    );
    assert_eq!(
        kv_get(&js, "b", "y").await.as_deref(),
        Some(&b"other"[..]),
        "another manager's keys stay"
    );
    let again = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            path(&fewer),
            "--prune",
            "--detailed-exitcode",
        ],
    )
    .await;
    assert_eq!(
        again.code, 0,
        "a deleted key is not deleted again: {again:?}"
    );
}

#[tokio::test]
async fn pruning_a_bucket_to_empty_needs_allow_empty_prune() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let full = manifests(&[(
        "m.yaml",
        &[bucket("b", ""), entry("a", "b", "a", "1", "")].join("---\n"),
    )]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&full)])
            .await
            .code,
        0
    );
    let before = last_sequence(&js, "b").await;
    let empty = manifests(&[("m.yaml", &bucket("b", ""))]);
    let refused = kvop(&server.url(), &["reconcile", "-f", path(&empty), "--prune"]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("--allow-empty-prune"),
        "{}",
        refused.stderr
    );
    assert_eq!(last_sequence(&js, "b").await, before, "nothing written");
    let allowed = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            path(&empty),
            "--prune",
            "--allow-empty-prune",
        ],
    )
    .await;
    assert_eq!(allowed.code, 0, "{allowed:?}");
    assert_eq!(kv_get(&js, "b", "a").await, None);
}

#[tokio::test]
async fn dry_run_writes_nothing_and_exits_2_when_changes_are_pending() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let run = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            &examples(),
            "--dry-run",
            "--detailed-exitcode",
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains("Dry run: nothing was written."),
        "{}",
        run.stdout
    );
    assert_eq!(js.stream_names().count().await, 0, "no bucket was created");
}

#[tokio::test]
async fn json_output_is_one_document_with_plan_result_and_status() {
    let server = NatsServer::start();
    let run = kvop(
        &server.url(),
        &["reconcile", "-f", &examples(), "-o", "json"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["schemaVersion"], 2);
    assert_eq!(report["exitCode"], 0);
    assert_eq!(report["plan"]["summary"]["keysToCreate"], 11);
    assert_eq!(report["result"]["writes"], 15);
    let statuses = report["status"].as_array().expect("status list");
    let sessions = statuses
        .iter()
        .find(|status| status["bucket"] == "user-sessions")
        .expect("sessions status");
    assert_eq!(
        (
            sessions["keys"].as_i64(),
            sessions["history"].as_i64(),
            sessions["backingStore"].as_str()
        ),
        (Some(2), Some(5), Some("JetStream"))
    );
    assert_eq!(sessions["ttl"], "30d");
}

#[tokio::test]
async fn manifests_can_come_from_stdin_and_other_kinds_are_skipped_with_a_notice() {
    let server = NatsServer::start();
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unrelated\n---\n{}---\n{}",
        bucket("b", ""),
        entry("e", "b", "k", "v", "")
    );
    let run = support::kvop_with_stdin(&server.url(), &["reconcile", "-f", "-"], Some(&text)).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("<stdin>:1: skipped v1 ConfigMap unrelated"),
        "{}",
        run.stderr
    );
    assert_eq!(
        kv_get(&server.jetstream().await, "b", "k").await.as_deref(),
        Some(&b"v"[..])
    );
}

#[tokio::test]
async fn an_unreachable_server_is_one_clear_line() {
    let port = support::free_port();
    let run = kvop(
        &format!("nats://127.0.0.1:{port}"),
        &["reconcile", "-f", &examples()],
    )
    .await;
    assert_eq!(run.code, 1);
    // examples/gitops holds other kinds, each skipped with a notice.
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| !line.contains(": skipped "))
        .collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].starts_with("error: cannot reach NATS:") && lines[0].contains(&port.to_string()),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn wrong_credentials_are_one_clear_line() {
    let server = support::NatsServer::start_with_config(
        "authorization { users: [ { user: kvop, password: right } ] }\n",
    );
    let run = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            &examples(),
            "--user",
            "kvop",
            "--password",
            "wrong",
        ],
    )
    .await;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr
            .lines()
            .filter(|line| !line.contains(": skipped "))
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("refused the credentials"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("wrong"),
        "the password is never printed: {}",
        run.stderr
    );
    let ok = kvop(
        &server.url(),
        &["reconcile", "-f", &examples(), "--user", "kvop"],
    )
    .await;
    assert_eq!(ok.code, 1, "missing password is refused too: {ok:?}");
    let right = support::kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            &examples(),
            "--user",
            "kvop",
            "--password",
            "right",
        ],
    )
    .await;
    assert_eq!(right.code, 0, "{right:?}");
}

#[tokio::test]
async fn credentials_in_the_url_never_appear_in_errors() {
    let server = support::NatsServer::start_with_config(
        "authorization { users: [ { user: kvop, password: right } ] }\n",
    );
    let url = format!("nats://kvop:wr0ng-pass@127.0.0.1:{}", server.port);
    let refused = kvop(&url, &["reconcile", "-f", &examples()]).await;
    assert_eq!(refused.code, 1);
    assert!(
        !refused.stderr.contains("wr0ng-pass") && refused.stderr.contains("***@"),
        "{}",
        refused.stderr
    );
    let port = support::free_port();
    let unreachable = kvop(
        &format!("nats://kvop:wr0ng-pass@127.0.0.1:{port}"),
        &["reconcile", "-f", &examples()],
    )
    .await;
    assert!(
        !unreachable.stderr.contains("wr0ng-pass"),
        "{}",
        unreachable.stderr
    );
}

#[tokio::test]
async fn json_output_is_one_document_even_when_the_input_is_invalid() {
    let server = NatsServer::start();
    let dir = manifests(&[("m.yaml", &bucket("b", "  history: 99\n"))]);
    let run = kvop(
        &server.url(),
        &["reconcile", "-f", path(&dir), "-o", "json"],
    )
    .await;
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["exitCode"], 1);
    assert_eq!(report["problems"][0]["field"], "spec.history", "{report}");
}

#[tokio::test]
async fn entries_on_an_observed_bucket_that_is_a_mirror_are_refused_before_writing() {
    let server = NatsServer::start();
    let origin = manifests(&[("m.yaml", &bucket("origin", ""))]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&origin)])
            .await
            .code,
        0
    );
    let mirror = manifests(&[(
        "m.yaml",
        &[
            bucket("origin", ""),
            bucket("copy", "  mirror:\n    name: origin\n"),
        ]
        .join("---\n"),
    )]);
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&mirror)])
            .await
            .code,
        0
    );
    let observed = manifests(&[(
        "m.yaml",
        &[
            bucket("copy", "  managementPolicy: Observe\n"),
            entry("e", "copy", "k", "v", ""),
        ]
        .join("---\n"),
    )]);
    let run = kvop(&server.url(), &["reconcile", "-f", path(&observed)]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("is a read-only mirror on the server"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_closed_stdout_ends_the_report_not_the_run() {
    // `kvop reconcile -f big/ | head -n 1` used to panic at the first write to the closed
    // pipe (exit 101), with nothing applied.
    let server = NatsServer::start();
    let mut documents = vec![bucket("piped", "")];
    for i in 0..200 {
        documents.push(entry(&format!("e{i}"), "piped", &format!("k{i}"), "v", ""));
    }
    let dir = manifests(&[("m.yaml", &documents.join("---\n"))]);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kvop"))
        .args(["reconcile", "-f", dir.path().to_str().expect("path")])
        .env("NATS_URL", server.url())
        .env_remove("KVOP_MANAGER")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kvop");
    // The reader goes away before kvop writes a byte.
    drop(child.stdout.take());
    let output = child.wait_with_output().await.expect("kvop output");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let js = server.jetstream().await;
    for i in [0, 199] {
        assert_eq!(
            support::kv_get(&js, "piped", &format!("k{i}")).await,
            Some(b"v".to_vec()),
            "k{i} applied"
        );
    }
}

#[tokio::test]
async fn no_jetstream_and_a_wrong_domain_are_told_apart() {
    // Both used to fail the first bucket with "requested JetStream resource does not exist".
    let dir = manifests(&[("m.yaml", &bucket("b", ""))]);
    let path = dir.path().to_str().expect("path");

    let port = support::free_port();
    let mut plain = std::process::Command::new(support::nats_server_binary())
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nats-server without JetStream");
    let url = format!("nats://127.0.0.1:{port}");
    let run = support::kvop_eventually_listening(&url, &["reconcile", "-f", path]).await;
    let _ = plain.kill();
    let _ = plain.wait();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("has JetStream disabled"), "{run:?}");

    let server = NatsServer::start();
    let run = kvop(
        &server.url(),
        &["reconcile", "-f", path, "--js-domain", "elsewhere"],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("nothing answers in domain \"elsewhere\" (--js-domain"),
        "{run:?}"
    );
    let js = server.jetstream().await;
    assert!(js.get_key_value("b").await.is_err(), "nothing was created");
}

#[tokio::test]
async fn observing_shares_declared_values_read_back_unchanged_and_copies_the_others() {
    let server = NatsServer::start();
    let text = [
        bucket("shared", ""),
        entry("same", "shared", "same", "declared", ""),
        entry("drifted", "shared", "drifted", "declared", ""),
    ]
    .join("---\n");
    let dir = manifests(&[("all.yaml", &text)]);
    let applied = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(applied.code, 0, "{applied:?}");
    let js = server.jetstream().await;
    let store = js.get_key_value("shared").await.expect("bucket");
    store.put("drifted", "foreign".into()).await.expect("drift");

    let loaded = kvop::manifest::load(
        &[kvop::manifest::Input::Path(dir.path().to_path_buf())],
        &kvop::manifest::LoadOptions {
            manager: "kvop".into(),
        },
    )
    .expect("manifests load");
    let connection = kvop::nats::connect(&kvop::nats::ConnectionSettings {
        url: server.url(),
        client_name: "kvop-test".into(),
        ..Default::default()
    })
    .await
    .expect("kvop connects");
    let observed = kvop::nats::observe(&connection, &loaded.desired, false)
        .await
        .expect("observe");
    let keys = &observed.buckets["shared"].keys;
    let declared = |key: &str| {
        let entry = loaded.desired.entries.iter().find(|e| &*e.key == key);
        entry.expect("declared").value.clone()
    };
    // Read back unchanged: the declared bytes themselves, not a second copy.
    assert_eq!(keys["same"].value, declared("same"));
    assert_eq!(keys["same"].value.as_ptr(), declared("same").as_ptr());
    // Changed out of band: what the server holds.
    assert_eq!(&keys["drifted"].value[..], b"foreign");
    assert_ne!(keys["drifted"].value.as_ptr(), declared("drifted").as_ptr());
}

/// `kvop reconcile` of `docs` (one file) as `manager`.
async fn reconcile_as(url: &str, manager: &str, docs: &[String]) -> support::Run {
    let dir = manifests(&[("kv.yaml", &docs.join("---\n"))]);
    kvop(url, &["reconcile", "-f", path(&dir), "--manager", manager]).await
}

/// Two file sets with different managers over one bucket used to rewrite each other's
/// keys on every run. A key another manager wrote is its claim: refused under every
/// update policy, reported with its holder, exit 1, nothing written; a key's delete
/// marker claims nothing. A renamed manifest of the same manager keeps its key.
#[tokio::test]
async fn a_key_another_manager_wrote_is_refused_under_every_policy_and_nothing_is_written() {
    let server = NatsServer::start();
    let url = server.url();
    let js = server.jetstream().await;
    let value =
        |js: async_nats::jetstream::Context| async move { kv_get(&js, "shared", "flag").await };
    let holder = |name: &str, value: &str| {
        [
            bucket("shared", ""),
            entry(name, "shared", "flag", value, ""),
        ]
    };
    // Another manager may observe the bucket, not manage it (the bucket's claim).
    let rival = |value: &str, extra: &str| {
        [
            bucket("shared", "  managementPolicy: Observe\n"),
            entry("other", "shared", "flag", value, extra),
        ]
    };
    assert_eq!(
        reconcile_as(&url, "team-a", &holder("flag", "team-a"))
            .await
            .code,
        0
    );
    let before = last_sequence(&js, "shared").await;
    for policy in ["Overwrite", "IfUnchanged", "CreateOnly"] {
        let extra = format!("  updatePolicy: {policy}\n");
        let run = reconcile_as(&url, "team-b", &rival("team-b", &extra)).await;
        assert_eq!(run.code, 1, "{policy}: {run:?}");
        assert!(
            run.stderr
                .contains("claimed by manager \"team-a\" for default/flag"),
            "{policy}: {}",
            run.stderr
        );
        assert_eq!(
            last_sequence(&js, "shared").await,
            before,
            "{policy}: nothing written"
        );
    }
    assert_eq!(value(js.clone()).await.as_deref(), Some(&b"team-a"[..]));
    // The holder renames its manifest: still its key.
    let renamed = holder("flag-renamed", "team-a2");
    assert_eq!(reconcile_as(&url, "team-a", &renamed).await.code, 0);
    assert_eq!(value(js.clone()).await.as_deref(), Some(&b"team-a2"[..]));
    // Deleted, the key claims nothing: the other manager may write it.
    js.get_key_value("shared")
        .await
        .expect("bucket")
        .delete("flag")
        .await
        .expect("delete");
    assert_eq!(
        reconcile_as(&url, "team-b", &rival("team-b", ""))
            .await
            .code,
        0
    );
    assert_eq!(value(js.clone()).await.as_deref(), Some(&b"team-b"[..]));
}

/// One claim per bucket, for file runs: a bucket another manager created (and so holds)
/// is refused, config untouched, holder named; a bucket kvop did not create is taken
/// over only with `kvop.dev/adopt`, and then holds its claim in the stream metadata.
#[tokio::test]
async fn a_bucket_is_managed_only_by_its_claimant_or_an_explicit_adoption() {
    let server = NatsServer::start();
    let url = server.url();
    let js = server.jetstream().await;
    let first = [bucket("shared", "  history: 5\n")];
    assert_eq!(reconcile_as(&url, "team-a", &first).await.code, 0);
    let refused = reconcile_as(&url, "team-b", &[bucket("shared", "  history: 7\n")]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("claimed by manager \"team-a\" for default/shared"),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.contains("REFUSED"), "{}", refused.stdout);
    assert_eq!(
        stream_config(&js, "shared").await.max_messages_per_subject,
        5
    );

    // Made by someone else: refused until adopted.
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: "handmade".into(),
        history: 2,
        ..Default::default()
    })
    .await
    .expect("create");
    let plain = manifests(&[("kv.yaml", &bucket("handmade", "  history: 4\n"))]);
    let refused = kvop(&url, &["reconcile", "-f", path(&plain)]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("kvop.dev/adopt"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        stream_config(&js, "handmade")
            .await
            .max_messages_per_subject,
        2
    );
    let adopting = manifests(&[(
        "kv.yaml",
        &bucket("handmade", "  history: 4\n").replace(
            "metadata:\n",
            "metadata:\n  annotations:\n    kvop.dev/adopt: \"true\"\n",
        ),
    )]);
    let adopted = kvop(&url, &["reconcile", "-f", path(&adopting)]).await;
    assert_eq!(adopted.code, 0, "{adopted:?}");
    let config = stream_config(&js, "handmade").await;
    assert_eq!(config.max_messages_per_subject, 4);
    assert_eq!(
        config
            .metadata
            .get("kvop.dev/claim-manager")
            .map(String::as_str),
        Some("kvop")
    );
    // Held now: the annotation is not needed any more.
    assert_eq!(
        kvop(
            &url,
            &["reconcile", "-f", path(&plain), "--detailed-exitcode"]
        )
        .await
        .code,
        0
    );
}
