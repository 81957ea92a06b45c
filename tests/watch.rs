//! `kvop reconcile --watch` against a real nats-server: edits (an editor's atomic save
//! too) applied, invalid saves writing nothing while the last valid files stay in force,
//! prune only from a valid file set, drift restored through the live views, a bucket
//! repaired, NATS killed and restarted, signals, the metrics endpoint. Every wait is for
//! an outcome, with a generous limit; no test asserts a time.

mod support;

use std::time::Duration;

use support::watching::{
    Watching, docs, eventually, http_get, kv, save_atomically, value_is, wait_value,
};
use support::{NatsServer, bucket, entry, free_port, last_sequence, manifests};

const IN_FORCE: &str = "manifests loaded and in force";
const NOT_VALID: &str = "the manifests are not valid: nothing was written";

#[tokio::test]
async fn edits_and_atomic_saves_are_applied_and_an_idle_watch_writes_nothing() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let file = |value: &str| docs(&[bucket("b", ""), entry("k", "b", "k", value, "")]);
    let dir = manifests(&[("m.yaml", &file("v1"))]);
    let path = dir.path().join("m.yaml");
    let watch = Watching::start(&server.url(), &[dir.path()], &[]);
    wait_value(&watch, &js, "b", "k", Some("v1")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;

    // The views' first load asks for a pass; once that is done, nothing is written.
    watch.wait_for_lines(&["created key", "key=k"], 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle = last_sequence(&js, "b").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(last_sequence(&js, "b").await, idle, "an idle watch wrote");

    save_atomically(&path, &file("v2"));
    wait_value(&watch, &js, "b", "k", Some("v2")).await;
    watch.wait_for_lines(&["updated key", "key=k"], 1).await;
    assert_eq!(
        last_sequence(&js, "b").await,
        idle + 1,
        "one save, one write"
    );

    std::fs::write(&path, file("v3")).expect("write in place");
    wait_value(&watch, &js, "b", "k", Some("v3")).await;

    // A new directory below the watched one, and a file in it.
    let more = dir.path().join("team/more.yaml");
    std::fs::create_dir(more.parent().unwrap()).unwrap();
    std::fs::write(&more, entry("k2", "b", "k2", "two", "")).unwrap();
    wait_value(&watch, &js, "b", "k2", Some("two")).await;

    // SIGHUP reloads; nothing changed, so nothing is written.
    let before = last_sequence(&js, "b").await;
    let loads = watch.lines_with(&[IN_FORCE]).len();
    watch.signal("HUP");
    watch.wait_for_lines(&["SIGHUP: reloading"], 1).await;
    watch.wait_for_lines(&[IN_FORCE], loads + 1).await;
    assert_eq!(last_sequence(&js, "b").await, before);

    assert_eq!(watch.stop().await, 0, "SIGTERM exits 0");
}

#[tokio::test]
async fn an_invalid_save_writes_nothing_and_the_next_valid_one_is_applied() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let file = |one: &str, two: bool| {
        let mut all = vec![bucket("b", ""), entry("one", "b", "one", one, "")];
        if two {
            all.push(entry("two", "b", "two", "2", ""));
        }
        docs(&all)
    };
    let dir = manifests(&[("m.yaml", &file("a", true))]);
    let path = dir.path().join("m.yaml");
    let watch = Watching::start(&server.url(), &[dir.path()], &["--prune"]);
    wait_value(&watch, &js, "b", "two", Some("2")).await;
    save_atomically(&path, &file("b", true));
    wait_value(&watch, &js, "b", "one", Some("b")).await;
    watch.wait_for_lines(&[IN_FORCE], 2).await;

    // Half saved: the file ends inside the second entry, which has no value yet. With
    // --prune, taking it at its word would delete `two`.
    let whole = file("c", true);
    let cut = whole.rfind("  value:").expect("the last value");
    let before = last_sequence(&js, "b").await;
    std::fs::write(&path, &whole[..cut]).unwrap();
    watch.wait_for_lines(&[NOT_VALID], 1).await;
    let errors = watch.lines_with(&["m.yaml:"]);
    assert!(
        !errors.is_empty(),
        "the error names the file and line: {errors:?}"
    );
    assert_eq!(
        last_sequence(&js, "b").await,
        before,
        "an invalid save wrote"
    );
    assert!(value_is(&js, "b", "two", Some("2")).await);
    assert!(value_is(&js, "b", "one", Some("b")).await);

    // The next valid save is applied, its prune included.
    save_atomically(&path, &file("d", false));
    wait_value(&watch, &js, "b", "one", Some("d")).await;
    wait_value(&watch, &js, "b", "two", None).await;
    watch.wait_for_lines(&["deleted key", "key=two"], 1).await;
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn a_deleted_file_prunes_its_keys_only_once_the_files_are_valid_without_it() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let bucket_doc = bucket("b", "");
    let dir = manifests(&[
        ("bucket.yaml", &bucket_doc),
        ("one.yaml", &entry("one", "b", "one", "1", "")),
        ("two.yaml", &entry("two", "b", "two", "2", "")),
    ]);
    let watch = Watching::start(&server.url(), &[dir.path()], &["--prune"]);
    wait_value(&watch, &js, "b", "two", Some("2")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;

    // Without the bucket's file the entries point at nothing: invalid, nothing pruned.
    std::fs::remove_file(dir.path().join("bucket.yaml")).unwrap();
    watch.wait_for_lines(&[NOT_VALID], 1).await;
    std::fs::remove_file(dir.path().join("two.yaml")).unwrap();
    watch.wait_for_lines(&[NOT_VALID], 2).await;
    assert!(value_is(&js, "b", "two", Some("2")).await);
    assert!(value_is(&js, "b", "one", Some("1")).await);

    // Valid again, without two.yaml: now its key goes.
    std::fs::write(dir.path().join("bucket.yaml"), &bucket_doc).unwrap();
    wait_value(&watch, &js, "b", "two", None).await;
    assert!(value_is(&js, "b", "one", Some("1")).await);
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn drift_in_nats_is_restored_while_watching_and_a_bucket_is_repaired() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = manifests(&[(
        "m.yaml",
        &docs(&[
            bucket("b", "  history: 5\n"),
            entry("over", "b", "over", "declared", ""),
            entry("seed", "b", "seed", "first", "  updatePolicy: CreateOnly\n"),
        ]),
    )]);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let watch = Watching::start(
        &server.url(),
        &[dir.path()],
        &["--metrics-address", &address],
    );
    wait_value(&watch, &js, "b", "seed", Some("first")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;
    let store = kv(&js, "b").await;
    let corrections = || metric(port, "kvop_drift_corrections_total");

    store.put("over", "foreign".into()).await.unwrap();
    wait_value(&watch, &js, "b", "over", Some("declared")).await;
    store.delete("over").await.unwrap();
    wait_value(&watch, &js, "b", "over", Some("declared")).await;
    store.purge("over").await.unwrap();
    wait_value(&watch, &js, "b", "over", Some("declared")).await;
    watch
        .wait_for_lines(&["restored after a change by", "key=over"], 3)
        .await;

    // CreateOnly leaves a foreign value alone: the pass that restores `over` again has
    // seen `seed` too.
    store.put("seed", "theirs".into()).await.unwrap();
    store.put("over", "foreign".into()).await.unwrap();
    wait_value(&watch, &js, "b", "over", Some("declared")).await;
    assert!(value_is(&js, "b", "seed", Some("theirs")).await);

    // Edited out of band: history 5 → 1 is put back, a correction of drift.
    let before = corrections().await;
    let mut config = js
        .get_stream("KV_b")
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    config.max_messages_per_subject = 1;
    js.update_stream(config).await.unwrap();
    eventually("history back to 5", || async {
        let mut stream = js.get_stream("KV_b").await.unwrap();
        stream.info().await.unwrap().config.max_messages_per_subject == 5
    })
    .await;

    eventually("the repair counted", || async {
        corrections().await > before
    })
    .await;

    // Deleted out of band: created again with its keys, a correction too.
    let before = corrections().await;
    js.delete_key_value("b").await.unwrap();
    wait_value(&watch, &js, "b", "over", Some("declared")).await;
    wait_value(&watch, &js, "b", "seed", Some("first")).await;
    watch.wait_for_lines(&["created bucket"], 2).await;
    eventually("the re-creation counted", || async {
        corrections().await > before
    })
    .await;

    // And the views follow the new bucket.
    kv(&js, "b")
        .await
        .put("over", "again".into())
        .await
        .unwrap();
    wait_value(&watch, &js, "b", "over", Some("declared")).await;
    assert_eq!(watch.stop().await, 0);
}

/// A bucket deleted out of band is created again writable. The server announces a
/// deletion (the view's consumer deleted, the stream advisory) and answers "stream not
/// found" before it has moved the stream's files away; a stream of the same name
/// created meanwhile takes the old files over and then loses them, and no write to it
/// is acknowledged again. The stream's consumers are torn down in that interval: with
/// 300 of them, a watch that re-created the bucket as soon as it heard failed this
/// test 10 times in 14 (none in 6 without them); 900 come near the server's limit.
#[tokio::test]
async fn a_bucket_deleted_while_the_server_tears_down_its_consumers_is_created_again_writable() {
    use async_nats::jetstream::consumer::pull;
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = manifests(&[(
        "m.yaml",
        &docs(&[bucket("b", ""), entry("k", "b", "k", "declared", "")]),
    )]);
    let watch = Watching::start(&server.url(), &[dir.path()], &[]);
    wait_value(&watch, &js, "b", "k", Some("declared")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;
    let stream = js.get_stream("KV_b").await.unwrap();
    for n in 0..300 {
        let config = pull::Config {
            durable_name: Some(format!("c{n}")),
            ..Default::default()
        };
        stream.create_consumer(config).await.unwrap();
    }

    js.delete_key_value("b").await.unwrap();
    wait_value(&watch, &js, "b", "k", Some("declared")).await;
    watch.wait_for_lines(&["created bucket"], 2).await;
    // A stream that took the old files over can still serve `k` from them: only a write
    // tells it apart (its acknowledgement never comes).
    kv(&js, "b").await.put("other", "v".into()).await.unwrap();
    assert_eq!(watch.stop().await, 0);
}

/// A counter's value on the metrics endpoint.
async fn metric(port: u16, name: &str) -> f64 {
    let metrics = http_get(port, "/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

#[tokio::test]
async fn with_prune_a_key_no_longer_declared_but_last_written_by_another_client_is_kept_and_said_so()
 {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = manifests(&[
        ("bucket.yaml", &bucket("b", "")),
        ("stay.yaml", &entry("stay", "b", "stay", "s", "")),
        (
            "seed.yaml",
            &entry("seed", "b", "seed", "first", "  updatePolicy: CreateOnly\n"),
        ),
    ]);
    let watch = Watching::start(&server.url(), &[dir.path()], &["--prune"]);
    wait_value(&watch, &js, "b", "seed", Some("first")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;
    kv(&js, "b")
        .await
        .put("seed", "theirs".into())
        .await
        .unwrap();

    std::fs::remove_file(dir.path().join("seed.yaml")).unwrap();
    watch
        .wait_for_lines(
            &[
                "key no longer declared, kept",
                "written by another client",
                "key=seed",
            ],
            1,
        )
        .await;
    assert!(value_is(&js, "b", "seed", Some("theirs")).await);
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn an_edit_of_a_key_another_client_wrote_is_an_update_not_a_drift_correction() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let file = |value: &str| docs(&[bucket("b", ""), entry("k", "b", "k", value, "")]);
    let dir = manifests(&[("m.yaml", &bucket("b", ""))]);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let watch = Watching::start(
        &server.url(),
        &[dir.path()],
        &["--metrics-address", &address],
    );
    watch.wait_for_lines(&[IN_FORCE], 1).await;
    // Adopted as it is: declared with the value another client wrote, nothing written.
    kv(&js, "b").await.put("k", "theirs".into()).await.unwrap();
    save_atomically(&dir.path().join("m.yaml"), &file("theirs"));
    watch.wait_for_lines(&[IN_FORCE], 2).await;

    save_atomically(&dir.path().join("m.yaml"), &file("mine"));
    wait_value(&watch, &js, "b", "k", Some("mine")).await;
    watch
        .wait_for_lines(
            &[
                "updated key, overwriting a value written by another client",
                "key=k",
            ],
            1,
        )
        .await;
    assert!(
        watch.lines_with(&["restored"]).is_empty(),
        "{:?}",
        watch.log()
    );
    assert_eq!(metric(port, "kvop_drift_corrections_total").await, 0.0);
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn nats_killed_and_restarted_while_watching() {
    let mut server = NatsServer::start();
    let js = server.jetstream().await;
    let file = |value: &str| docs(&[bucket("b", ""), entry("k", "b", "k", value, "")]);
    let dir = manifests(&[("m.yaml", &file("v1"))]);
    let watch = Watching::start(&server.url(), &[dir.path()], &[]);
    wait_value(&watch, &js, "b", "k", Some("v1")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;

    server.stop();
    watch
        .wait_for_lines(&["lost the connection to NATS"], 1)
        .await;
    // Edited while NATS is down: the pass waits for it, retrying.
    save_atomically(&dir.path().join("m.yaml"), &file("v2"));
    watch.wait_for_lines(&["failed; retrying"], 1).await;
    server.restart();
    let js = server.jetstream().await;
    wait_value(&watch, &js, "b", "k", Some("v2")).await;

    // The views follow again: drift after the restart is restored.
    kv(&js, "b").await.put("k", "foreign".into()).await.unwrap();
    wait_value(&watch, &js, "b", "k", Some("v2")).await;
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn invalid_files_at_start_wait_for_valid_ones_and_the_endpoint_says_so() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = manifests(&[("m.yaml", "kind: KeyValueBucket\nmetadata: [\n")]);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let watch = Watching::start(
        &server.url(),
        &[dir.path()],
        &["--metrics-address", &address],
    );
    watch.wait_for_lines(&["waiting for valid ones"], 1).await;
    assert!(http_get(port, "/readyz").await.starts_with("HTTP/1.1 503"));
    assert!(http_get(port, "/healthz").await.starts_with("HTTP/1.1 200"));
    // `kvop probe`, what the chart's `helm test` runs, reads the same answers.
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let unready = support::kvop(&server.url(), &["probe", &readyz]).await;
    assert_eq!(unready.code, 1, "{}", unready.stderr);
    assert!(
        unready.stderr.contains("answered HTTP/1.1 503"),
        "{}",
        unready.stderr
    );
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    assert_eq!(
        support::kvop(&server.url(), &["probe", &healthz])
            .await
            .code,
        0
    );
    // As the chart's test Pod finds the Service: from kubelet's environment variables.
    let port_text = port.to_string();
    let by_service = support::kvop_with_env(
        &server.url(),
        &["probe", "--service-env", "KVOP_METRICS", "/healthz"],
        &[
            ("KVOP_METRICS_SERVICE_HOST", "127.0.0.1"),
            ("KVOP_METRICS_SERVICE_PORT", &port_text),
        ],
    )
    .await;
    assert_eq!(by_service.code, 0, "{}", by_service.stderr);
    let metrics = http_get(port, "/metrics").await;
    assert!(
        metrics.contains("kvop_watch_manifests_valid 0"),
        "{metrics}"
    );

    std::fs::write(
        dir.path().join("m.yaml"),
        docs(&[bucket("b", ""), entry("k", "b", "k", "v", "")]),
    )
    .unwrap();
    wait_value(&watch, &js, "b", "k", Some("v")).await;
    eventually("ready", || async {
        http_get(port, "/readyz").await.starts_with("HTTP/1.1 200")
    })
    .await;
    let ready = support::kvop(&server.url(), &["probe", &readyz]).await;
    assert_eq!(ready.code, 0, "{}", ready.stderr);
    let metrics = http_get(port, "/metrics").await;
    assert!(
        metrics.contains("kvop_watch_manifests_valid 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kvop_watch_reloads_total{result=\"invalid\"} 1"),
        "{metrics}"
    );
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn watch_refuses_what_it_cannot_do() {
    let server = NatsServer::start();
    let dir = manifests(&[("m.yaml", &bucket("b", ""))]);
    let path = dir.path().to_str().unwrap();
    let stdin = support::kvop(&server.url(), &["reconcile", "-f", "-", "--watch"]).await;
    assert_eq!(stdin.code, 1);
    assert!(
        stdin.stderr.contains("--watch cannot follow stdin"),
        "{}",
        stdin.stderr
    );
    let json = support::kvop(
        &server.url(),
        &["reconcile", "-f", path, "--watch", "-o", "json"],
    )
    .await;
    assert_eq!(json.code, 1);
    assert!(json.stderr.contains("--log-format json"), "{}", json.stderr);
    let dry = support::kvop(
        &server.url(),
        &["reconcile", "-f", path, "--watch", "--dry-run"],
    )
    .await;
    assert_eq!(dry.code, 1);
    assert!(dry.stderr.contains("cannot be used with"), "{}", dry.stderr);
    // Nothing was created by any of them.
    assert_eq!(last_sequence(&server.jetstream().await, "b").await, 0);
    assert!(server.jetstream().await.get_stream("KV_b").await.is_err());
}

#[tokio::test]
async fn repairs_leave_no_sweep_consumers_behind() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = manifests(&[(
        "m.yaml",
        &docs(&[bucket("b", ""), entry("k", "b", "k", "declared", "")]),
    )]);
    let watch = Watching::start(&server.url(), &[dir.path()], &[]);
    wait_value(&watch, &js, "b", "k", Some("declared")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;
    let store = kv(&js, "b").await;
    for round in 0..20 {
        store
            .put("k", format!("foreign{round}").into())
            .await
            .unwrap();
        wait_value(&watch, &js, "b", "k", Some("declared")).await;
    }
    // Each repair swept the bucket with a consumer of its own. Left to their 30 s
    // inactive threshold they pile up (a busy watch reached the server's limit); only
    // the key view's consumer may stay.
    // Well inside the threshold, so that expiry cannot pass for deletion.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let consumers = loop {
        let mut stream = js.get_stream("KV_b").await.unwrap();
        let consumers = stream.info().await.unwrap().state.consumer_count;
        if consumers <= 1 || std::time::Instant::now() > deadline {
            break consumers;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        consumers <= 1,
        "{consumers} consumers left after 20 repairs"
    );
    assert_eq!(watch.stop().await, 0);
}

/// Two `--watch` services with different managers over one bucket used to rewrite each
/// other's config and keys forever (439 bucket updates in 10 s). The second finds the
/// bucket and key claimed by the first: it writes nothing, and nothing is written by
/// either for 10 s.
#[tokio::test]
async fn two_watches_with_different_managers_never_fight() {
    use futures::StreamExt;
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let first = manifests(&[(
        "m.yaml",
        &docs(&[
            bucket("shared", "  history: 3\n"),
            entry("k", "shared", "k", "from-a", ""),
        ]),
    )]);
    let second = manifests(&[(
        "m.yaml",
        &docs(&[
            bucket("shared", "  history: 9\n"),
            entry("k", "shared", "k", "from-b", ""),
        ]),
    )]);
    let a = Watching::start(&server.url(), &[first.path()], &["--manager", "team-a"]);
    wait_value(&a, &js, "shared", "k", Some("from-a")).await;
    let client = server.client().await;
    let mut updates = client
        .subscribe("$JS.EVENT.ADVISORY.STREAM.UPDATED.KV_shared")
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    let before = last_sequence(&js, "shared").await;
    let b = Watching::start(&server.url(), &[second.path()], &["--manager", "team-b"]);
    b.wait_for_lines(&["claimed by manager \"team-a\""], 1)
        .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(last_sequence(&js, "shared").await, before, "no key written");
    let update = tokio::time::timeout(Duration::from_millis(100), updates.next()).await;
    assert!(update.is_err(), "no config update: {update:?}");
    assert!(value_is(&js, "shared", "k", Some("from-a")).await);
    drop((a, b));
}
