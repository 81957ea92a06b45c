//! Standalone `valueFrom` against a real nats-server: an entry reads a key of a
//! ConfigMap or Secret manifest of the same file set, as the operator reads one from the
//! cluster; a Secret's value reaches NATS but is never printed, and `kvop diff` masks it
//! on both sides while a ConfigMap's value is shown.

mod support;

use serde_json::Value;
use support::{NatsServer, kv_get, kvop, manifests, marked_sensitive, path};

/// The PIN a Secret holds, and the one it is changed to: neither may ever be printed.
const PIN: &str = "493817";
const NEW_PIN: &str = "905162";

fn files(pin_base64: &str, banner: &str) -> String {
    format!(
        r#"apiVersion: kvop.dev/v1alpha1
kind: KeyValueBucket
metadata: {{name: flags, namespace: shop}}
spec: {{history: 1}}
---
apiVersion: kvop.dev/v1alpha1
kind: KeyValueEntry
metadata: {{name: pin, namespace: shop}}
spec:
  bucketRef: {{name: flags}}
  key: pin
  valueFrom: {{secretKeyRef: {{name: door, key: pin}}}}
---
apiVersion: kvop.dev/v1alpha1
kind: KeyValueEntry
metadata: {{name: token, namespace: shop}}
spec:
  bucketRef: {{name: flags}}
  key: token
  valueFrom: {{secretKeyRef: {{name: door, key: token}}}}
---
apiVersion: kvop.dev/v1alpha1
kind: KeyValueEntry
metadata: {{name: banner, namespace: shop}}
spec:
  bucketRef: {{name: flags}}
  key: banner
  valueFrom: {{configMapKeyRef: {{name: texts, key: banner}}}}
---
apiVersion: kvop.dev/v1alpha1
kind: KeyValueEntry
metadata: {{name: logo, namespace: shop}}
spec:
  bucketRef: {{name: flags}}
  key: logo.bin
  valueFrom: {{configMapKeyRef: {{name: texts, key: logo}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: door, namespace: shop}}
data: {{pin: {pin_base64}}}
stringData: {{token: s3cr3t-token}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: texts, namespace: shop}}
data: {{banner: "{banner}"}}
binaryData: {{logo: AAH/}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: unrelated, namespace: shop}}
data: {{x: y}}
"#
    )
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn values_from_the_files_configmaps_and_secrets_reach_nats_and_secrets_are_never_printed() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = manifests(&[("shop.yaml", &files(&base64(PIN), "Free shipping"))]);

    let mut said = String::new();
    for args in [
        vec!["reconcile", "-f", path(&dir), "--dry-run", "-v"],
        vec!["reconcile", "-f", path(&dir), "-v"],
        vec!["reconcile", "-f", path(&dir), "-o", "json"],
    ] {
        let run = kvop(&url, &args).await;
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        said.push_str(&run.stdout);
        said.push_str(&run.stderr);
    }
    let js = server.jetstream().await;
    let value = |key: &'static str| {
        let js = js.clone();
        async move { kv_get(&js, "flags", key).await }
    };
    assert_eq!(value("pin").await.as_deref(), Some(PIN.as_bytes()));
    assert_eq!(
        value("token").await.as_deref(),
        Some(&b"s3cr3t-token"[..]),
        "stringData"
    );
    assert_eq!(
        value("banner").await.as_deref(),
        Some(&b"Free shipping"[..])
    );
    assert_eq!(
        value("logo.bin").await.as_deref(),
        Some(&[0u8, 1, 0xff][..]),
        "binaryData"
    );
    for secret in [PIN, "s3cr3t-token", &base64(PIN)] {
        assert!(!said.contains(secret), "{secret:?} was printed:\n{said}");
    }

    // The ConfigMap no entry reads is said to be skipped, like any other kind.
    let report = kvop(&url, &["reconcile", "-f", path(&dir), "-o", "json"]).await;
    let document: Value = serde_json::from_str(&report.stdout).expect("one JSON document");
    let skipped = document["skipped"].to_string();
    assert!(
        skipped.contains("ConfigMap shop/unrelated (no entry or set reads it)")
            && !skipped.contains("texts"),
        "{skipped}"
    );
}

#[tokio::test]
async fn a_diff_masks_a_secrets_value_on_both_sides_and_shows_a_configmaps() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = manifests(&[("shop.yaml", &files(&base64(PIN), "Free shipping"))]);
    assert_eq!(kvop(&url, &["reconcile", "-f", path(&dir)]).await.code, 0);
    std::fs::write(
        dir.path().join("shop.yaml"),
        files(&base64(NEW_PIN), "Free returns"),
    )
    .expect("edit");

    let text = kvop(&url, &["diff", "-f", path(&dir)]).await;
    assert_eq!(text.code, 1, "{text:?}");
    for expected in [
        "~ flags/pin (from a Secret, masked)\n    -   ***\n    +   ***\n",
        "~ flags/banner\n    -   Free shipping\n    +   Free returns\n",
        "2 differences.",
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
    let keys = document["buckets"][0]["keys"].as_array().expect("keys");
    let pin = keys.iter().find(|key| key["key"] == "pin").expect("pin");
    assert_eq!(
        (&pin["format"], &pin["old"], &pin["new"]),
        (
            &Value::from("masked"),
            &Value::from("***"),
            &Value::from("***")
        )
    );
    let dry = kvop(
        &url,
        &["reconcile", "-f", path(&dir), "--dry-run", "--diff", "-v"],
    )
    .await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("flags/pin (from a Secret, masked)"));
    for run in [&text, &json, &dry] {
        let said = format!("{}{}", run.stdout, run.stderr);
        for secret in [PIN, NEW_PIN] {
            assert!(!said.contains(secret), "{secret:?} was printed:\n{said}");
        }
    }
}

#[tokio::test]
async fn a_value_written_from_a_secret_stays_masked_after_its_declaration_is_gone() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = manifests(&[("shop.yaml", &files(&base64(PIN), "Free shipping"))]);
    assert_eq!(kvop(&url, &["reconcile", "-f", path(&dir)]).await.code, 0);
    assert!(
        marked_sensitive(&server.jetstream().await, "flags", "pin").await,
        "the Secret's value is marked"
    );
    assert!(
        !marked_sensitive(&server.jetstream().await, "flags", "banner").await,
        "a ConfigMap's is not"
    );

    // The pin entry leaves the files: pruning it would show its old value, the PIN.
    let without_pin = files(&base64(PIN), "Free shipping").replace(
        "  key: pin\n  valueFrom: {secretKeyRef: {name: door, key: pin}}",
        "  key: pin-moved\n  value: elsewhere",
    );
    std::fs::write(dir.path().join("shop.yaml"), without_pin).expect("edit");
    for args in [
        vec!["diff", "-f", path(&dir), "--prune"],
        vec!["diff", "-f", path(&dir), "--prune", "-o", "json"],
    ] {
        let run = kvop(&url, &args).await;
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(!said.contains(PIN), "the PIN was printed:\n{said}");
        assert!(
            said.contains("- flags/pin (from a Secret, masked)\n    -   ***\n")
                || said.contains("\"format\": \"masked\""),
            "{said}"
        );
    }
}
