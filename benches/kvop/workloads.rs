//! The workloads of BENCHMARKS.md (B1 to B7, W1, W2, export and the nats-py peer row), their anchors,
//! and the table they print.

use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;

use crate::support::{NatsServer, nats_server_binary};

pub(crate) const BUCKETS: usize = 10;
pub(crate) const KEYS: usize = 10_000;
const VALUE_BYTES: usize = 128;
pub(crate) const RUNS: usize = 5;
const WINDOW: usize = 256;
/// B5 pushes 10,010 objects through a real apiserver: about a minute per run.
pub(crate) const BURST_RUNS: usize = 3;

/// One row of the result table.
pub(crate) struct Row {
    pub id: &'static str,
    pub workload: String,
    pub kvop: String,
    pub anchor: String,
    pub ratio: f64,
    pub target: &'static str,
    pub met: bool,
}

/// Runs the workloads named in `only` (all when empty), then prints their table.
pub async fn run_all(only: &[String]) {
    let selected = |id: &str| only.is_empty() || only.iter().any(|name| name == id);
    let version = std::process::Command::new(nats_server_binary())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "kvop benchmarks: {KEYS} entries in {BUCKETS} buckets, {VALUE_BYTES} B values, median of {RUNS} runs"
    );
    println!(
        "{version}, file storage, 1 replica, loopback; load average before: {}",
        load_average()
    );
    let mut rows = Vec::new();
    // Only when asked for: it takes a minute and makes no row.
    if only.iter().any(|name| name == "load") {
        let dir = tempfile::tempdir().expect("dir");
        write_manifests(dir.path(), 0, 0, 0);
        crate::load_phases::print(dir.path());
    }
    // Only when asked for: it takes an hour (`KVOP_W1_MINUTES` to change) and makes
    // one row.
    if only.iter().any(|name| name == "W1-memory") {
        rows.push(watch_memory().await);
    }
    if selected("M1") {
        rows.extend(peak_memory());
    }
    if selected("B1") {
        rows.extend(cold_apply("B1", "cold kvop reconcile -f (whole process)", "").await);
    }
    if selected("B2") {
        rows.push(no_change().await);
    }
    if selected("B3") {
        rows.push(partial_change().await);
    }
    if selected("B7") {
        rows.extend(
            cold_apply(
                "B7",
                "B1 on a server with sync_interval: always",
                "jetstream { sync_interval: always }\n",
            )
            .await
            .into_iter()
            .take(1),
        );
    }
    if selected("B6") {
        rows.push(status_refresh().await);
    }
    if selected("B4") {
        rows.push(operator_latency().await);
    }
    if selected("B5") {
        rows.extend(crate::burst_rows::operator_burst().await);
    }
    if selected("S1") {
        rows.extend(crate::entry_sets::entry_sets().await);
    }
    if selected("T1") {
        rows.push(unrelated_secrets().await);
    }
    if selected("W1") {
        rows.extend(watch_latency().await);
    }
    if selected("W2") {
        rows.push(watch_checkout().await);
    }
    if selected("export") {
        rows.push(export_keys().await);
    }
    if selected("peer")
        && let Some(row) = nats_py_peer().await
    {
        rows.push(row);
    }
    print_table(&rows);
    println!("load average after: {}", load_average());
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub(crate) fn value(i: usize) -> String {
    format!("{:0>width$}", i, width = VALUE_BYTES)
}

