//! `KeyValueEntrySet` from files, against a real nats-server: one set's inline items,
//! ConfigMap and Secret keys reach NATS under its prefix; a key the set no longer
//! declares is deleted, a foreign key under the prefix kept (`Owned`) or deleted once a
//! plan showed it (`Exclusive`); collisions and an emptied set are refused before
//! anything is written.

mod support;

use std::time::Instant;

use support::watching::{Watching, save_atomically, wait_value};
use support::{NatsServer, kv_get, kvop, manifests, marked_sensitive, path};

/// A KeyValueEntry in namespace `shop`.
fn entry(name: &str, key: &str, value: &str) -> String {
    format!(
        "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  bucketRef: {{name: flags}}\n  key: {key}\n  value: {value}\n"
    )
}

/// A Secret's value: it reaches NATS and is never printed.
const TOKEN: &str = "tok-58201937";

fn bucket() -> &'static str {
    "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueBucket\nmetadata: {name: flags, namespace: shop}\nspec: {history: 3}\n"
}

/// The set `checkout-flags` under `checkout/`, with `prune` and the ConfigMap's `data`.
fn set(prune: &str, config_data: &str) -> String {
    format!(
        r#"{bucket}---
apiVersion: kvop.dev/v1alpha1
kind: KeyValueEntrySet
metadata: {{name: checkout-flags, namespace: shop}}
spec:
  bucketRef: {{name: flags}}
  keyPrefix: checkout/
  prune: {prune}
  entries:
    - key: banner
      value: "Free shipping"
    - key: limits
      jsonValue: {{rate: 100, burst: 5}}
    - key: logo.bin
      binaryValue: AAH/
  from:
    - configMapRef: {{name: checkout-config}}
    - secretRef: {{name: checkout-secrets}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: checkout-config, namespace: shop}}
data: {config_data}
---
apiVersion: v1
kind: Secret
metadata: {{name: checkout-secrets, namespace: shop}}
stringData: {{token: {TOKEN}}}
"#,
        bucket = bucket()
    )
}

async fn put_foreign(server: &NatsServer, key: &str, value: &'static str) {
    let store = server
        .jetstream()
        .await
        .get_key_value("flags")
        .await
        .expect("bucket");
    store.put(key, value.into()).await.expect("foreign put");
}

#[tokio::test]
async fn a_sets_items_configmap_and_secret_reach_nats_under_its_prefix_and_a_second_run_writes_nothing()
 {
    let server = NatsServer::start();
    let url = server.url();
    let dir = manifests(&[("shop.yaml", &set("Owned", "{color: blue, size: large}"))]);
    let first = kvop(&url, &["reconcile", "-f", path(&dir), "-v"]).await;
    assert_eq!(first.code, 0, "{first:?}");
    let js = server.jetstream().await;
    for (key, value) in [
        ("checkout/banner", &b"Free shipping"[..]),
        ("checkout/limits", &br#"{"burst":5,"rate":100}"#[..]),
        ("checkout/logo.bin", &[0u8, 1, 0xff][..]),
        ("checkout/color", &b"blue"[..]),
        ("checkout/size", &b"large"[..]),
        ("checkout/token", TOKEN.as_bytes()),
    ] {
        assert_eq!(
            kv_get(&js, "flags", key).await.as_deref(),
            Some(value),
            "{key}"
        );
    }
    assert!(marked_sensitive(&js, "flags", "checkout/token").await);
    assert!(!marked_sensitive(&js, "flags", "checkout/color").await);
    let written = js
        .get_stream("KV_flags")
        .await
        .expect("stream")
        .get_last_raw_message_by_subject("$KV.flags.checkout/color")
        .await
        .expect("last message");
    let owner = written
        .headers
        .get("Kvop-Owner")
        .map(|value| value.as_str().to_string());
    assert_eq!(
        owner.as_deref(),
        Some("shop/KeyValueEntrySet/checkout-flags"),
        "a set's key names the set, never an entry of the same name"
    );

    let second = kvop(&url, &["reconcile", "-f", path(&dir), "-o", "json"]).await;
    assert_eq!(second.code, 0, "{second:?}");
    let report = second.json();
    assert_eq!(report["result"]["writes"], 0, "{report}");
    let said = format!(
        "{}{}{}{}",
        first.stdout, first.stderr, second.stdout, second.stderr
    );
    assert!(
        !said.contains(TOKEN),
        "the Secret's value was printed:\n{said}"
    );
}

#[tokio::test]
async fn a_key_removed_from_an_owned_set_is_deleted_and_a_foreign_key_under_its_prefix_is_kept() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = manifests(&[("shop.yaml", &set("Owned", "{color: blue, size: large}"))]);
    assert_eq!(kvop(&url, &["reconcile", "-f", path(&dir)]).await.code, 0);
    put_foreign(&server, "checkout/by-hand", "set by an operator at 3am").await;

    std::fs::write(dir.path().join("shop.yaml"), set("Owned", "{color: blue}")).expect("edit");
    let run = kvop(&url, &["reconcile", "-f", path(&dir), "-v"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "- key checkout/size: delete, no longer declared (revision 5, written for shop/KeyValueEntrySet/checkout-flags)"
        ),
        "{}",
        run.stdout
    );
    let js = server.jetstream().await;
    assert_eq!(kv_get(&js, "flags", "checkout/size").await, None);
    assert_eq!(
        kv_get(&js, "flags", "checkout/by-hand").await.as_deref(),
        Some(&b"set by an operator at 3am"[..]),
        "Owned never touches a key the set did not write"
    );
}

