//! Faults injected for real during `kvop reconcile`: the server paused (SIGSTOP) or
//! killed (SIGKILL) mid-apply. Nothing is written twice, the run reports what happened,
//! and a re-run converges and is then a no-op. Every run is audited against its
//! operation log (see support/audit.rs).

mod support;

use std::time::Duration;

use async_nats::jetstream;
use support::audit::kvop_audited;
use support::{NatsServer, bucket, entry, kv_get, kvop, manifests, path};

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

/// The final state equals the desired state, and each key holds exactly one message:
/// more than one would be a duplicate write.
async fn assert_converged_without_duplicates(js: &jetstream::Context) {
    use futures::StreamExt;
    let store = js.get_key_value("b").await.expect("bucket");
    for i in 0..KEYS {
        let key = format!("k{i}");
        assert_eq!(
            store.get(&key).await.expect("read").as_deref(),
            Some(format!("value-{i}").as_bytes()),
            "{key} holds its declared value"
        );
    }
    let stream = js.get_stream("KV_b").await.expect("stream");
    assert_eq!(
        stream.cached_info().state.messages,
        KEYS as u64,
        "one message per key: nothing written twice"
    );
    for i in [0, KEYS / 2, KEYS - 1] {
        let history = store.history(format!("k{i}")).await.expect("history");
        assert_eq!(history.count().await, 1, "k{i} written once");
    }
}

#[tokio::test]
async fn a_server_paused_mid_apply_resumes_without_duplicates() {
    let server = NatsServer::start();
    let dir = big_manifests();
    let path = dir.path().to_str().expect("path").to_string();
    let pid = server.pid().expect("server pid");
    let url = server.url();
    let run = tokio::spawn(async move { kvop_audited(&url, &["reconcile", "-f", &path]).await });
    wait_for_writes(&server).await;
    signal(pid, "STOP");
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal(pid, "CONT");
    let first = run.await.expect("run");
    assert!(
        first.run.code == 0 || first.run.code == 1,
        "{:?}",
        first.run
    );
    let js = server.jetstream().await;
    first.check(&js).await;
    let again = rerun(&server.url(), &dir).await;
    assert_eq!(again.run.code, 0, "a re-run converges: {:?}", again.run);
    again.check(&js).await;
    assert_eq!(
        first.written().count() + again.written().count(),
        KEYS,
        "across both runs every key was written exactly once"
    );
    assert_converged_without_duplicates(&js).await;
    assert_quiet(&server.url(), &dir).await;
}

#[tokio::test]
async fn a_server_killed_mid_apply_fails_clearly_and_a_rerun_converges() {
    let mut server = NatsServer::start();
    let dir = big_manifests();
    let path = dir.path().to_str().expect("path").to_string();
    let pid = server.pid().expect("server pid");
    let url = server.url();
    let run = tokio::spawn(async move { kvop_audited(&url, &["reconcile", "-f", &path]).await });
    wait_for_writes(&server).await;
    signal(pid, "KILL");
    // Riding out is capped: a server that stays away ends the run in seconds, not in a
    // timeout per key (which once held a run like this one for an hour).
    let first = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("kvop gives up within a minute of losing the server")
        .expect("run");
    // Killed before, during or after the writes: either it finished, or it says so,
    // entry by entry.
    if first.run.code != 0 {
        assert_eq!(first.run.code, 1, "{:?}", first.run);
        let report = first.run.json();
        assert!(
            !report["problems"].as_array().expect("problems").is_empty(),
            "the failure is reported: {report}"
        );
    }
    server.restart();
    let js = server.jetstream().await;
    first.check(&js).await;
    let again = rerun(&server.url(), &dir).await;
    assert_eq!(again.run.code, 0, "a re-run converges: {:?}", again.run);
    again.check(&js).await;
    // A write can land without its acknowledgement reaching kvop: the re-run then finds
    // it stored and leaves it. So at most one write per key, and never a second message.
    let acknowledged = first.written().count() + again.written().count();
    assert!(
        acknowledged <= KEYS,
        "{acknowledged} acknowledged writes for {KEYS} keys"
    );
    assert_converged_without_duplicates(&js).await;
    assert_quiet(&server.url(), &dir).await;
}