/// Manifests for `KEYS` entries in `BUCKETS` buckets; `skip` leaves entries out, `changed`
/// alters values, `extra` adds entries.
pub(crate) fn write_manifests(dir: &Path, changed: usize, removed: usize, added: usize) {
    let mut text = String::new();
    for b in 0..BUCKETS {
        text.push_str(&format!("---\napiVersion: kvop.dev/v1alpha1\nkind: KeyValueBucket\nmetadata:\n  name: bench{b}\nspec:\n  history: 1\n"));
    }
    let per_bucket = KEYS / BUCKETS;
    let mut index = 0;
    for b in 0..BUCKETS {
        for k in 0..per_bucket {
            index += 1;
            if index <= removed {
                continue;
            }
            let content = if index > removed && index <= removed + changed {
                format!("changed-{}", value(index))
            } else {
                value(index)
            };
            text.push_str(&format!("---\napiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e-{b}-{k}\nspec:\n  bucketRef:\n    name: bench{b}\n  key: k{k}\n  value: \"{content}\"\n"));
        }
    }
    for a in 0..added {
        text.push_str(&format!("---\napiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: added-{a}\nspec:\n  bucketRef:\n    name: bench0\n  key: added{a}\n  value: \"{}\"\n", value(a)));
    }
    std::fs::write(dir.join("bench.yaml"), text).expect("write manifests");
}

/// Runs the kvop binary and returns its wall time (process start to exit).
pub(crate) fn kvop(url: &str, dir: &Path, extra: &[&str]) -> Duration {
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kvop"))
        .args(["reconcile", "-f"])
        .arg(dir)
        .args(extra)
        .env("NATS_URL", url)
        .output()
        .expect("run kvop");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "kvop failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

async fn total_last_sequence(js: &jetstream::Context) -> u64 {
    let mut total = 0;
    for b in 0..BUCKETS {
        if let Ok(stream) = js.get_stream(format!("KV_bench{b}")).await {
            total += stream.cached_info().state.last_sequence;
        }
    }
    total
}

pub(crate) async fn create_buckets(js: &jetstream::Context) {
    for b in 0..BUCKETS {
        js.create_key_value(jetstream::kv::Config {
            bucket: format!("bench{b}"),
            history: 1,
            ..Default::default()
        })
        .await
        .expect("create bucket");
    }
}

pub(crate) async fn delete_buckets(js: &jetstream::Context) {
    for b in 0..BUCKETS {
        let _ = js.delete_key_value(format!("bench{b}")).await;
    }
}

/// Anchor: every key put with `WINDOW` publishes in flight, no revision check.
pub(crate) async fn raw_pipelined_put(js: &jetstream::Context) -> Duration {
    let started = Instant::now();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    for i in 0..KEYS {
        let subject = format!(
            "$KV.bench{}.k{}",
            i / (KEYS / BUCKETS),
            i % (KEYS / BUCKETS)
        );
        if in_flight.len() >= WINDOW {
            in_flight.next().await;
        }
        let ack = js
            .publish(subject, value(i + 1).into())
            .await
            .expect("publish");
        in_flight.push(ack.into_future());
    }
    while in_flight.next().await.is_some() {}
    started.elapsed()
}

/// Anchor: the per-key loop of a hand-written script (get, then create or update).
async fn sequential_get_update(js: &jetstream::Context, keys: usize) -> Duration {
    let store = js.get_key_value("bench0").await.expect("bucket");
    let started = Instant::now();
    for i in 0..keys {
        let key = format!("loop{i}");
        match store.entry(&key).await.expect("entry") {
            Some(entry) => {
                store
                    .update(&key, value(i).into(), entry.revision)
                    .await
                    .expect("update");
            }
            None => {
                store.create(&key, value(i).into()).await.expect("create");
            }
        }
    }
    started.elapsed()
}

/// Anchor: one last-per-subject sweep of every bucket (what observing costs at least).
async fn raw_sweep(js: &jetstream::Context) -> Duration {
    let started = Instant::now();
    for b in 0..BUCKETS {
        let stream = js.get_stream(format!("KV_bench{b}")).await.expect("stream");
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
                filter_subject: format!("$KV.bench{b}.>"),
                ..Default::default()
            })
            .await
            .expect("consumer");
        let pending = consumer.cached_info().num_pending;
        let mut messages = consumer
            .messages()
            .await
            .expect("messages")
            .take(pending as usize);
        while messages.next().await.is_some() {}
    }
    started.elapsed()
}

