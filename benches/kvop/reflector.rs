//! B5's memory anchor: a bare kube-rs reflector over the same objects the operator keeps
//! in memory (its two controllers' stores: entries and buckets), with the same watcher
//! configuration and the same kind of runtime, and nothing else. The bench binary runs
//! this in a child process of its own (`KVOP_BENCH_REFLECTOR=1`), so that its peak RSS
//! measures the reflector alone, and prints it for the parent to read.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kvop::api::{KeyValueBucket, KeyValueEntry};

/// The environment variable that selects this mode; the others name what to reflect.
pub const MODE: &str = "KVOP_BENCH_REFLECTOR";
pub const NAMESPACE: &str = "KVOP_BENCH_REFLECTOR_NAMESPACE";
pub const ENTRIES: &str = "KVOP_BENCH_REFLECTOR_ENTRIES";
pub const BUCKETS: &str = "KVOP_BENCH_REFLECTOR_BUCKETS";

/// The line the parent reads: `VmHWM <kB>`.
pub const REPORT: &str = "VmHWM";

/// Whether this process was started as the reflector.
pub fn requested() -> bool {
    std::env::var_os(MODE).is_some()
}

/// Reflects the namespace until both stores hold every object, prints the peak RSS.
pub fn run() {
    // The operator's runtime: multi-threaded, one worker per core (glibc keeps an arena
    // per thread, so the flavour shows in RSS).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(reflect());
}

async fn reflect() {
    let namespace = std::env::var(NAMESPACE).expect("namespace to reflect");
    let count = |name: &str| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|text| text.parse().ok())
            .expect("expected object count")
    };
    let (expected_entries, expected_buckets) = (count(ENTRIES), count(BUCKETS));
    // Client from KUBECONFIG, as `kvop run` makes it.
    let client = kube::Client::try_default().await.expect("kube client");
    let config = watcher::Config::default().any_semantic();
    let (entries, entries_writer) = reflector::store::<KeyValueEntry>();
    let (buckets, buckets_writer) = reflector::store::<KeyValueBucket>();
    let entries_api: Api<KeyValueEntry> = Api::namespaced(client.clone(), &namespace);
    let buckets_api: Api<KeyValueBucket> = Api::namespaced(client, &namespace);
    tokio::spawn(
        reflector(entries_writer, watcher(entries_api, config.clone()))
            .default_backoff()
            .for_each(|_| async {}),
    );
    tokio::spawn(
        reflector(buckets_writer, watcher(buckets_api, config))
            .default_backoff()
            .for_each(|_| async {}),
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while entries.len() < expected_entries || buckets.len() < expected_buckets {
        assert!(
            Instant::now() < deadline,
            "the reflector holds {} entries and {} buckets after 300 s, expected {expected_entries} and {expected_buckets}",
            entries.len(),
            buckets.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let peak = crate::operator_burst::peak_rss_kib(std::process::id()).expect("own VmHWM");
    println!("{REPORT} {peak}");
}
