//! `kvop export --sets` against real nats-servers: one `KeyValueEntrySet` per bucket
//! with every key an inline item (under `--prefix`, relative to it), refused arguments
//! and oversized sets writing nothing, and the round trip through `kvop reconcile -f`.

mod support;

use async_nats::jetstream::{self, kv};
use support::export::{files, live_keys, put_all, take_claims};
use support::{NatsServer, kvop, kvop_with_env, path, sequences};

/// Text, canonical JSON, JSON that is not canonical, binary and multi-line values.
fn mixed_keys() -> Vec<(String, Vec<u8>)> {
    [
        ("text", &b"hello world"[..]),
        ("app.mode", b"blue"),
        (
            "app.json",
            br#"{"a":[1,2.5,null],"b":{"c":"multi\nline\n"}}"#,
        ),
        ("app.spaced", br#"{"a": 1}"#),
        ("app.nested.x", b"line one\nline two\n"),
        ("bin", b"\x00\x01\xfe\xff"),
        ("Upper_Case", b"yes"),
        ("apple", b"not under app."),
    ]
    .iter()
    .map(|(key, value)| (key.to_string(), value.to_vec()))
    .collect()
}

async fn seed(js: &jetstream::Context, bucket: &str, keys: &[(String, Vec<u8>)]) {
    js.create_key_value(kv::Config {
        bucket: bucket.into(),
        history: 3,
        ..Default::default()
    })
    .await
    .expect("create");
    put_all(js, bucket, keys).await;
}

/// The `- key:` lines of a set, in order.
fn item_keys(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("  - key: "))
        .collect()
}

/// The value field written for an item.
fn field_of<'a>(text: &'a str, key: &str) -> &'a str {
    let item = format!("  - key: {key}\n    ");
    let at = text
        .find(&item)
        .unwrap_or_else(|| panic!("no item {key}:\n{text}"));
    let rest = &text[at + item.len()..];
    &rest[..rest.find(':').expect("a field")]
}

#[tokio::test]
async fn a_bucket_of_text_json_and_binary_keys_is_one_set_with_its_keys_in_byte_order() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    seed(&js, "cfg", &mixed_keys()).await;
    let store = js.get_key_value("cfg").await.expect("cfg");
    store.put("gone", "deleted".into()).await.expect("put");
    store.delete("gone").await.expect("delete");
    seed(&js, "other", &[("k".to_string(), b"v".to_vec())]).await;

    let out = tempfile::tempdir().expect("dir");
    let args = [
        "export",
        "--bucket",
        "cfg",
        "--bucket",
        "other",
        "--sets",
        "--json-values",
        "-o",
        path(out.path()),
    ];
    // Debug logs on: values must never reach them.
    let run = kvop_with_env(&server.url(), &args, &[("KVOP_LOG", "debug")]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(
            "exported bucket \"cfg\": 8 keys as KeyValueEntrySet \"cfg\" (1 deleted or purged key left out)"
        ),
        "{}",
        run.stderr
    );
    for value in ["hello world", "blue", "not under app."] {
        assert!(
            !run.stderr.contains(value),
            "{value:?} logged: {}",
            run.stderr
        );
    }
    let written = files(out.path());
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        ["cfg.yaml", "other.yaml"]
    );
    let text = &written["cfg.yaml"];
    assert!(
        text.starts_with("# kvop export of bucket \"cfg\": 8 keys.\n"),
        "{text}"
    );
    assert!(text.contains("secrets included") && text.contains("KeyValueEntrySet \"cfg\""));
    assert_eq!(text.matches("kind: KeyValueBucket\n").count(), 1, "{text}");
    assert_eq!(
        text.matches("kind: KeyValueEntrySet\n").count(),
        1,
        "{text}"
    );
    assert!(!text.contains("kind: KeyValueEntry\n"), "{text}");
    // The bucket is taken over explicitly, as with entries; the set needs no annotation.
    assert_eq!(text.matches("kvop.dev/adopt").count(), 1, "{text}");
    let set = &text[text.find("kind: KeyValueEntrySet").expect("set")..];
    assert!(
        set.contains("spec:\n  bucketRef:\n    name: cfg\n  entries:\n"),
        "no keyPrefix without --prefix: {set}"
    );
    assert!(set.ends_with("  deletionPolicy: Retain\n"), "{set}");
    assert_eq!(
        item_keys(set),
        [
            "Upper_Case",
            "app.json",
            "app.mode",
            "app.nested.x",
            "app.spaced",
            "apple",
            "bin",
            "text"
        ],
        "every live key, in byte order"
    );
    for (key, field) in [
        ("app.json", "jsonValue"),
        ("app.spaced", "value"),
        ("app.nested.x", "value"),
        ("bin", "binaryValue"),
        ("Upper_Case", "value"),
    ] {
        assert_eq!(field_of(set, key), field, "{key}");
    }
    assert!(
        set.contains("  - key: Upper_Case\n    value: \"yes\"\n"),
        "{set}"
    );

    // Without -o: one YAML stream, each bucket then its set.
    let run = kvop(
        &server.url(),
        &["export", "--bucket", "cfg", "--bucket", "other", "--sets"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let kinds: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("kind: "))
        .collect();
    assert_eq!(
        kinds,
        [
            "KeyValueBucket",
            "KeyValueEntrySet",
            "KeyValueBucket",
            "KeyValueEntrySet"
        ]
    );
}

