//! The export workload: `kvop export` of one bucket of 100,000 keys (whole process, to
//! files) against B2's anchor, one raw last-per-subject sweep of the same bucket.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;

use crate::support::NatsServer;
use crate::support::export::put_all;

pub const KEYS: usize = 100_000;
const BUCKET: &str = "export";
const RUNS: usize = 5;

/// Medians of kvop's export and of the anchor's sweep.
pub struct Figures {
    pub kvop: Duration,
    pub anchor: Duration,
    pub file_bytes: u64,
}

pub async fn measure(value: impl Fn(usize) -> String) -> Figures {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    js.create_key_value(jetstream::kv::Config {
        bucket: BUCKET.into(),
        ..Default::default()
    })
    .await
    .expect("create bucket");
    let entries: Vec<(String, Vec<u8>)> = (0..KEYS)
        .map(|i| (format!("app.k{i}"), value(i).into_bytes()))
        .collect();
    put_all(&js, BUCKET, &entries).await;
    let out = tempfile::tempdir().expect("dir");
    let (mut kvop_times, mut anchor_times) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        kvop_times.push(export(&server.url(), out.path()));
        anchor_times.push(raw_sweep(&js).await);
    }
    let file_bytes = std::fs::metadata(out.path().join(format!("{BUCKET}.yaml")))
        .map(|metadata| metadata.len())
        .unwrap_or(0);
    Figures {
        kvop: median(kvop_times),
        anchor: median(anchor_times),
        file_bytes,
    }
}

fn export(url: &str, dir: &std::path::Path) -> Duration {
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kvop"))
        .args(["export", "--bucket", BUCKET, "--force", "-o"])
        .arg(dir)
        .env("NATS_URL", url)
        .output()
        .expect("run kvop");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "kvop export failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// Anchor: B2's raw sweep (an ordered last-per-subject consumer, read to its pending
/// count) of the bucket, values discarded.
async fn raw_sweep(js: &jetstream::Context) -> Duration {
    let started = Instant::now();
    let stream = js.get_stream(format!("KV_{BUCKET}")).await.expect("stream");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
            filter_subject: format!("$KV.{BUCKET}.>"),
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
    started.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
