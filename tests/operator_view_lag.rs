//! The race behind issue 27's false `ServerWentBackwards` (1 in 2,000 new entries, 13 ms
//! after kvop's own write), reproduced with a real nats-server: the bucket's live view
//! falls behind a flood of writes to keys no entry declares, kvop writes its entry's key
//! and records the revision, and a pass asked for at once reads a view that does not
//! have that revision yet. kvop must then ask the stream leader, which has it, and warn
//! of nothing.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kvop::api::KeyValueEntry;
use serde_json::json;
use support::k8s::{Operator, plane, wait_until};
use support::resources::*;

/// Publishers of the flood, each on its own connection: the server takes their writes in
/// parallel and delivers them to the view's one consumer in order.
const PUBLISHERS: usize = 6;
const NOISE_BYTES: usize = 16 * 1024;
const ROUNDS: usize = 200;
const BEHIND: &str = "the live view is behind the revision kvop recorded";

#[tokio::test]
async fn a_pass_right_after_kvops_own_write_with_the_view_behind_warns_of_no_lost_writes() {
    let s = setup("view-lag").await;
    let operator = Operator::start(
        &plane().kubeconfig,
        &s.namespace,
        &s.nats.url(),
        &[
            "--log-level",
            "warn,kvop::operator::entry::observe=debug,async_nats=off",
        ],
    );
    create(
        &s.buckets,
        &bucket("b", json!({"storage": "memory", "history": 1})),
    )
    .await;
    create(&s.entries, &entry("e", "b", "k", "v0", json!({}))).await;
    wait_entry(&s.entries, "e", true, None).await;

    let flooding = Arc::new(AtomicBool::new(true));
    let mut publishers = Vec::new();
    for publisher in 0..PUBLISHERS {
        let js = s.nats.jetstream().await;
        publishers.push(tokio::spawn(flood(js, publisher, flooding.clone())));
    }
    let mut reproduced = false;
    for round in 1..=ROUNDS {
        let recorded = revision(&s.entries).await;
        // kvop's own write, recorded in the status...
        merge(
            &s.entries,
            "e",
            json!({"spec": {"value": format!("v{round}")}}),
        )
        .await
        .expect("a new value");
        wait_until("kvop's write recorded", WAIT, || async {
            (revision(&s.entries).await > recorded).then_some(())
        })
        .await;
        // ...and a pass asked for at once, while the view is still behind the flood.
        let requested = format!("round-{round}");
        let patch =
            json!({"metadata": {"annotations": {"kvop.dev/reconcile-requested-at": requested}}});
        s.entries
            .patch("e", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("ask for a pass");
        wait_until("the pass handled", WAIT, || async {
            let entry = s.entries.get("e").await.ok()?;
            (entry.status?.last_handled_reconcile_at.as_deref() == Some(requested.as_str()))
                .then_some(())
        })
        .await;
        if operator.logs().contains(BEHIND) {
            eprintln!("the view was behind kvop's write in round {round}");
            reproduced = true;
            break;
        }
    }
    flooding.store(false, Ordering::Release);
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    assert!(
        reproduced,
        "the view never fell behind kvop's own write in {ROUNDS} rounds: the race was not reproduced"
    );
    let warnings = event_notes(&s.client, &s.namespace, "e", "ServerWentBackwards").await;
    assert!(warnings.is_empty(), "a false warning: {warnings:?}");
    wait_entry(&s.entries, "e", true, None).await;
}

async fn revision(entries: &Api<KeyValueEntry>) -> i64 {
    let entry = entries.get("e").await.expect("entry");
    entry.status.and_then(|status| status.revision).unwrap_or(0)
}

/// Writes to keys no entry declares, acknowledgements awaited in windows, until told to
/// stop.
async fn flood(js: async_nats::jetstream::Context, publisher: usize, flooding: Arc<AtomicBool>) {
    let payload = bytes::Bytes::from(vec![b'n'; NOISE_BYTES]);
    let mut sent = 0usize;
    while flooding.load(Ordering::Acquire) {
        let window = futures::stream::iter(0..256)
            .map(|_| {
                sent += 1;
                let subject = format!("$KV.b.noise.{publisher}.{}", sent % 1000);
                let js = js.clone();
                let payload = payload.clone();
                async move {
                    if let Ok(ack) = js.publish(subject, payload).await {
                        let _ = ack.await;
                    }
                }
            })
            .buffer_unordered(256);
        window.for_each(|()| async {}).await;
    }
}
