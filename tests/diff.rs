//! `kvop diff` against a real nats-server: old → new for bucket fields and keys (text
//! as lines, JSON pretty-printed, binary as hex), the same in `-o json`, diff(1)'s exit
//! codes, and nothing written, whatever the outcome.

mod support;

use serde_json::Value;
use support::{NatsServer, kvop, manifests, path};

const BEFORE: &str = r#"apiVersion: kvop.dev/v1alpha1
kind: KeyValueBucket
metadata: {name: flags}
spec: {history: 1}
---
apiVersion: kvop.dev/v1alpha1
kind: KeyValueEntry
metadata: {name: banner}
spec: {bucketRef: {name: flags}, key: banner, value: "Free shipping\nall week\nfor members"}
---
apiVersion: kvop.dev/v1alpha1
kind: KeyValueEntry
metadata: {name: limits}
spec: {bucketRef: {name: flags}, key: limits, jsonValue: {rate: 100, burst: 5}}
---
apiVersion: kvop.dev/v1alpha1
kind: KeyValueEntry
metadata: {name: gone}
spec: {bucketRef: {name: flags}, key: gone, value: "bye"}
"#;

/// `BEFORE` with a bucket field, a text line and a JSON field changed, a binary key
/// added and `gone` removed.
fn after() -> String {
    let changed = BEFORE
        .replace("history: 1", "history: 5")
        .replace("all week", "all month")
        .replace("rate: 100", "rate: 200");
    let kept = changed
        .split("---\napiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata: {name: gone}")
        .next()
        .expect("documents")
        .to_string();
    kept + "---\napiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata: {name: logo}\nspec: {bucketRef: {name: flags}, key: logo.bin, binaryValue: AAH/}\n"
}

async fn last_sequence(server: &NatsServer) -> u64 {
    let js = server.jetstream().await;
    let mut stream = js.get_stream("KV_flags").await.expect("stream");
    stream.info().await.expect("info").state.last_sequence
}

#[tokio::test]
async fn a_diff_shows_old_and_new_of_every_change_and_writes_nothing() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = manifests(&[("flags.yaml", BEFORE)]);
    assert_eq!(kvop(&url, &["reconcile", "-f", path(&dir)]).await.code, 0);

    let same = kvop(&url, &["diff", "-f", path(&dir)]).await;
    assert_eq!(same.code, 0, "{same:?}");
    assert!(same.stdout.contains("No differences"), "{}", same.stdout);

    let sequence = last_sequence(&server).await;
    std::fs::write(dir.path().join("flags.yaml"), after()).expect("edit");
    let text = kvop(&url, &["diff", "-f", path(&dir), "--prune"]).await;
    assert_eq!(text.code, 1, "{text:?}");
    for expected in [
        "~ bucket flags\n    history: 1 → 5\n",
        "~ flags/banner\n        Free shipping\n    -   all week\n    +   all month\n        for members\n",
        "~ flags/limits (JSON, pretty-printed)\n        {\n          \"burst\": 5,\n    -     \"rate\": 100\n    +     \"rate\": 200\n        }\n",
        "+ flags/logo.bin (binary, hex)\n    +   0000  00 01 ff",
        "- flags/gone\n    -   bye\n",
        "5 differences.",
    ] {
        assert!(
            text.stdout.contains(expected),
            "{expected:?} in:\n{}",
            text.stdout
        );
    }

    let json = kvop(&url, &["diff", "-f", path(&dir), "-o", "json"]).await;
    assert_eq!(json.code, 1, "{json:?}");
    let document: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(document["differences"], 4, "without --prune, gone stays");
    let bucket = &document["buckets"][0];
    assert_eq!(
        bucket["fields"][0],
        serde_json::json!({"field": "history", "from": "1", "to": "5"})
    );
    let key = |name: &str| {
        bucket["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|key| key["key"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {bucket}"))
    };
    assert_eq!(key("banner")["old"], "Free shipping\nall week\nfor members");
    assert_eq!(key("limits")["format"], "json");
    assert_eq!(
        (
            key("logo.bin")["format"].clone(),
            key("logo.bin")["new"].clone()
        ),
        (Value::from("binary"), Value::from("AAH/"))
    );

    // The same diff from reconcile's dry run, with reconcile's exit code.
    let dry = kvop(
        &url,
        &["reconcile", "-f", path(&dir), "--dry-run", "--diff"],
    )
    .await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("    +   all month"), "{}", dry.stdout);
    assert_eq!(
        last_sequence(&server).await,
        sequence,
        "nothing was written"
    );
}

#[tokio::test]
async fn a_diff_that_cannot_be_made_exits_2_and_writes_nothing() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = manifests(&[("flags.yaml", BEFORE)]);
    assert_eq!(kvop(&url, &["reconcile", "-f", path(&dir)]).await.code, 0);
    let sequence = last_sequence(&server).await;

    let invalid = manifests(&[("bad.yaml", &BEFORE.replace("key: banner", "key: \"..\""))]);
    let refused = kvop(&url, &["diff", "-f", path(&invalid)]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("bad.yaml:"), "{}", refused.stderr);

    let unreachable = kvop("nats://127.0.0.1:1", &["diff", "-f", path(&dir)]).await;
    assert_eq!(unreachable.code, 2, "{unreachable:?}");
    let usage = kvop(&url, &["diff"]).await;
    assert_eq!(usage.code, 2, "a usage error is trouble too: {usage:?}");
    assert_eq!(
        last_sequence(&server).await,
        sequence,
        "nothing was written"
    );
}