/// Parse time alone: `kvop reconcile --dry-run` against a server with no buckets does
/// load, one stream-info per bucket, and plan.
fn parse_only(url: &str, dir: &Path) -> Duration {
    kvop(url, dir, &["--dry-run"])
}

async fn cold_apply(id: &'static str, workload: &str, config: &str) -> Vec<Row> {
    let server = if config.is_empty() {
        NatsServer::start()
    } else {
        NatsServer::start_with_config(config)
    };
    let js = server.jetstream().await;
    let dir = tempfile::tempdir().expect("dir");
    write_manifests(dir.path(), 0, 0, 0);
    let (mut kvop_times, mut anchor_times, mut loop_times) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        delete_buckets(&js).await;
        kvop_times.push(kvop(&server.url(), dir.path(), &[]));
        delete_buckets(&js).await;
        create_buckets(&js).await;
        anchor_times.push(raw_pipelined_put(&js).await);
    }
    // The sequential loop is slow: 1,000 keys per run, scaled to a rate.
    for _ in 0..3 {
        loop_times.push(sequential_get_update(&js, 1000).await);
    }
    let rate = |count: usize, time: Duration| count as f64 / time.as_secs_f64();
    let kvop_rate = rate(KEYS, median(kvop_times));
    let anchor_rate = rate(KEYS, median(anchor_times));
    let loop_rate = rate(1000, median(loop_times));
    let target = if id == "B7" {
        "≥ 0.9× anchor"
    } else {
        "≥ 0.5× anchor"
    };
    let threshold = if id == "B7" { 0.9 } else { 0.5 };
    let mut rows = vec![Row {
        id,
        workload: workload.into(),
        kvop: format!("{kvop_rate:.0} entries/s"),
        anchor: format!("{anchor_rate:.0} puts/s (raw pipelined put)"),
        ratio: kvop_rate / anchor_rate,
        target,
        met: kvop_rate / anchor_rate >= threshold,
    }];
    rows.push(Row {
        id,
        workload: "… versus the sequential get+update loop".into(),
        kvop: format!("{kvop_rate:.0} entries/s"),
        anchor: format!("{loop_rate:.0} keys/s (get + update per key)"),
        ratio: kvop_rate / loop_rate,
        target: "≥ 15× loop",
        met: kvop_rate / loop_rate >= 15.0,
    });
    rows
}

async fn no_change() -> Row {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = tempfile::tempdir().expect("dir");
    write_manifests(dir.path(), 0, 0, 0);
    let empty = NatsServer::start();
    let parse = median(
        (0..RUNS)
            .map(|_| parse_only(&empty.url(), dir.path()))
            .collect(),
    );
    kvop(&server.url(), dir.path(), &[]);
    let before = total_last_sequence(&js).await;
    let kvop_time = median(
        (0..RUNS)
            .map(|_| kvop(&server.url(), dir.path(), &[]))
            .collect(),
    );
    let writes = total_last_sequence(&js).await - before;
    let mut sweeps = Vec::new();
    for _ in 0..RUNS {
        sweeps.push(raw_sweep(&js).await);
    }
    let sweep = median(sweeps);
    let anchor = sweep + parse;
    Row {
        id: "B2",
        workload: format!("re-run, nothing changed ({writes} writes)"),
        kvop: format!("{:.0} ms", kvop_time.as_secs_f64() * 1000.0),
        anchor: format!(
            "{:.0} ms (raw sweep {:.0} ms + load/plan {:.0} ms)",
            anchor.as_secs_f64() * 1000.0,
            sweep.as_secs_f64() * 1000.0,
            parse.as_secs_f64() * 1000.0
        ),
        ratio: kvop_time.as_secs_f64() / anchor.as_secs_f64(),
        target: "≤ 1.5× anchor; 0 writes",
        met: kvop_time.as_secs_f64() <= 1.5 * anchor.as_secs_f64() && writes == 0,
    }
}