#[tokio::test]
async fn an_exclusive_set_shows_the_foreign_keys_under_its_prefix_before_it_deletes_them() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = manifests(&[("shop.yaml", &set("Exclusive", "{color: blue}"))]);
    assert_eq!(kvop(&url, &["reconcile", "-f", path(&dir)]).await.code, 0);
    put_foreign(&server, "checkout/by-hand", "stray").await;
    put_foreign(&server, "elsewhere/by-hand", "not under the prefix").await;
    // Another kvop (another manager) under the prefix holds a claim: never fought.
    let other = manifests(&[(
        "other.yaml",
        &format!(
            "{}---\n{}",
            bucket().replace("{history: 3}", "{history: 3, managementPolicy: Observe}"),
            entry("held", "checkout/held", "theirs")
        ),
    )]);
    let held = support::kvop_with_env(
        &url,
        &["reconcile", "-f", path(&other)],
        &[("KVOP_MANAGER", "team-b")],
    )
    .await;
    assert_eq!(held.code, 0, "{held:?}");

    let plan = kvop(&url, &["reconcile", "-f", path(&dir), "--dry-run", "-v"]).await;
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains("- key checkout/by-hand: delete, not declared under the exclusive prefix of shop/KeyValueEntrySet/checkout-flags"),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("elsewhere/by-hand"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("! key checkout/held: conflict"),
        "{}",
        plan.stdout
    );
    let diff = kvop(&url, &["diff", "-f", path(&dir)]).await;
    assert!(
        diff.stdout.contains("- flags/checkout/by-hand"),
        "{}",
        diff.stdout
    );
    let js = server.jetstream().await;
    assert!(
        kv_get(&js, "flags", "checkout/by-hand").await.is_some(),
        "a dry run and a diff write nothing"
    );

    let run = kvop(&url, &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(kv_get(&js, "flags", "checkout/by-hand").await, None);
    assert!(kv_get(&js, "flags", "elsewhere/by-hand").await.is_some());
    assert_eq!(
        kv_get(&js, "flags", "checkout/held").await.as_deref(),
        Some(&b"theirs"[..])
    );
}