#[tokio::test]
async fn a_prefix_exports_only_the_keys_under_it_relative_to_the_sets_key_prefix() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    seed(&js, "cfg", &mixed_keys()).await;
    let export = |extra: &'static [&'static str]| {
        let url = server.url();
        async move {
            let mut args = vec!["export", "--bucket", "cfg", "--sets"];
            args.extend(extra);
            let run = kvop(&url, &args).await;
            assert_eq!(run.code, 0, "{extra:?}: {run:?}");
            run
        }
    };

    // A prefix that ends a token: read with the filter `app.>`.
    let run = export(&["--prefix", "app.", "--json-values"]).await;
    assert_eq!(
        item_keys(&run.stdout),
        ["json", "mode", "nested.x", "spaced"]
    );
    assert!(
        run.stdout.contains("  keyPrefix: app.\n  entries:\n"),
        "{}",
        run.stdout
    );
    assert_eq!(field_of(&run.stdout, "json"), "jsonValue");
    assert!(
        run.stdout
            .contains("# kvop export of bucket \"cfg\": 4 keys under prefix \"app.\".\n"),
        "{}",
        run.stdout
    );
    // Named after the bucket and the prefix, a valid object name.
    let name = run
        .stdout
        .split("kind: KeyValueEntrySet\nmetadata:\n  name: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("the set's name");
    assert!(name.starts_with("cfg.app-"), "{name}");
    assert!(
        run.stderr.contains(&format!(
            "exported bucket \"cfg\": 4 keys under prefix \"app.\" as KeyValueEntrySet \"{name}\""
        )),
        "{}",
        run.stderr
    );

    // A prefix inside a token takes every key that starts with it.
    let run = export(&["--prefix", "app"]).await;
    assert_eq!(
        item_keys(&run.stdout),
        [
            "\".json\"",
            "\".mode\"",
            "\".nested.x\"",
            "\".spaced\"",
            "le"
        ]
    );
    // With --keys, the keys both select.
    let run = export(&["--prefix", "app", "--keys", "app.*", "apple"]).await;
    assert_eq!(
        item_keys(&run.stdout),
        ["\".json\"", "\".mode\"", "\".spaced\"", "le"]
    );
    // Nothing under the prefix: the bucket alone, and it says so.
    let run = export(&["--prefix", "nothing/"]).await;
    assert!(!run.stdout.contains("KeyValueEntrySet"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("exported bucket \"cfg\": 0 keys under prefix \"nothing/\""),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_prefix_without_sets_or_one_no_set_accepts_is_refused_before_anything_is_read() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    seed(&js, "cfg", &mixed_keys()).await;
    for (args, says) in [
        (
            &["--prefix", "app."][..],
            "--prefix needs --sets: it becomes the KeyValueEntrySet's keyPrefix",
        ),
        (
            &["--sets", "--prefix", ""],
            "--prefix \"\" cannot be a keyPrefix",
        ),
        (&["--sets", "--prefix", ".app"], "may not start with '.'"),
        (&["--sets", "--prefix", "a..b"], "nor contain '..'"),
        (
            &["--sets", "--prefix", "app.>"],
            "letters, digits and -/_=.",
        ),
    ] {
        let mut all = vec!["export", "--bucket", "cfg"];
        all.extend(args);
        let run = kvop(&server.url(), &all).await;
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}

#[tokio::test]
async fn ten_thousand_keys_are_one_set_that_adopts_them_and_one_more_is_refused_writing_nothing() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let many: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| (format!("k{i:05}"), format!("value {i}").into_bytes()))
        .collect();
    seed(&js, "big", &many).await;
    let out = tempfile::tempdir().expect("dir");
    let args = [
        "export",
        "--bucket",
        "big",
        "--sets",
        "-o",
        path(out.path()),
    ];
    let run = kvop(&server.url(), &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let text = &files(out.path())["big.yaml"];
    assert_eq!(item_keys(text).len(), 10_000);
    assert!(text.len() < 500_000, "one small file: {} bytes", text.len());
    // Adopting the bucket through the set plans no key and writes none.
    let before = sequences(&js, &["big"]).await;
    take_claims(&server.url(), path(out.path())).await;
    let again = kvop(
        &server.url(),
        &["reconcile", "-f", path(out.path()), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(again.code, 0, "the export must plan nothing: {again:?}");
    assert_eq!(sequences(&js, &["big"]).await, before, "zero writes");

    put_all(&js, "big", &[("k10000".to_string(), b"one more".to_vec())]).await;
    let dir = out.path().join("refused");
    let args = ["export", "--bucket", "big", "--sets", "-o", path(&dir)];
    let run = kvop(&server.url(), &args).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "bucket \"big\" has 10001 keys to export, more than the 10000 a KeyValueEntrySet may hold"
        ),
        "{}",
        run.stderr
    );
    assert!(!dir.exists(), "nothing written");
    // Part of them still fits in one set.
    let args = ["export", "--bucket", "big", "--sets", "--prefix", "k01"];
    let run = kvop(&server.url(), &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(item_keys(&run.stdout).len(), 1_000);
}

#[tokio::test]
async fn an_exported_set_reconciles_to_nothing_on_its_server_and_recreates_the_keys_elsewhere() {
    let origin = NatsServer::start();
    let js = origin.jetstream().await;
    seed(&js, "cfg", &mixed_keys()).await;
    let buckets = ["cfg"];
    let out = tempfile::tempdir().expect("dir");
    for (dir, extra) in [
        ("whole", &["--json-values"][..]),
        ("prefixed", &["--prefix", "app."]),
        // Inside a token: the items' keys start with '.' or are a token's tail.
        ("inside", &["--prefix", "app"]),
    ] {
        let dir = out.path().join(dir);
        let mut args = vec!["export", "--bucket", "cfg", "--sets", "-o", path(&dir)];
        args.extend(extra);
        let run = kvop(&origin.url(), &args).await;
        assert_eq!(run.code, 0, "{run:?}");

        // The same server: the first export's first run takes the bucket over (its
        // claim, which the second export's finds held) and plans no key; then nothing to
        // plan, nothing written.
        let before = sequences(&js, &buckets).await;
        if dir.ends_with("whole") {
            take_claims(&origin.url(), path(&dir)).await;
        }
        let again = kvop(
            &origin.url(),
            &["reconcile", "-f", path(&dir), "--detailed-exitcode"],
        )
        .await;
        assert_eq!(
            again.code, 0,
            "{dir:?}: the export must plan nothing: {again:?}"
        );
        assert_eq!(
            sequences(&js, &buckets).await,
            before,
            "{dir:?}: zero writes"
        );

        // An empty server: the same live keys, byte for byte.
        let empty = NatsServer::start();
        let applied = kvop(&empty.url(), &["reconcile", "-f", path(&dir)]).await;
        assert_eq!(applied.code, 0, "{dir:?}: {applied:?}");
        let copy = live_keys(&empty.jetstream().await, "cfg").await;
        let mut want = live_keys(&js, "cfg").await;
        if let [.., "--prefix", prefix] = extra {
            want.retain(|key, _| key.starts_with(prefix));
        }
        assert!(copy == want, "{dir:?}: {copy:?}");
    }
}
