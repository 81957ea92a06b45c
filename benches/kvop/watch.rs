//! W1: `kvop reconcile --watch` latency. A file edit until a NATS watcher sees the new
//! value, and a foreign put until the watcher sees it restored, each over `EVENTS`
//! events, against B4's NATS anchor (one raw get + conditional update). Also the
//! writes of an idle stretch and the watch's RSS before and after the events.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::support::watching::{Watching, save_atomically};
use crate::support::{NatsServer, bucket, entry, manifests};

pub const EVENTS: usize = 1_000;

pub struct WatchLatency {
    pub edit: (Duration, Duration),
    pub restore: (Duration, Duration),
    pub anchor: (Duration, Duration),
    pub idle_writes: u64,
    pub rss_kib: (u64, u64),
}

fn p50_p99(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |fraction: f64| {
        samples[((samples.len() as f64 * fraction) as usize).min(samples.len() - 1)]
    };
    (at(0.5), at(0.99))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Waits until the watcher sees `want`, or a delete or purge when `want` is `None`.
pub async fn wait_for(seen: &mut async_nats::jetstream::kv::Watch, want: Option<&str>) {
    loop {
        let entry = tokio::time::timeout(Duration::from_secs(30), seen.next())
            .await
            .expect("visible within 30 s")
            .expect("watch")
            .expect("entry");
        let live = entry.operation == async_nats::jetstream::kv::Operation::Put;
        match want {
            Some(want) if live && entry.value == want.as_bytes() => return,
            None if !live => return,
            _ => {}
        }
    }
}

/// The manifests of bucket `w` with key `k` set to `value`.
fn one_key(value: &str) -> String {
    [bucket("w", ""), entry("k", "w", "k", value, "")].join("---\n")
}

/// A server, a watch of one file declaring [`one_key`], and the bucket, once loaded.
struct WatchedKey {
    nats: NatsServer,
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
    watch: Watching,
    js: async_nats::jetstream::Context,
    store: async_nats::jetstream::kv::Store,
}

async fn watched_key() -> WatchedKey {
    let nats = NatsServer::start();
    let dir = manifests(&[("m.yaml", &one_key("v0"))]);
    let path = dir.path().join("m.yaml");
    let watch = Watching::start(&nats.url(), &[dir.path()], &[]);
    watch
        .wait_for_lines(&["manifests loaded and in force"], 1)
        .await;
    let js = nats.jetstream().await;
    let store = js.get_key_value("w").await.expect("bucket");
    WatchedKey {
        nats,
        dir,
        path,
        watch,
        js,
        store,
    }
}

pub async fn latency() -> WatchLatency {
    let WatchedKey {
        nats: _nats,
        dir: _dir,
        path,
        watch,
        js,
        store,
    } = watched_key().await;
    let file = one_key;
    let mut seen = store.watch("k").await.expect("watch");
    // Settle: the views' first load asks for a (no-op) pass.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_kib(watch.pid());
    let mut edits = Vec::with_capacity(EVENTS);
    for i in 1..=EVENTS {
        let value = format!("v{i}");
        let started = Instant::now();
        save_atomically(&path, &file(&value));
        wait_for(&mut seen, Some(&value)).await;
        edits.push(started.elapsed());
    }
    let declared = format!("v{EVENTS}");
    let mut restores = Vec::with_capacity(EVENTS);
    for i in 1..=EVENTS {
        let started = Instant::now();
        store
            .put("k", format!("foreign{i}").into())
            .await
            .expect("put");
        wait_for(&mut seen, Some(&declared)).await;
        restores.push(started.elapsed());
    }
    let rss_after = rss_kib(watch.pid());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sequence = || async {
        js.get_stream("KV_w")
            .await
            .expect("stream")
            .cached_info()
            .state
            .last_sequence
    };
    let before = sequence().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_writes = sequence().await - before;
    drop(watch);
    let mut anchor = Vec::with_capacity(EVENTS);
    for i in 1..=EVENTS {
        let started = Instant::now();
        match store.entry("anchor").await.expect("entry") {
            Some(entry) => {
                store
                    .update("anchor", format!("a{i}").into(), entry.revision)
                    .await
                    .expect("update");
            }
            None => {
                store
                    .create("anchor", format!("a{i}").into())
                    .await
                    .expect("create");
            }
        }
        anchor.push(started.elapsed());
    }
    WatchLatency {
        edit: p50_p99(&mut edits),
        restore: p50_p99(&mut restores),
        anchor: p50_p99(&mut anchor),
        idle_writes,
        rss_kib: (rss_before, rss_after),
    }
}

/// W1's memory over time: a watch kept busy with a file edit every 100 ms and a foreign
/// put every tenth, for `minutes`, its RSS sampled each minute. Flat means no
/// growth after the first minutes (allocator warm-up) beyond noise.
pub async fn memory_over(minutes: u64) -> Vec<(u64, u64, usize)> {
    let WatchedKey {
        nats: _nats,
        dir: _dir,
        path,
        watch,
        js: _js,
        store,
    } = watched_key().await;
    let file = one_key;
    let started = Instant::now();
    let mut samples = vec![(0, rss_kib(watch.pid()), 0)];
    let mut events = 0usize;
    let mut next_sample = Duration::from_secs(60);
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        events += 1;
        if events.is_multiple_of(10) {
            store
                .put("k", format!("foreign{events}").into())
                .await
                .expect("put");
        } else {
            save_atomically(&path, &file(&format!("v{events}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() >= next_sample {
            let sample = (next_sample.as_secs() / 60, rss_kib(watch.pid()), events);
            println!(
                "W1 memory: minute {:>3}: RSS {} KiB after {} events",
                sample.0, sample.1, sample.2
            );
            samples.push(sample);
            next_sample += Duration::from_secs(60);
        }
    }
    samples
}
