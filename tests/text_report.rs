//! The text report: of a large run, a summary per bucket and the first keys of each
//! action (every key with `-v`), and a progress line while loading, on a terminal only;
//! the words for a key another client wrote.

mod support;

use support::{NatsServer, bucket, entry, free_port, kvop, kvop_on_a_terminal, manifests, path};

/// One bucket and `count` entries in one file.
fn many_keys(count: usize) -> tempfile::TempDir {
    let mut docs = vec![bucket("b", "")];
    docs.extend((0..count).map(|i| entry(&format!("e{i}"), "b", &format!("k{i}"), "v", "")));
    manifests(&[("m.yaml", &docs.join("---\n"))])
}

#[tokio::test]
async fn a_first_run_of_many_keys_prints_counts_and_the_first_keys_not_a_line_per_key() {
    let server = NatsServer::start();
    let dir = many_keys(2_000);
    let run = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.lines().count() < 30, "{}", run.stdout);
    for line in [
        "bucket b (",
        "    keys: 2000 keys to create\n",
        "    + key k0: create (1 byte)\n",
        "    + key k4: create (1 byte)\n",
        "    + ... and 1995 more keys to create (-v lists every key)\n",
        "Plan: 1 bucket to create, 2000 keys to create.\n",
        "Applied: 2001 writes (keys: 2000 created).\n",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in:\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("key k5:"), "{}", run.stdout);

    // Unchanged keys are counted; -v lists every one.
    let again = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert!(
        again.stdout.contains("    keys: 2000 keys unchanged\n"),
        "{}",
        again.stdout
    );
    assert!(!again.stdout.contains("= key"), "{}", again.stdout);
    let verbose = kvop(&server.url(), &["reconcile", "-f", path(&dir), "-v"]).await;
    assert_eq!(verbose.code, 0, "{verbose:?}");
    assert_eq!(verbose.stdout.matches("= key k").count(), 2_000);
}

#[tokio::test]
async fn an_adopted_key_edited_in_its_manifest_is_an_update_not_a_restore() {
    // A key another client wrote, exported and adopted: kvop never wrote it, so an edit
    // of its value is not drift being restored.
    let server = NatsServer::start();
    let js = server.jetstream().await;
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: "cfg".into(),
        ..Default::default()
    })
    .await
    .expect("create");
    let revision = js
        .get_key_value("cfg")
        .await
        .expect("bucket")
        .put("mode", "old".into())
        .await
        .expect("put");
    let exported = kvop(&server.url(), &["export", "--bucket", "cfg"]).await;
    assert_eq!(exported.code, 0, "{exported:?}");
    assert!(
        exported.stdout.contains("  value: old\n"),
        "{}",
        exported.stdout
    );
    let dir = manifests(&[("cfg.yaml", &exported.stdout)]);
    let adopted = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(adopted.code, 0, "{adopted:?}");

    let file = dir.path().join("cfg.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("  value: old\n", "  value: new\n")).expect("write");
    let run = kvop(&server.url(), &["reconcile", "-f", path(&dir)]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "~ key mode: update, overwriting revision {revision} written by another client (3 bytes)\n"
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("restore"), "{}", run.stdout);
}

#[tokio::test]
async fn loading_large_manifests_shows_a_progress_line_on_a_terminal_only() {
    // Over 1 MB of manifests; the server is unreachable, so the run ends after loading.
    let dir = many_keys(10_000);
    let url = format!("nats://127.0.0.1:{}", free_port());
    let args = ["reconcile", "-f", path(&dir), "--dry-run"];
    let screen = kvop_on_a_terminal(&url, &args);
    let progress = screen
        .find("loading manifests: ")
        .unwrap_or_else(|| panic!("no progress line on the terminal: {screen:?}"));
    let error = screen.find("error: cannot reach NATS").expect("the error");
    assert!(
        screen[progress..error].contains("\r\x1b[2K"),
        "the line is cleared before the error: {screen:?}"
    );

    let piped = kvop(&url, &args).await;
    assert_eq!(piped.code, 1, "{piped:?}");
    assert!(
        !piped.stderr.contains("loading") && !piped.stderr.contains('\r'),
        "no progress line when stderr is not a terminal: {:?}",
        piped.stderr
    );
}

#[tokio::test]
async fn small_manifests_show_no_progress_line_even_on_a_terminal() {
    let dir = many_keys(3);
    let url = format!("nats://127.0.0.1:{}", free_port());
    let screen = kvop_on_a_terminal(&url, &["reconcile", "-f", path(&dir)]);
    assert!(screen.contains("error: cannot reach NATS"), "{screen:?}");
    assert!(!screen.contains("loading manifests"), "{screen:?}");
}
