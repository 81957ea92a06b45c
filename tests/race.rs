//! A concurrent writer racing `kvop reconcile`: kvop never overwrites a value it has not
//! seen (every kvop message expected exactly the message before it), no acknowledged
//! foreign write is lost, and a re-run converges. On a 3-node R3 cluster too, where
//! conflicts may come back as error 10164 instead of 10071.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::jetstream;
use support::{NatsCluster, NatsServer, bucket, entry, kv_get, kvop, manifests};

const KEYS: usize = 200;
/// Foreign writes per key at most, so history 64 keeps every message for the audit.
const FOREIGN_WRITES_PER_KEY: usize = 20;

fn manifest(replicas: u8) -> String {
    let mut docs = vec![bucket(
        "race",
        &format!("  history: 64\n  replicas: {replicas}\n"),
    )];
    docs.extend((0..KEYS).map(|i| {
        entry(
            &format!("e{i}"),
            "race",
            &format!("k{i}"),
            &format!("declared-{i}"),
            "",
        )
    }));
    docs.join("---\n")
}

/// Unconditional puts to every key, round after round, until told to stop; returns the
/// acknowledged (sequence, key, value) of each write.
async fn race(js: jetstream::Context, stop: Arc<AtomicBool>) -> Vec<(u64, String, String)> {
    let store = js.get_key_value("race").await.expect("bucket");
    let mut acked = Vec::new();
    for round in 0..FOREIGN_WRITES_PER_KEY {
        for i in 0..KEYS {
            if stop.load(Ordering::Relaxed) {
                return acked;
            }
            let value = format!("foreign-{round}-{i}");
            if let Ok(sequence) = store.put(format!("k{i}"), value.clone().into()).await {
                acked.push((sequence, format!("k{i}"), value));
            }
        }
    }
    acked
}

/// Checks every message after the seed (`seeded`): kvop's each expected the message
/// right before it, and every acknowledged foreign write is still stored.
async fn audit(js: &jetstream::Context, acked: &[(u64, String, String)], seeded: u64) {
    let stream = js.get_stream("KV_race").await.expect("stream");
    let last = stream.cached_info().state.last_sequence;
    let mut previous: HashMap<String, u64> = HashMap::new();
    let mut stored: HashMap<u64, (String, Vec<u8>)> = HashMap::new();
    let mut kvop_writes = 0;
    for sequence in 1..=last {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let key = message.subject.trim_start_matches("$KV.race.").to_string();
        if sequence > seeded && message.headers.get("Kvop-Manager").is_some() {
            kvop_writes += 1;
            let expected: u64 = message
                .headers
                .get("Nats-Expected-Last-Subject-Sequence")
                .expect("kvop writes always carry a revision check")
                .as_str()
                .parse()
                .expect("number");
            assert_eq!(
                expected,
                previous.get(&key).copied().unwrap_or(0),
                "kvop's write {sequence} to {key} expected the message right before it"
            );
        }
        previous.insert(key.clone(), sequence);
        stored.insert(sequence, (key, message.payload.to_vec()));
    }
    assert!(
        kvop_writes >= KEYS,
        "kvop wrote every key at least once ({kvop_writes})"
    );
    for (sequence, key, value) in acked {
        assert_eq!(
            stored.get(sequence),
            Some(&(key.clone(), value.clone().into_bytes())),
            "acknowledged foreign write {sequence} is still stored"
        );
    }
}

async fn kvop_converges_while_a_writer_races_it(url: String, js: jetstream::Context, replicas: u8) {
    let dir = manifests(&[("m.yaml", &manifest(replicas))]);
    let path = dir.path().to_str().expect("path").to_string();
    // The bucket exists and every key holds a foreign value, so kvop plans updates: the
    // values are plain puts, not another kvop manager's (whose keys would be its claims,
    // which kvop leaves alone).
    let seed = manifests(&[("m.yaml", &manifest(replicas).replace("declared-", "seed-"))]);
    assert_eq!(
        kvop(
            &url,
            &["reconcile", "-f", seed.path().to_str().expect("path")]
        )
        .await
        .code,
        0
    );
    let store = js.get_key_value("race").await.expect("bucket");
    for i in 0..KEYS {
        store
            .put(format!("k{i}"), format!("seed-{i}").into())
            .await
            .expect("seed");
    }
    let seeded = support::last_sequence(&js, "race").await;
    let stop = Arc::new(AtomicBool::new(false));
    let racer = tokio::spawn(race(js.clone(), stop.clone()));
    let racing = kvop(&url, &["reconcile", "-f", &path, "--window", "32"]).await;
    stop.store(true, Ordering::Relaxed);
    let acked = racer.await.expect("racer");
    eprintln!(
        "RACING {} acked foreign writes; kvop exit {}; {}",
        acked.len(),
        racing.code,
        racing.stdout.lines().rev().nth(3).unwrap_or_default()
    );
    assert!(
        racing.code == 0 || racing.stderr.contains("revision check failed"),
        "only exhausted revision checks may fail a racing run: {racing:?}"
    );
    assert!(!acked.is_empty(), "the writer raced");
    audit(&js, &acked, seeded).await;
    let settled = kvop(&url, &["reconcile", "-f", &path]).await;
    assert_eq!(settled.code, 0, "{settled:?}");
    for i in [0, KEYS / 2, KEYS - 1] {
        assert_eq!(
            kv_get(&js, "race", &format!("k{i}")).await,
            Some(format!("declared-{i}").into_bytes())
        );
    }
    let quiet = kvop(&url, &["reconcile", "-f", &path, "--detailed-exitcode"]).await;
    assert_eq!(quiet.code, 0, "converged: {quiet:?}");
}

#[tokio::test]
async fn a_racing_writer_never_loses_a_write_on_a_single_server() {
    let server = NatsServer::start();
    kvop_converges_while_a_writer_races_it(server.url(), server.jetstream().await, 1).await;
}

#[tokio::test]
async fn a_racing_writer_never_loses_a_write_on_an_r3_cluster() {
    let cluster = NatsCluster::start();
    cluster.wait_ready().await;
    let js = cluster.nodes[0].jetstream().await;
    kvop_converges_while_a_writer_races_it(cluster.urls(), js.clone(), 3).await;
    let config = js
        .get_stream("KV_race")
        .await
        .expect("stream")
        .cached_info()
        .config
        .clone();
    assert_eq!(config.num_replicas, 3);
}
