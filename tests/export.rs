//! `kvop export` against real nats-servers: what it writes reconciles to nothing on the
//! server it came from and recreates the same buckets and keys on an empty one; a large
//! bucket's keys are counted while they are read, on a terminal only.

mod support;

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use support::export::{files, live_keys, put_all, settings, take_claims};
use support::{NatsServer, kvop, path, sequences};

/// Keys that use every character a key may have, and keys that differ only in case
/// (their Kubernetes names must still differ).
fn every_character_keys() -> Vec<(String, Vec<u8>)> {
    [
        "abcdefghijklmnopqrstuvwxyz",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        "a-b",
        "a/b",
        "a_b",
        "a=b",
        "a.b",
        "Key",
        "key",
        "_kv/x.Y-z=9",
        "-leading-dash",
        "=/_",
        &format!("long.{}", "x/".repeat(400)),
    ]
    .iter()
    .enumerate()
    .map(|(index, key)| {
        let value = match index % 4 {
            0 => format!("text {index}"),
            1 => format!("line one\nline two {index}\n"),
            2 => format!("  leading spaces, trailing break\n\n{index}"),
            _ => format!("yes # {index}: \"quoted\" \\ é"),
        };
        (key.to_string(), value.into_bytes())
    })
    .collect()
}

/// Buckets a foreign client made, with history, TTL, limits, binary values, deletes,
/// purges and 10,000 keys.
async fn seed(js: &jetstream::Context) {
    js.create_key_value(kv::Config {
        bucket: "settings".into(),
        description: "all the settings".into(),
        history: 5,
        max_age: Duration::from_secs(3600),
        max_value_size: 4096,
        max_bytes: 10 << 20,
        compression: true,
        limit_markers: Some(Duration::from_secs(5)),
        ..Default::default()
    })
    .await
    .expect("create settings");
    let store = js.get_key_value("settings").await.expect("settings");
    for revision in 0..4 {
        store
            .put("app.mode", format!("mode {revision}").into())
            .await
            .expect("put");
    }
    store.put("gone", "deleted".into()).await.expect("put");
    store.delete("gone").await.expect("delete");
    store.put("purged", "purged".into()).await.expect("put");
    store.purge("purged").await.expect("purge");
    put_all(js, "settings", &every_character_keys()).await;

    js.create_key_value(kv::Config {
        bucket: "Binary_Data".into(),
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .expect("create binary");
    let binary: Vec<(String, Vec<u8>)> = (0..64u8)
        .map(|i| {
            (
                format!("blob{i}"),
                (0..=255u8).map(|b| b.wrapping_mul(i)).collect(),
            )
        })
        .chain([("empty".to_string(), Vec::new()), ("nul".into(), vec![0])])
        .collect();
    put_all(js, "Binary_Data", &binary).await;

    js.create_key_value(kv::Config {
        bucket: "big".into(),
        history: 2,
        ..Default::default()
    })
    .await
    .expect("create big");
    let many: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| (format!("k{i:05}"), format!("{i:0>64}").into_bytes()))
        .collect();
    put_all(js, "big", &many).await;
}

const BUCKETS: [&str; 3] = ["settings", "Binary_Data", "big"];

fn export_args<'a>(dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["export", "-o", dir];
    for bucket in BUCKETS {
        args.extend(["--bucket", bucket]);
    }
    args.extend(extra);
    args
}