async fn partial_change() -> Row {
    let (changed, removed, added) = (KEYS / 10, 100, 100);
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let dir = tempfile::tempdir().expect("dir");
    let (mut kvop_times, mut cas_times, mut writes) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        delete_buckets(&js).await;
        write_manifests(dir.path(), 0, 0, 0);
        kvop(&server.url(), dir.path(), &[]);
        write_manifests(dir.path(), changed, removed, added);
        let before = total_last_sequence(&js).await;
        kvop_times.push(kvop(&server.url(), dir.path(), &["--prune"]));
        writes.push(total_last_sequence(&js).await - before);
        cas_times.push(raw_conditional_updates(&js, changed + removed + added).await);
    }
    let expected = (changed + removed + added) as u64;
    let all_exact = writes.iter().all(|count| *count == expected);
    let kvop_time = median(kvop_times);
    let cas = median(cas_times);
    let empty = NatsServer::start();
    let parse = parse_only(&empty.url(), dir.path());
    let mut sweeps = Vec::new();
    for _ in 0..RUNS {
        sweeps.push(raw_sweep(&js).await);
    }
    let b2_anchor = median(sweeps) + parse;
    let anchor = b2_anchor + cas;
    Row {
        id: "B3",
        workload: format!(
            "10% changed, {removed} pruned, {added} added ({} writes, {expected} changes)",
            writes[0]
        ),
        kvop: format!("{:.0} ms", kvop_time.as_secs_f64() * 1000.0),
        anchor: format!(
            "{:.0} ms (B2 anchor + {:.0} ms of raw conditional updates)",
            anchor.as_secs_f64() * 1000.0,
            cas.as_secs_f64() * 1000.0
        ),
        ratio: kvop_time.as_secs_f64() / anchor.as_secs_f64(),
        target: "≤ anchor + 2× CAS time; writes == changes",
        met: kvop_time <= b2_anchor + cas * 3 && all_exact,
    }
}

/// Anchor: `count` conditional updates of existing keys, pipelined.
async fn raw_conditional_updates(js: &jetstream::Context, count: usize) -> Duration {
    let stream = js.get_stream("KV_bench1").await.expect("stream");
    let mut revisions = Vec::new();
    for k in 0..count.min(KEYS / BUCKETS) {
        let message = stream
            .get_last_raw_message_by_subject(&format!("$KV.bench1.k{k}"))
            .await
            .expect("message");
        revisions.push((format!("$KV.bench1.k{k}"), message.sequence));
    }
    let started = Instant::now();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    for (subject, revision) in revisions {
        let publish = jetstream::message::PublishMessage::build()
            .payload(value(1).into())
            .expected_last_subject_sequence(revision);
        let ack = js.send_publish(subject, publish).await.expect("publish");
        in_flight.push(ack.into_future());
        if in_flight.len() >= WINDOW {
            in_flight.next().await;
        }
    }
    while in_flight.next().await.is_some() {}
    // Scale to `count` when one bucket holds fewer keys than that.
    started
        .elapsed()
        .mul_f64(count as f64 / (count.min(KEYS / BUCKETS)) as f64)
}

