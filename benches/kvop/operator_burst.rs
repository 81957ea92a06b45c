//! B5: the operator under a burst. With `kvop run` (as deployed, deployed_operator.rs)
//! already watching a fresh namespace, 10 buckets and their entries are created at once,
//! as fast as the apiserver takes them. Recorded from the first create: when every key
//! is in NATS and when every entry is `Ready`; then the operator's peak RSS, and that of
//! a bare kube-rs reflector over the same objects (reflector.rs) as its memory anchor.
//! Run as a cluster comes by default and with the chart's admission policy that sets
//! kvop's finalizer at creation (one operator write per entry instead of two).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream;
use futures::{FutureExt, StreamExt};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use kvop::api::{ConditionStatus, KeyValueBucket, KeyValueEntry};
use serde_json::json;

use crate::deployed_operator::DeployedOperator;
use crate::support::NatsServer;
use crate::support::admission::AdmissionPolicy;
use crate::support::k8s::{admin, namespace, plane, wait_until};

const BUCKETS: usize = 10;
const VALUE_BYTES: usize = 128;
/// Creates in flight: enough to keep the apiserver busy, few enough that the bench's
/// own connections (HTTP/1.1, one per request) stay small next to the operator's.
const CREATES_IN_FLIGHT: usize = 64;
/// Far above any run seen (25 min, with 1 s status refreshes on a busy machine); a
/// stuck operator fails the bench instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(3600);

/// One burst, timed from the first create.
pub struct Burst {
    /// Until the apiserver had accepted every create.
    pub created: Duration,
    pub all_in_nats: Duration,
    pub all_ready: Duration,
    /// VmHWM of `kvop run` once every entry was `Ready`.
    pub operator_peak_kib: u64,
    /// VmHWM of the bare reflector over the same objects.
    pub reflector_peak_kib: u64,
    /// The most sockets the operator held at once (kube's client speaks HTTP/1.1: one
    /// connection per request in flight).
    pub operator_peak_sockets: usize,
    /// Entry reconciles the operator ran until then (one per entry is the floor).
    pub reconciles: u64,
    /// Writes to the apiserver for entries and Events (creates, patches, applies) until
    /// then, the bench's own creates of the entries excluded: the operator's.
    pub operator_writes: u64,
}

/// Runs one burst of `entries` entries in `BUCKETS` buckets against a fresh nats-server,
/// namespace and operator; everything started here stops when this returns or panics.
/// `admitted`: with the chart's MutatingAdmissionPolicy bound to the namespace, so each
/// entry is created with kvop's finalizer (`cleanupFinalizerPolicy.enabled`).
pub async fn burst(entries: usize, admitted: bool) -> Burst {
    let nats = NatsServer::start();
    let client = admin().await;
    let ns = namespace(&client, "burst").await;
    let _policy = match admitted {
        true => Some(AdmissionPolicy::install(&client, &ns).await),
        false => None,
    };
    let mut operator = DeployedOperator::start(&plane().kubeconfig, &ns, &nats.url());
    let pid = operator.pid();
    wait_until(
        "the operator's metrics endpoint",
        Duration::from_secs(60),
        || async { (!operator.metrics().await.is_empty()).then_some(()) },
    )
    .await;
    // The endpoint answers before the controllers' first (empty) list is in: give them
    // a moment, so the burst meets watches that are already open.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let entries_api: Api<KeyValueEntry> = Api::namespaced(client.clone(), &ns);
    let buckets_api: Api<KeyValueBucket> = Api::namespaced(client.clone(), &ns);
    let (watching, watch_open) = futures::channel::oneshot::channel();
    let ready = tokio::spawn(all_ready(entries_api.clone(), entries, watching));
    watch_open.await.expect("the Ready watch opened");

    let peak_sockets = Arc::new(AtomicUsize::new(0));
    let sampler = tokio::spawn(sample_sockets(pid, peak_sockets.clone()));

    let writes_before = apiserver_writes(&client, "keyvalueentries").await;
    let (started, started_at) = (Instant::now(), SystemTime::now());
    create_all(&buckets_api, &entries_api, entries).await;
    let created = started.elapsed();
    let ready = tokio::time::timeout(TIMEOUT, ready)
        .await
        .expect("every entry became Ready in time")
        .expect("Ready watch");
    sampler.abort();
    let reconciles = entry_reconciles(&operator.metrics().await);
    let operator_writes = (apiserver_writes(&client, "keyvalueentries").await - writes_before)
        .saturating_sub(entries as u64);
    let operator_peak_kib = peak_rss_kib(pid).expect("the operator's VmHWM");
    let last_write = last_write(&nats.jetstream().await, entries).await;
    // Stopped before the reflector runs: its CPU would only slow the anchor down.
    assert!(operator.running(), "the operator exited during the burst");
    drop(operator);
    let reflector_peak_kib = reflector_peak_kib(&ns, entries).await;
    Burst {
        created,
        all_in_nats: last_write.duration_since(started_at).unwrap_or_default(),
        all_ready: ready - started,
        operator_peak_kib,
        reflector_peak_kib,
        operator_peak_sockets: peak_sockets.load(Ordering::Relaxed),
        reconciles,
        operator_writes,
    }
}