#[tokio::test]
async fn collisions_inside_a_set_and_with_an_entry_are_refused_before_anything_is_written() {
    let server = NatsServer::start();
    let url = server.url();
    // The ConfigMap gives `banner` as an item does.
    let inside = manifests(&[("shop.yaml", &set("Owned", "{banner: other}"))]);
    let run = kvop(&url, &["reconcile", "-f", path(&inside)]).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("shop.yaml:")
            && run.stderr.contains("spec.from[0].configMapRef: key \"checkout/banner\" comes from both spec.entries[0] and ConfigMap checkout-config (key \"banner\")"),
        "{}",
        run.stderr
    );
    // An entry declares one of the set's keys.
    let with_entry = manifests(&[(
        "shop.yaml",
        &format!(
            "{}---\n{}",
            set("Owned", "{color: blue}"),
            entry("banner", "checkout/banner", "mine")
        ),
    )]);
    let run = kvop(&url, &["reconcile", "-f", path(&with_entry)]).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("key \"checkout/banner\" of bucket \"flags\" is declared twice"),
        "{}",
        run.stderr
    );
    let streams = futures::StreamExt::count(server.jetstream().await.stream_names()).await;
    assert_eq!(streams, 0, "nothing may be written after a refusal");
}

#[tokio::test]
async fn an_emptied_set_deletes_nothing_unless_annotated_to_allow_it() {
    let server = NatsServer::start();
    let url = server.url();
    let full = r#"---
apiVersion: kvop.dev/v1alpha1
kind: KeyValueEntrySet
metadata: {name: from-config, namespace: shop ANNOTATIONS}
spec:
  bucketRef: {name: flags}
  from: [{configMapRef: {name: settings}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
"#;
    let files = |data: &str, annotations: &str| {
        format!(
            "{}{}{data}\n",
            bucket(),
            full.replace(" ANNOTATIONS", annotations)
        )
    };
    let dir = manifests(&[("shop.yaml", &files("data: {a: '1', b: '2'}", ""))]);
    assert_eq!(kvop(&url, &["reconcile", "-f", path(&dir)]).await.code, 0);

    std::fs::write(dir.path().join("shop.yaml"), files("data: {}", "")).expect("empty");
    let refused = kvop(&url, &["reconcile", "-f", path(&dir)]).await;
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains(
            "refusing to let shop/KeyValueEntrySet/from-config delete 2 keys while it declares none"
        ),
        "{}",
        refused.stderr
    );
    let js = server.jetstream().await;
    assert!(kv_get(&js, "flags", "a").await.is_some());

    std::fs::write(
        dir.path().join("shop.yaml"),
        files(
            "data: {}",
            ", annotations: {kvop.dev/allow-empty-prune: \"true\"}",
        ),
    )
    .expect("annotate");
    let allowed = kvop(&url, &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(allowed.code, 0, "{allowed:?}");
    assert_eq!(kv_get(&js, "flags", "a").await, None);
    assert_eq!(kv_get(&js, "flags", "b").await, None);
}

#[tokio::test]
async fn while_watching_a_configmap_edit_reaches_nats_and_a_key_it_drops_is_deleted() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = manifests(&[("shop.yaml", &set("Owned", "{color: blue, size: large}"))]);
    let file = dir.path().join("shop.yaml");
    let watch = Watching::start(&server.url(), &[dir.path()], &[]);
    wait_value(&watch, &js, "flags", "checkout/color", Some("blue")).await;
    wait_value(&watch, &js, "flags", "checkout/size", Some("large")).await;

    let saved = Instant::now();
    save_atomically(&file, &set("Owned", "{color: green}"));
    wait_value(&watch, &js, "flags", "checkout/color", Some("green")).await;
    wait_value(&watch, &js, "flags", "checkout/size", None).await;
    // A measurement, not a bound: the watch's debounce and one pass over one bucket.
    println!(
        "a ConfigMap edit reached NATS {} ms after the save",
        saved.elapsed().as_millis()
    );
    assert_eq!(
        kv_get(&js, "flags", "checkout/banner").await.as_deref(),
        Some(&b"Free shipping"[..]),
        "the set's other keys stay"
    );
    assert_eq!(watch.stop().await, 0);
}
