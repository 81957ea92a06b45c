//! B4: the operator's edit-to-visible latency. An entry's value is edited through the
//! apiserver and the time until a NATS watcher sees the new value is recorded, against
//! an anchor of the same apiserver write plus one raw get+update.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kvop::api::{KeyValueBucket, KeyValueEntry};
use serde_json::json;

use crate::support::NatsServer;
use crate::support::k8s::{Operator, admin, namespace, plane, wait_until};

pub const EDITS: usize = 1_000;

/// p50 and p99 of edit-to-visible latency, the anchor's, and the writes of an idle minute.
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub anchor_p50: Duration,
    pub anchor_p99: Duration,
    pub idle_writes: u64,
}

fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 * fraction) as usize).min(samples.len() - 1)]
}

pub async fn edit_latency() -> Latency {
    let nats = NatsServer::start();
    let client = admin().await;
    let ns = namespace(&client, "bench").await;
    let _operator = Operator::start(&plane().kubeconfig, &ns, &nats.url(), &[]);
    let buckets: Api<KeyValueBucket> = Api::namespaced(client.clone(), &ns);
    let entries: Api<KeyValueEntry> = Api::namespaced(client.clone(), &ns);
    let bucket: KeyValueBucket = serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueBucket", "metadata": {"name": "latency"}, "spec": {}})).expect("bucket");
    buckets
        .create(&PostParams::default(), &bucket)
        .await
        .expect("bucket");
    let entry: KeyValueEntry = serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntry", "metadata": {"name": "edited"}, "spec": {"bucketRef": {"name": "latency"}, "key": "edited", "value": "v0"}})).expect("entry");
    entries
        .create(&PostParams::default(), &entry)
        .await
        .expect("entry");
    let js = nats.jetstream().await;
    let store = wait_until("bucket", Duration::from_secs(30), || async {
        js.get_key_value("latency").await.ok()
    })
    .await;
    wait_until("first value", Duration::from_secs(30), || async {
        (store.get("edited").await.ok()?.as_deref() == Some(&b"v0"[..])).then_some(())
    })
    .await;
    let mut watch = store.watch("edited").await.expect("watch");
    let mut samples = Vec::with_capacity(EDITS);
    for i in 1..=EDITS {
        let value = format!("v{i}");
        let started = Instant::now();
        entries
            .patch(
                "edited",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"value": value}})),
            )
            .await
            .expect("edit");
        loop {
            let seen = tokio::time::timeout(Duration::from_secs(30), watch.next())
                .await
                .expect("the edit became visible")
                .expect("watch")
                .expect("entry");
            if seen.value == value.as_bytes() {
                break;
            }
        }
        samples.push(started.elapsed());
    }
    // Anchor: the same apiserver write, then one raw get + conditional update.
    let raw = js.get_key_value("latency").await.expect("bucket");
    let mut anchor = Vec::with_capacity(EDITS);
    for i in 1..=EDITS {
        let started = Instant::now();
        entries
            .patch(
                "edited",
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"annotations": {"bench": i.to_string()}}})),
            )
            .await
            .expect("write");
        let current = raw.entry("anchor").await.expect("entry");
        match current {
            Some(entry) => raw
                .update("anchor", format!("a{i}").into(), entry.revision)
                .await
                .map(|_| ())
                .expect("update"),
            None => raw
                .create("anchor", format!("a{i}").into())
                .await
                .map(|_| ())
                .expect("create"),
        }
        anchor.push(started.elapsed());
    }
    // Idle: nothing changes for a while; kvop must write nothing.
    let stream = js.get_stream("KV_latency").await.expect("stream");
    let before = stream.cached_info().state.last_sequence;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = js
        .get_stream("KV_latency")
        .await
        .expect("stream")
        .cached_info()
        .state
        .last_sequence;
    Latency {
        p50: percentile(&mut samples, 0.5),
        p99: percentile(&mut samples, 0.99),
        anchor_p50: percentile(&mut anchor, 0.5),
        anchor_p99: percentile(&mut anchor, 0.99),
        idle_writes: after - before,
    }
}