async fn status_refresh() -> Row {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let kvop_connection = kvop::nats::connect(&kvop::nats::ConnectionSettings {
        url: server.url(),
        client_name: "kvop-bench".into(),
        ..Default::default()
    })
    .await
    .expect("kvop connects");
    let mut times = Vec::new();
    for keys in [1_000usize, 1_000_000] {
        let name = format!("status{keys}");
        js.create_key_value(jetstream::kv::Config {
            bucket: name.clone(),
            history: 1,
            ..Default::default()
        })
        .await
        .expect("bucket");
        let mut in_flight = futures::stream::FuturesUnordered::new();
        for i in 0..keys {
            if in_flight.len() >= 1024 {
                in_flight.next().await;
            }
            let ack = js
                .publish(format!("$KV.{name}.k{i}"), "v".into())
                .await
                .expect("publish");
            in_flight.push(ack.into_future());
        }
        while in_flight.next().await.is_some() {}
        let mut kvop_samples = Vec::new();
        let mut raw_samples = Vec::new();
        for _ in 0..RUNS * 4 {
            let started = Instant::now();
            kvop_connection
                .bucket(&name)
                .state()
                .await
                .expect("status")
                .expect("exists");
            kvop_samples.push(started.elapsed());
            let started = Instant::now();
            js.get_stream(format!("KV_{name}")).await.expect("info");
            raw_samples.push(started.elapsed());
        }
        times.push((keys, median(kvop_samples), median(raw_samples)));
    }
    let (small, large) = (times[0], times[1]);
    let ratio = large.1.as_secs_f64() / large.2.as_secs_f64();
    Row {
        id: "B6",
        workload: "bucket status refresh, 1,000 vs 1,000,000 keys".into(),
        kvop: format!(
            "{:.2} ms / {:.2} ms",
            small.1.as_secs_f64() * 1000.0,
            large.1.as_secs_f64() * 1000.0
        ),
        anchor: format!(
            "{:.2} ms / {:.2} ms (raw stream info)",
            small.2.as_secs_f64() * 1000.0,
            large.2.as_secs_f64() * 1000.0
        ),
        ratio,
        target: "flat in key count; ≤ 2× anchor",
        met: ratio <= 2.0 && large.1.as_secs_f64() <= 3.0 * small.1.as_secs_f64().max(0.0005),
    }
}

async fn operator_latency() -> Row {
    let latency = crate::operator::edit_latency().await;
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    let met = latency.p50 <= latency.anchor_p50 + Duration::from_millis(5)
        && latency.p99 <= latency.anchor_p99 + Duration::from_millis(50)
        && latency.idle_writes == 0;
    Row {
        id: "B4",
        workload: format!(
            "operator: edit one entry until a watcher sees it, {} edits ({} idle writes)",
            crate::operator::EDITS,
            latency.idle_writes
        ),
        kvop: format!(
            "p50 {:.1} ms, p99 {:.1} ms",
            ms(latency.p50),
            ms(latency.p99)
        ),
        anchor: format!(
            "p50 {:.1} ms, p99 {:.1} ms (apiserver write + raw get/update)",
            ms(latency.anchor_p50),
            ms(latency.anchor_p99)
        ),
        ratio: latency.p50.as_secs_f64() / latency.anchor_p50.as_secs_f64(),
        target: "p50 ≤ anchor + 5 ms, p99 ≤ anchor + 50 ms; idle 0 writes",
        met,
    }
}

/// W1: `reconcile --watch`, a file edit and a foreign write until a watcher sees the
/// result, against B4's raw get + update.
async fn watch_latency() -> Vec<Row> {
    let latency = crate::watch::latency().await;
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    let (anchor_p50, anchor_p99) = latency.anchor;
    let anchor = format!(
        "p50 {:.1} ms, p99 {:.1} ms (raw get + update)",
        ms(anchor_p50),
        ms(anchor_p99)
    );
    let row = |id, what: &str, (p50, p99): (Duration, Duration)| Row {
        id,
        workload: format!(
            "watch: {what}, {} events ({} idle writes; RSS {} → {} KiB)",
            crate::watch::EVENTS,
            latency.idle_writes,
            latency.rss_kib.0,
            latency.rss_kib.1
        ),
        kvop: format!("p50 {:.1} ms, p99 {:.1} ms", ms(p50), ms(p99)),
        anchor: anchor.clone(),
        ratio: p99.as_secs_f64() / anchor_p99.as_secs_f64(),
        target: "p99 ≤ anchor + 50 ms; idle 0 writes",
        met: p99 <= anchor_p99 + Duration::from_millis(50) && latency.idle_writes == 0,
    };
    vec![
        row("W1", "file edit until visible in NATS", latency.edit),
        row("W1", "foreign put until restored", latency.restore),
    ]
}