/// Waits until kvop has started writing keys, so the fault lands mid-apply.
async fn wait_for_writes(server: &NatsServer) {
    let js = server.jetstream().await;
    for _ in 0..2_000 {
        if support::last_sequence(&js, "b").await > 10 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("kvop did not start writing within 10 s");
}

async fn rerun(url: &str, dir: &tempfile::TempDir) -> support::audit::AuditedRun {
    kvop_audited(
        url,
        &["reconcile", "-f", dir.path().to_str().expect("path")],
    )
    .await
}

/// A further run has nothing to change (`--detailed-exitcode` exits 2 on changes).
async fn assert_quiet(url: &str, dir: &tempfile::TempDir) {
    let quiet = kvop(
        url,
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
    let run = tokio::spawn(async move { kvop_audited(&urls, &["reconcile", "-f", &path]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(pid, "KILL");
    let first = run.await.expect("run");
    let report = first.run.json();
    assert_eq!(
        first.run.code, 0,
        "the run rides out the election: {}",
        first.run.stderr
    );
    let retries = report["result"]["retries"].as_u64().unwrap_or(0);
    assert!(
        retries <= (KEYS as u64) * 5,
        "retries are bounded per key: {retries}"
    );
    // No hot loop: each key is attempted a handful of times at most.
    let mut attempts_per_key = std::collections::HashMap::new();
    for attempt in &first.attempts {
        *attempts_per_key.entry(attempt.key.as_str()).or_insert(0) += 1;
    }
    let most = attempts_per_key.values().copied().max().unwrap_or(0);
    assert!(most <= 6, "at most 6 attempts per key, saw {most}");
    cluster.nodes[index].restart();
    let survivor = if index == 0 { 1 } else { 0 };
    let js = cluster.nodes[survivor].jetstream().await;
    first.check(&js).await;
    assert_converged_without_duplicates(&js).await;
    assert_quiet(&cluster.urls(), &dir).await;
}

#[tokio::test]
async fn quorum_lost_for_a_while_is_ridden_out_or_reported_and_a_rerun_converges() {
    const QUORUM_KEYS: usize = 300;
    let cluster = support::NatsCluster::start();
    cluster.wait_ready().await;
    let declare = |generation: &str| {
        let mut docs = vec![bucket("b", "  history: 5\n  replicas: 3\n")];
        docs.extend((0..QUORUM_KEYS).map(|i| {
            entry(
                &format!("e{i}"),
                "b",
                &format!("k{i}"),
                &format!("{generation}-{i}"),
                "",
            )
        }));
        manifests(&[("m.yaml", &docs.join("---\n"))])
    };
    // kvop talks to the node that stays up: the other two lose the quorum.
    let url = cluster.nodes[0].url();
    let js = cluster.nodes[0].jetstream().await;
    let v1 = declare("v1");
    let created = kvop_audited(&url, &["reconcile", "-f", path(&v1)]).await;
    assert_eq!(created.run.code, 0, "{:?}", created.run);
    created.check(&js).await;

    let v2 = declare("v2");
    let v2_path = path(&v2).to_string();
    let others: Vec<u32> = cluster.nodes[1..]
        .iter()
        .map(|node| node.pid().expect("pid"))
        .collect();
    for pid in &others {
        signal(*pid, "STOP");
    }
    let run_url = url.clone();
    let run =
        tokio::spawn(async move { kvop_audited(&run_url, &["reconcile", "-f", &v2_path]).await });
    // Longer than a write's acknowledgement timeout (5 s), shorter than riding out.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for pid in &others {
        signal(*pid, "CONT");
    }
    let during = run.await.expect("run");
    assert!(
        during.run.code == 0
            || !during.run.json()["problems"]
                .as_array()
                .expect("problems")
                .is_empty(),
        "either it rode out the loss or it reports what it could not do: {:?}",
        during.run
    );
    cluster.wait_ready().await;
    during.check(&js).await;

    let again = kvop_audited(&url, &["reconcile", "-f", path(&v2)]).await;
    assert_eq!(again.run.code, 0, "a re-run converges: {:?}", again.run);
    again.check(&js).await;
    let written = during.written().count() + again.written().count();
    assert!(
        written <= QUORUM_KEYS,
        "{written} writes for {QUORUM_KEYS} changes"
    );
    let store = js.get_key_value("b").await.expect("bucket");
    for i in 0..QUORUM_KEYS {
        assert_eq!(
            store.get(format!("k{i}")).await.expect("read").as_deref(),
            Some(format!("v2-{i}").as_bytes()),
            "k{i} holds its declared value"
        );
    }
    assert_quiet(&url, &v2).await;
}

/// Standalone mode keeps no state (the design: NATS is the state), so it cannot tell a
/// restored store from one nobody wrote to; it re-applies what is declared, exactly the
/// lost changes. The operator also reports it (tests/operator.rs).
#[tokio::test]
async fn a_server_rolled_back_to_an_older_store_gets_the_lost_changes_again() {
    let mut server = NatsServer::start();
    let declare = |generation: &str| {
        let mut docs = vec![bucket("b", "  history: 5\n")];
        docs.extend((0..100).map(|i| {
            let value = if i < 10 { generation } else { "same" };
            entry(&format!("e{i}"), "b", &format!("k{i}"), value, "")
        }));
        manifests(&[("m.yaml", &docs.join("---\n"))])
    };
    let (v1, v2) = (declare("v1"), declare("v2"));
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&v1)])
            .await
            .code,
        0
    );
    server.stop();
    let snapshot = server.snapshot();
    server.restart();
    assert_eq!(
        kvop(&server.url(), &["reconcile", "-f", path(&v2)])
            .await
            .code,
        0
    );
    server.stop();
    server.restore(&snapshot);
    server.restart();
    let js = server.jetstream().await;
    assert_eq!(
        kv_get(&js, "b", "k0").await.as_deref(),
        Some(&b"v1"[..]),
        "rolled back"
    );
    let again = kvop_audited(&server.url(), &["reconcile", "-f", path(&v2)]).await;
    assert_eq!(again.run.code, 0, "{:?}", again.run);
    again.check(&js).await;
    assert_eq!(again.written().count(), 10, "exactly the ten lost changes");
    assert_quiet(&server.url(), &v2).await;
}
