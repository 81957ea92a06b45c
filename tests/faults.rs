//! Faults injected for real during `kvop reconcile`: the server paused (SIGSTOP) or
//! killed (SIGKILL) mid-apply. Nothing is written twice, the run reports what happened,
//! and a re-run converges and is then a no-op.

mod support;

use std::time::Duration;

use support::{NatsServer, bucket, entry, kvop, manifests};

const KEYS: usize = 3_000;

fn big_manifests() -> tempfile::TempDir {
    let mut docs = vec![bucket("b", "  history: 5\n")];
    docs.extend((0..KEYS).map(|i| {
        entry(
            &format!("e{i}"),
            "b",
            &format!("k{i}"),
            &format!("value-{i}"),
            "",
        )
    }));
    manifests(&[("m.yaml", &docs.join("---\n"))])
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Per key, the number of messages kvop wrote: more than one means a duplicate write.
async fn writes_per_key(server: &NatsServer) -> Vec<usize> {
    let js = server.jetstream().await;
    let store = js.get_key_value("b").await.expect("bucket");
    let mut counts = Vec::with_capacity(KEYS);
    for i in [0, KEYS / 3, KEYS / 2, KEYS - 1] {
        use futures::StreamExt;
        counts.push(
            store
                .history(format!("k{i}"))
                .await
                .expect("history")
                .count()
                .await,
        );
    }
    counts
}

#[tokio::test]
async fn a_server_paused_mid_apply_resumes_without_duplicates() {
    let server = NatsServer::start();
    let dir = big_manifests();
    let path = dir.path().to_str().expect("path").to_string();
    let pid = server.pid().expect("server pid");
    let url = server.url();
    let run = tokio::spawn(async move { kvop(&url, &["reconcile", "-f", &path]).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    signal(pid, "STOP");
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal(pid, "CONT");
    let first = run.await.expect("run");
    assert!(first.code == 0 || first.code == 1, "{first:?}");
    let again = kvop(
        &server.url(),
        &["reconcile", "-f", dir.path().to_str().expect("path")],
    )
    .await;
    assert_eq!(again.code, 0, "a re-run converges: {again:?}");
    assert!(
        writes_per_key(&server)
            .await
            .iter()
            .all(|count| *count == 1),
        "every key written exactly once"
    );
    let quiet = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            dir.path().to_str().expect("path"),
            "--detailed-exitcode",
        ],
    )
    .await;
    assert_eq!(quiet.code, 0, "then nothing to change: {quiet:?}");
}

#[tokio::test]
async fn a_server_killed_mid_apply_fails_clearly_and_a_rerun_converges() {
    let mut server = NatsServer::start();
    let dir = big_manifests();
    let path = dir.path().to_str().expect("path").to_string();
    let pid = server.pid().expect("server pid");
    let url = server.url();
    let run = tokio::spawn(async move { kvop(&url, &["reconcile", "-f", &path]).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    signal(pid, "KILL");
    let first = run.await.expect("run");
    // Killed before, during or after the writes: either it finished, or it says so.
    if first.code != 0 {
        assert_eq!(first.code, 1, "{first:?}");
        assert!(
            first.stderr.contains("error"),
            "the failure is reported: {}",
            first.stderr
        );
    }
    server.restart();
    let again = kvop(
        &server.url(),
        &["reconcile", "-f", dir.path().to_str().expect("path")],
    )
    .await;
    assert_eq!(again.code, 0, "a re-run converges: {again:?}");
    let quiet = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            dir.path().to_str().expect("path"),
            "--detailed-exitcode",
        ],
    )
    .await;
    assert_eq!(quiet.code, 0, "then nothing to change: {quiet:?}");
    assert!(
        writes_per_key(&server)
            .await
            .iter()
            .all(|count| *count == 1),
        "no key written twice"
    );
}

#[tokio::test]
async fn a_stream_leader_killed_mid_apply_is_ridden_out_with_capped_retries() {
    let mut cluster = support::NatsCluster::start();
    cluster.wait_ready().await;
    let mut docs = vec![bucket("b", "  history: 5\n  replicas: 3\n")];
    docs.extend((0..KEYS).map(|i| {
        entry(
            &format!("e{i}"),
            "b",
            &format!("k{i}"),
            &format!("value-{i}"),
            "",
        )
    }));
    let dir = manifests(&[("m.yaml", &docs.join("---\n"))]);
    // Create the bucket first, so the leader to kill is known.
    let only_bucket = manifests(&[("m.yaml", &docs[0])]);
    assert_eq!(
        kvop(
            &cluster.urls(),
            &[
                "reconcile",
                "-f",
                only_bucket.path().to_str().expect("path")
            ]
        )
        .await
        .code,
        0
    );
    let js = cluster.nodes[0].jetstream().await;
    let leader = js
        .get_stream("KV_b")
        .await
        .expect("stream")
        .cached_info()
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("leader");
    let index: usize = leader
        .trim_start_matches('n')
        .parse()
        .expect("node name n<index>");
    let pid = cluster.nodes[index].pid().expect("pid");
    let path = dir.path().to_str().expect("path").to_string();
    let urls = cluster.urls();
    let run =
        tokio::spawn(async move { kvop(&urls, &["reconcile", "-f", &path, "-o", "json"]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(pid, "KILL");
    let first = run.await.expect("run");
    let report = first.json();
    assert_eq!(
        first.code, 0,
        "the run rides out the election: {}",
        first.stderr
    );
    let retries = report["result"]["retries"].as_u64().unwrap_or(0);
    assert!(
        retries <= (KEYS as u64) * 5,
        "retries are bounded per key: {retries}"
    );
    cluster.nodes[index].restart();
    let survivor = if index == 0 { 1 } else { 0 };
    let store = cluster.nodes[survivor]
        .jetstream()
        .await
        .get_key_value("b")
        .await
        .expect("bucket");
    for i in [0, KEYS / 2, KEYS - 1] {
        assert_eq!(
            store.get(format!("k{i}")).await.expect("read").as_deref(),
            Some(format!("value-{i}").as_bytes())
        );
    }
    let quiet = kvop(
        &cluster.urls(),
        &[
            "reconcile",
            "-f",
            dir.path().to_str().expect("path"),
            "--detailed-exitcode",
        ],
    )
    .await;
    assert_eq!(quiet.code, 0, "nothing lost, nothing to redo: {quiet:?}");
}