/// W2: a git checkout under `--watch --prune`: the moved key's new value and the removed
/// key's deletion, timed from the end of the checkout. The anchor is the prune settle
/// time the deletion waits for on purpose.
async fn watch_checkout() -> Row {
    let cost = crate::watch_checkout::measure().await;
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    let settle = crate::watch_checkout::SETTLE;
    Row {
        id: "W2",
        workload: format!(
            "watch --prune: git checkout moving a key and removing one (50 MB asset, git {:.0} ms), {} checkouts; {} delete markers on the moved key",
            ms(cost.git),
            crate::watch_checkout::CHECKOUTS,
            cost.moved_key_markers
        ),
        kvop: format!(
            "moved key's value p50 {:.0} ms, max {:.0} ms; deletion p50 {:.0} ms, max {:.0} ms",
            ms(cost.value.0),
            ms(cost.value.1),
            ms(cost.deletion.0),
            ms(cost.deletion.1)
        ),
        anchor: format!("{:.0} ms prune settle", ms(settle)),
        ratio: cost.deletion.1.as_secs_f64() / settle.as_secs_f64(),
        target: "deletion ≤ settle + 50 ms; value ≤ 50 ms; 0 markers",
        met: cost.deletion.1 <= settle + Duration::from_millis(50)
            && cost.value.1 <= Duration::from_millis(50)
            && cost.moved_key_markers == 0,
    }
}

/// M1: peak RSS of a dry run, a real run creating every key and a real run again with
/// nothing to write, of `kvop reconcile -f` at 100k and 200k entries, against 3× the
/// manifest bytes plus 50 MB.
fn peak_memory() -> Vec<Row> {
    let mut rows = Vec::new();
    for entries in [100_000, 200_000] {
        let peak = crate::memory::measure(entries);
        let allowance = peak.allowance_kib();
        let real = format!("{:.1} s", peak.real_time.as_secs_f64());
        let rerun = format!("{:.1} s", peak.rerun_time.as_secs_f64());
        for (what, kib, time) in [
            ("dry run", peak.dry_kib, None),
            ("real run (creates every key)", peak.real_kib, Some(real)),
            ("re-run (nothing to write)", peak.rerun_kib, Some(rerun)),
        ] {
            let time = time.map(|time| format!("; {time}")).unwrap_or_default();
            rows.push(Row {
                id: "M1",
                workload: format!(
                    "peak RSS, {what} of {entries} entries ({:.1} MB of YAML{time})",
                    peak.manifest_bytes as f64 / 1e6,
                ),
                kvop: format!("{:.0} MB", kib as f64 * 1024.0 / 1e6),
                anchor: format!("{:.0} MB allowed", allowance as f64 * 1024.0 / 1e6),
                ratio: kib as f64 / allowance as f64,
                target: "≤ 3× manifest bytes + 50 MB",
                met: kib <= allowance,
            });
        }
    }
    rows
}

/// W1's memory: a watch's RSS over an hour of edits and foreign puts. The anchor is its
/// RSS after the first minute (warm); the target, the last sample within 10% of it.
async fn watch_memory() -> Row {
    let minutes = std::env::var("KVOP_W1_MINUTES")
        .ok()
        .and_then(|text| text.parse().ok())
        .filter(|minutes| *minutes > 1)
        .unwrap_or(60);
    let samples = crate::watch::memory_over(minutes).await;
    let warm = samples.get(1).map_or(0, |sample| sample.1);
    let (_, last, events) = samples.last().copied().unwrap_or_default();
    let most = samples.iter().map(|sample| sample.1).max().unwrap_or(0);
    Row {
        id: "W1",
        workload: format!(
            "watch memory: {events} events over {minutes} min (start {} KiB, most {most} KiB)",
            samples[0].1
        ),
        kvop: format!("RSS {last} KiB at the end"),
        anchor: format!("RSS {warm} KiB after 1 min"),
        ratio: last as f64 / warm.max(1) as f64,
        target: "end ≤ 1.1× the first minute's",
        met: (last as f64) <= warm as f64 * 1.1,
    }
}