#[tokio::test]
async fn an_export_reconciles_to_nothing_and_recreates_every_bucket_and_key_elsewhere() {
    let origin = NatsServer::start();
    let js = origin.jetstream().await;
    seed(&js).await;
    let out = tempfile::tempdir().expect("dir");
    let dir = out.path().join("manifests");
    let exported = kvop(&origin.url(), &export_args(path(&dir), &[])).await;
    assert_eq!(exported.code, 0, "{exported:?}");
    assert!(
        exported.stdout.is_empty(),
        "manifests go to files: {exported:?}"
    );
    assert!(
        exported.stderr.contains("exported bucket \"settings\"")
            && exported
                .stderr
                .contains("2 deleted or purged keys left out"),
        "{}",
        exported.stderr
    );
    let written = files(&dir);
    assert_eq!(
        written.len(),
        3,
        "one file per bucket: {:?}",
        written.keys()
    );
    assert!(written["settings.yaml"].contains("secrets included"));
    assert!(
        !written["settings.yaml"].contains("gone") && !written["settings.yaml"].contains("purged")
    );

    // The same server: the first run takes each bucket over (its claim), writing no
    // key; then nothing to plan, nothing written.
    let before = sequences(&js, &BUCKETS).await;
    take_claims(&origin.url(), path(&dir)).await;
    assert_eq!(sequences(&js, &BUCKETS).await, before, "no key written");
    let again = kvop(
        &origin.url(),
        &["reconcile", "-f", path(&dir), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(again.code, 0, "the export must plan nothing: {again:?}");
    assert_eq!(sequences(&js, &BUCKETS).await, before, "zero writes");

    // An empty server: the same settings and the same live keys, byte for byte.
    let empty = NatsServer::start();
    let copy = empty.jetstream().await;
    let applied = kvop(&empty.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(applied.code, 0, "{applied:?}");
    for bucket in BUCKETS {
        assert_eq!(
            settings(&copy, bucket).await,
            settings(&js, bucket).await,
            "settings of {bucket}"
        );
        let (want, got) = (live_keys(&js, bucket).await, live_keys(&copy, bucket).await);
        assert_eq!(got.len(), want.len(), "keys of {bucket}");
        assert!(got == want, "values of {bucket} differ");
    }
    assert_eq!(live_keys(&copy, "big").await.len(), 10_000);

    // Exporting the copy gives the same files: names and order depend on the state only.
    let second = out.path().join("second");
    let exported = kvop(&empty.url(), &export_args(path(&second), &[])).await;
    assert_eq!(exported.code, 0, "{exported:?}");
    assert_eq!(
        files(&second),
        written,
        "an export is stable across runs and servers"
    );
}

#[tokio::test]
async fn key_filters_take_nats_wildcards_and_bad_ones_are_refused() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    js.create_key_value(kv::Config {
        bucket: "cfg".into(),
        ..Default::default()
    })
    .await
    .expect("create");
    let keys = ["app.a", "app.b.c", "db.x", "db.y.z", "other", "web.a"];
    put_all(
        &js,
        "cfg",
        &keys
            .iter()
            .map(|k| (k.to_string(), b"v".to_vec()))
            .collect::<Vec<_>>(),
    )
    .await;
    let exported_keys = |stdout: &str| -> Vec<String> {
        stdout
            .lines()
            .filter_map(|line| line.strip_prefix("  key: "))
            .map(str::to_string)
            .collect()
    };
    let run = kvop(
        &server.url(),
        &["export", "--bucket", "cfg", "--keys", "app.>", "db.*"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(exported_keys(&run.stdout), ["app.a", "app.b.c", "db.x"]);
    // Filters that overlap (the server refuses them in one consumer) still work.
    let run = kvop(
        &server.url(),
        &[
            "export", "--bucket", "cfg", "--keys", "*.a", "app.>", "app.a",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(exported_keys(&run.stdout), ["app.a", "app.b.c", "web.a"]);
    // Only the filtered keys, and still nothing to change.
    let dir = support::manifests(&[("cfg.yaml", &run.stdout)]);
    let before = sequences(&js, &["cfg"]).await;
    take_claims(&server.url(), path(dir.path())).await;
    let again = kvop(
        &server.url(),
        &["reconcile", "-f", path(dir.path()), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(sequences(&js, &["cfg"]).await, before);

    for bad in ["a..b", "a*", ">.a", "a b"] {
        let run = kvop(&server.url(), &["export", "--bucket", "cfg", "--keys", bad]).await;
        assert_eq!(run.code, 1, "{bad:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{bad:?}: {run:?}");
        assert!(
            run.stderr.contains(&format!("--keys {bad:?}")),
            "{bad:?}: {}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn json_values_are_used_only_for_bytes_that_are_canonical_json() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    js.create_key_value(kv::Config {
        bucket: "docs".into(),
        ..Default::default()
    })
    .await
    .expect("create");
    let values: Vec<(String, Vec<u8>)> = [
        (
            "canonical",
            &br#"{"a":[1,2.5,null,true],"b":{"c":"multi\nline\n"}}"#[..],
        ),
        ("spaced", br#"{"a": 1}"#),
        ("unsorted", br#"{"b":1,"a":2}"#),
        ("number", b"42"),
        ("huge", b"1e+300"),
        ("exponent", b"1e300"),
        ("string", br#""yes""#),
        ("nothing", b"null"),
        ("text", b"not json"),
    ]
    .iter()
    .map(|(key, value)| (key.to_string(), value.to_vec()))
    .collect();
    put_all(&js, "docs", &values).await;
    let run = kvop(
        &server.url(),
        &["export", "--bucket", "docs", "--json-values"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let documents: Vec<&str> = run.stdout.split("\n---\n").collect();
    let field_of = |key: &str| {
        let document = documents
            .iter()
            .find(|document| document.contains(&format!("  key: {key}\n")))
            .unwrap_or_else(|| panic!("{key} exported:\n{}", run.stdout));
        ["jsonValue:", "binaryValue:", "value:"]
            .into_iter()
            .find(|field| document.contains(&format!("  {field}")))
            .expect("a value field")
    };
    for key in ["canonical", "number", "huge", "string"] {
        assert_eq!(field_of(key), "jsonValue:", "{key}");
    }
    // serde_json writes 1e300 as 1e+300: the stored bytes are not canonical. And
    // `jsonValue: null` would read back as no value: the text `null` is a `value`.
    for key in ["spaced", "unsorted", "exponent", "nothing", "text"] {
        assert_eq!(field_of(key), "value:", "{key}");
    }
    assert!(
        run.stdout.contains("  key: nothing\n  value: \"null\"\n"),
        "{}",
        run.stdout
    );
    let empty = NatsServer::start();
    let dir = support::manifests(&[("docs.yaml", &run.stdout)]);
    let applied = kvop(&empty.url(), &["reconcile", "-f", path(dir.path())]).await;
    assert_eq!(applied.code, 0, "{applied:?}");
    assert!(live_keys(&empty.jetstream().await, "docs").await == live_keys(&js, "docs").await);
    take_claims(&server.url(), path(dir.path())).await;
    let again = kvop(
        &server.url(),
        &["reconcile", "-f", path(dir.path()), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(again.code, 0, "{again:?}");
}

#[tokio::test]
async fn values_nats_accepted_at_a_limit_reconcile_to_nothing_and_only_new_ones_are_refused() {
    // kvop's headers (about 120 bytes) count toward both limits, but a value the key
    // already holds is never written: the round trip holds for whatever NATS accepted.
    let server = NatsServer::start_with_config("max_payload: 2048\n");
    let js = server.jetstream().await;
    for (bucket, max_value_size) in [("sized", 200), ("open", 0), ("lowered", 0)] {
        js.create_key_value(kv::Config {
            bucket: bucket.into(),
            max_value_size,
            ..Default::default()
        })
        .await
        .expect("create");
    }
    let one = |key: &str, byte: u8, len: usize| vec![(key.to_string(), vec![byte; len])];
    put_all(&js, "sized", &one("full", b'a', 200)).await;
    put_all(&js, "open", &one("large", b'b', 2000)).await;
    put_all(&js, "lowered", &one("old", b'c', 300)).await;
    // A limit lowered after the value was written: the server keeps the value.
    let mut config = support::stream_config(&js, "lowered").await;
    config.max_message_size = 100;
    js.update_stream(config).await.expect("lower the limit");
    let buckets = ["sized", "open", "lowered"];

    let out = tempfile::tempdir().expect("dir");
    let mut args = vec!["export", "-o", path(out.path())];
    for bucket in buckets {
        args.extend(["--bucket", bucket]);
    }
    let exported = kvop(&server.url(), &args).await;
    assert_eq!(exported.code, 0, "{exported:?}");
    let before = sequences(&js, &buckets).await;
    take_claims(&server.url(), path(out.path())).await;
    let again = kvop(
        &server.url(),
        &["reconcile", "-f", path(out.path()), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(again.code, 0, "the export must plan nothing: {again:?}");
    assert_eq!(sequences(&js, &buckets).await, before, "zero writes");

    // A value that differs is written, with headers: over a limit, it is refused with
    // its file, line and field, and nothing at all is written.
    for (file, from, to) in [
        ("sized.yaml", "a".repeat(200), "A".repeat(200)),
        ("open.yaml", "b".repeat(2000), "B".repeat(2000)),
    ] {
        let file = out.path().join(file);
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.contains(&from), "{text}");
        std::fs::write(&file, text.replace(&from, &to)).expect("write");
    }
    let refused = kvop(&server.url(), &["reconcile", "-f", path(out.path())]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    for says in [
        "sized.yaml:",
        "spec: the value is 200 bytes, plus",
        "over the maxValueSize of bucket \"sized\" (200 bytes)",
        "open.yaml:",
        "spec: the value is 2000 bytes, plus",
        "over the server's max_payload (2048 bytes)",
    ] {
        assert!(refused.stderr.contains(says), "{says}: {}", refused.stderr);
    }
    assert!(
        !refused.stderr.contains("lowered"),
        "the unchanged value is not refused: {}",
        refused.stderr
    );
    assert_eq!(sequences(&js, &buckets).await, before, "nothing written");
}

#[tokio::test]
async fn reading_a_large_bucket_is_counted_on_a_terminal_only() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    for (bucket, count) in [("many", 3_000), ("few", 10)] {
        js.create_key_value(kv::Config {
            bucket: bucket.into(),
            ..Default::default()
        })
        .await
        .expect("create");
        let keys: Vec<(String, Vec<u8>)> = (0..count)
            .map(|i| (format!("k{i:05}"), b"v".to_vec()))
            .collect();
        put_all(&js, bucket, &keys).await;
    }
    let out = tempfile::tempdir().expect("dir");
    let terminal = out.path().join("terminal");
    let args = [
        "export",
        "--bucket",
        "many",
        "--bucket",
        "few",
        "-o",
        path(&terminal),
    ];
    let screen = support::kvop_on_a_terminal(&server.url(), &args);
    // The first count is drawn when a bucket reaches 1,000 keys, whatever the clock.
    let counted = screen
        .find("reading bucket \"many\": 1,000 keys")
        .unwrap_or_else(|| panic!("no key count on the terminal: {screen:?}"));
    let summary = screen
        .find("exported bucket \"many\": 3000 keys")
        .unwrap_or_else(|| panic!("no summary: {screen:?}"));
    assert!(
        screen[counted..summary].contains("\r\x1b[2K"),
        "the count is cleared before the summary: {screen:?}"
    );
    assert!(!screen.contains("reading bucket \"few\""), "{screen:?}");
    assert_eq!(files(&terminal).len(), 2, "{screen:?}");

    let piped = out.path().join("piped");
    let args = ["export", "--bucket", "many", "-o", path(&piped)];
    let run = kvop(&server.url(), &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !run.stderr.contains("reading bucket") && !run.stderr.contains('\r'),
        "no count when stderr is not a terminal: {:?}",
        run.stderr
    );
    assert_eq!(
        files(&piped),
        files(&terminal)
            .into_iter()
            .filter(|(name, _)| name == "many.yaml")
            .collect()
    );
}

#[tokio::test]
async fn unknown_buckets_unreachable_servers_and_existing_files_write_nothing() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    js.create_key_value(kv::Config {
        bucket: "here".into(),
        ..Default::default()
    })
    .await
    .expect("create");
    let out = tempfile::tempdir().expect("dir");
    let dir = path(out.path());

    let run = kvop(
        &server.url(),
        &[
            "export", "--bucket", "here", "--bucket", "missing", "-o", dir,
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("no such bucket: \"missing\""),
        "{}",
        run.stderr
    );
    assert!(files(out.path()).is_empty(), "nothing written");

    let run = kvop(
        &format!("nats://127.0.0.1:{}", support::free_port()),
        &["export", "--bucket", "here"],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.is_empty() && run.stderr.contains("error:"),
        "{run:?}"
    );

    let run = kvop(&server.url(), &["export", "--bucket", "bad.name"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--bucket"), "{}", run.stderr);

    std::fs::write(out.path().join("here.yaml"), "mine\n").expect("write");
    let run = kvop(&server.url(), &["export", "--bucket", "here", "-o", dir]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("refusing to overwrite") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("here.yaml")).expect("read"),
        "mine\n"
    );
    let run = kvop(
        &server.url(),
        &["export", "--bucket", "here", "-o", dir, "--force"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        std::fs::read_to_string(out.path().join("here.yaml"))
            .expect("read")
            .contains("kind: KeyValueBucket")
    );
    assert_eq!(files(out.path()).len(), 1, "no temporary file left behind");
}

#[tokio::test]
async fn a_mirror_is_exported_without_keys_and_says_so() {
    let server = NatsServer::start();
    let dir = support::manifests(&[(
        "m.yaml",
        &[
            support::bucket("origin", "  history: 3\n"),
            support::bucket("copy", "  mirror:\n    name: origin\n"),
            support::entry("seed", "origin", "k", "v", ""),
        ]
        .join("---\n"),
    )]);
    let created = kvop(&server.url(), &["reconcile", "-f", path(dir.path())]).await;
    assert_eq!(created.code, 0, "{created:?}");
    let run = kvop(
        &server.url(),
        &["export", "--bucket", "copy", "--bucket", "origin"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("bucket \"copy\": not exported: keys"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stdout.matches("kind: KeyValueEntry").count(),
        1,
        "{}",
        run.stdout
    );
    let exported = support::manifests(&[("all.yaml", &run.stdout)]);
    let again = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            path(exported.path()),
            "--detailed-exitcode",
        ],
    )
    .await;
    assert_eq!(again.code, 0, "{again:?}");
}