/// Writes the apiserver has served for `resource` (`keyvalueentries`, and their status)
/// and for Events, from its own `apiserver_request_total`.
pub(crate) async fn apiserver_writes(client: &kube::Client, resource: &str) -> u64 {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("a metrics request");
    let text = client
        .request_text(request)
        .await
        .expect("the apiserver's metrics");
    text.lines()
        .filter(|line| line.starts_with("apiserver_request_total{"))
        .filter(|line| {
            line.contains(&format!("resource=\"{resource}\""))
                || line.contains("resource=\"events\"")
        })
        .filter(|line| {
            ["POST", "PATCH", "PUT", "APPLY"]
                .iter()
                .any(|verb| line.contains(&format!("verb=\"{verb}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Creates the buckets and then the entries, `CREATES_IN_FLIGHT` at a time.
async fn create_all(buckets: &Api<KeyValueBucket>, entries: &Api<KeyValueEntry>, count: usize) {
    let per_bucket = count.div_ceil(BUCKETS);
    let bucket_creates = (0..BUCKETS).map(|b| {
        let bucket: KeyValueBucket = serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueBucket", "metadata": {"name": format!("bench{b}")}, "spec": {"history": 1}})).expect("bucket");
        async move { create(buckets, &bucket).await }.boxed()
    });
    let entry_creates = (0..count).map(|i| {
        let (b, k) = (i / per_bucket, i % per_bucket);
        let value = format!("{:0>width$}", i + 1, width = VALUE_BYTES);
        let entry: KeyValueEntry = serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntry", "metadata": {"name": format!("e-{b}-{k}")}, "spec": {"bucketRef": {"name": format!("bench{b}")}, "key": format!("k{k}"), "value": value}})).expect("entry");
        async move { create(entries, &entry).await }.boxed()
    });
    futures::stream::iter(bucket_creates.chain(entry_creates))
        .buffer_unordered(CREATES_IN_FLIGHT)
        .for_each(|()| async {})
        .await;
}

/// Creates one object, riding out the apiserver shedding load.
async fn create<K>(api: &Api<K>, object: &K)
where
    K: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for attempt in 0.. {
        match api.create(&PostParams::default(), object).await {
            Ok(_) => return,
            // An earlier attempt that seemed to fail got through.
            Err(kube::Error::Api(status)) if status.code == 409 && attempt > 0 => return,
            // 429 from priority and fairness, 5xx from a timeout under load.
            Err(kube::Error::Api(status))
                if (status.code == 429 || status.code >= 500) && attempt < 50 =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("create {}: {error}", object.name_any()),
        }
    }
}

/// When every one of `count` entries has `Ready=True`, from one watch (never a poll of
/// 10,000 objects). `opened` fires once the watch's initial list is in, so that no
/// create happens before the watch sees it.
async fn all_ready(
    api: Api<KeyValueEntry>,
    count: usize,
    opened: futures::channel::oneshot::Sender<()>,
) -> Instant {
    let mut opened = Some(opened);
    let mut ready = HashSet::with_capacity(count);
    let mut events = watcher(api, watcher::Config::default()).boxed();
    while let Some(event) = events.next().await {
        let entry = match event {
            Ok(watcher::Event::InitDone) => {
                if let Some(opened) = opened.take() {
                    let _ = opened.send(());
                }
                continue;
            }
            Ok(watcher::Event::Apply(entry) | watcher::Event::InitApply(entry)) => entry,
            Ok(watcher::Event::Init | watcher::Event::Delete(_)) => continue,
            // The watcher re-lists by itself after an error.
            Err(error) => {
                eprintln!("B5: Ready watch: {error}; resuming");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if is_ready(&entry) {
            ready.insert(entry.name_any());
        } else {
            ready.remove(&entry.name_any());
        }
        if ready.len() == count {
            return Instant::now();
        }
    }
    panic!("the Ready watch ended");
}

fn is_ready(entry: &KeyValueEntry) -> bool {
    entry.status.as_ref().is_some_and(|status| {
        status.conditions.iter().any(|condition| {
            condition.type_ == "Ready" && condition.status == ConditionStatus::True
        })
    })
}

/// When the last key was stored: the newest message of the buckets' streams, read once
/// at the end (the server timestamps every message, so no polling is needed). Each key
/// must have been written exactly once (history 1, no rewrites).
async fn last_write(js: &jetstream::Context, count: usize) -> SystemTime {
    let (mut stored, mut last) = (0, SystemTime::UNIX_EPOCH);
    for b in 0..BUCKETS {
        let stream = js
            .get_stream(format!("KV_bench{b}"))
            .await
            .expect("bucket stream");
        let state = &stream.cached_info().state;
        stored += state.messages;
        last = last.max(SystemTime::from(state.last_timestamp));
    }
    assert_eq!(stored, count as u64, "one write per key");
    last
}

/// The reflector's VmHWM: this bench binary run again in reflector mode over `ns`.
async fn reflector_peak_kib(ns: &str, entries: usize) -> u64 {
    use crate::reflector::{BUCKETS as BUCKETS_VAR, ENTRIES, MODE, NAMESPACE, REPORT};
    let binary = std::env::current_exe().expect("own path");
    let child = tokio::process::Command::new(binary)
        .env(MODE, "1")
        .env(NAMESPACE, ns)
        .env(ENTRIES, entries.to_string())
        .env(BUCKETS_VAR, BUCKETS.to_string())
        .env("KUBECONFIG", &plane().kubeconfig)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the reflector");
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("the reflector finished in time")
        .expect("reflector output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the reflector failed: {stdout}");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(REPORT)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {REPORT} line from the reflector: {stdout}"))
}

/// `kvop_reconciles_total` of entries, from the operator's /metrics text.
fn entry_reconciles(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(r#"kvop_reconciles_total{kind="KeyValueEntry"}"#)?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Keeps the most sockets `pid` holds at once in `peak`, sampled every 500 ms.
async fn sample_sockets(pid: u32, peak: Arc<AtomicUsize>) {
    loop {
        let sockets = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.filter_map(Result::ok)
                    .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                    .filter(|target| target.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0);
        peak.fetch_max(sockets, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Peak resident set size (`VmHWM`) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