/// Peer row: a sequential `kv.put` loop with nats-py (installed once into the cache),
/// what a Python user would write with the library kvop's API comes from.
async fn nats_py_peer() -> Option<Row> {
    let cache = std::env::var("KVOP_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cache/kvop-test")
        });
    let venv = cache.join("nats-py");
    let python = venv.join("bin/python");
    if !python.exists() {
        let created = std::process::Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .ok()?
            .success()
            && std::process::Command::new(venv.join("bin/pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "nats-py==2.16.0",
                ])
                .status()
                .ok()?
                .success();
        if !created {
            println!("(nats-py peer row skipped: could not install nats-py)");
            return None;
        }
    }
    let server = NatsServer::start();
    let script = format!(
        "import asyncio, time, nats\nasync def main():\n    nc = await nats.connect('{}')\n    js = nc.jetstream()\n    kv = await js.create_key_value(bucket='peer', history=1)\n    start = time.perf_counter()\n    for i in range({KEYS}):\n        await kv.put(f'k{{i}}', b'x' * {VALUE_BYTES})\n    print(time.perf_counter() - start)\n    await nc.close()\nasyncio.run(main())\n",
        server.url()
    );
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(&script)
        .output()
        .ok()?;
    let seconds: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .ok()?;
    let js = server.jetstream().await;
    delete_buckets(&js).await;
    create_buckets(&js).await;
    let anchor = raw_pipelined_put(&js).await;
    let peer_rate = KEYS as f64 / seconds;
    let anchor_rate = KEYS as f64 / anchor.as_secs_f64();
    Some(Row {
        id: "peer",
        workload: "nats-py 2.16: sequential kv.put loop (no revision check)".into(),
        kvop: format!("{peer_rate:.0} puts/s (nats-py)"),
        anchor: format!("{anchor_rate:.0} puts/s (raw pipelined put)"),
        ratio: peer_rate / anchor_rate,
        target: "reference only",
        met: true,
    })
}

/// Export: `kvop export` of 100,000 keys, whole process, against B2's raw sweep.
async fn export_keys() -> Row {
    let figures = crate::export::measure(value).await;
    let ms = |time: Duration| time.as_secs_f64() * 1000.0;
    let ratio = figures.anchor.as_secs_f64() / figures.kvop.as_secs_f64();
    Row {
        id: "export",
        workload: format!(
            "`kvop export` of {} keys to a file ({:.1} MB of YAML, whole process)",
            crate::export::KEYS,
            figures.file_bytes as f64 / 1e6
        ),
        kvop: format!("{:.0} ms", ms(figures.kvop)),
        anchor: format!("{:.0} ms (raw sweep, as in B2)", ms(figures.anchor)),
        ratio,
        target: "≥ 0.5× anchor (speed)",
        met: ratio >= 0.5,
    }
}

/// T1: peak RSS with 200 unrelated 500 KB Secrets in the cluster, against the peak
/// without them (median of 3 each, alternating).
async fn unrelated_secrets() -> Row {
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for run in 1..=3 {
        without.push(crate::unrelated_secrets::peak_kib(false).await);
        with.push(crate::unrelated_secrets::peak_kib(true).await);
        println!(
            "T1 run {run}/3: VmHWM without {} KiB, with 200 x 500 KB Secrets {} KiB",
            without[run - 1],
            with[run - 1]
        );
    }
    without.sort();
    with.sort();
    let (without, with) = (without[1] as f64, with[1] as f64);
    let ratio = with / without;
    Row {
        id: "T1",
        workload: "operator peak RSS with 200 unrelated 500 KB Secrets (cluster-wide)".into(),
        kvop: format!("{:.1} MB", with / 1024.0),
        anchor: format!("{:.1} MB without them", without / 1024.0),
        ratio,
        target: "<= 1.2x",
        met: ratio <= 1.2,
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| id | workload | kvop | anchor | ratio | target | met |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {:.2}× | {} | {} |",
            row.id,
            row.workload,
            row.kvop,
            row.anchor,
            row.ratio,
            row.target,
            if row.met { "yes" } else { "**no**" }
        );
    }
}
