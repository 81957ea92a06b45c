//! Helpers for the export round trip: seed buckets with async-nats as another client
//! would, and read back what a bucket holds (config fields, live keys) without kvop.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;

/// Puts every `(key, value)` with a window of publishes in flight, as a foreign client.
pub async fn put_all(js: &jetstream::Context, bucket: &str, entries: &[(String, Vec<u8>)]) {
    type Ack = <jetstream::context::PublishAckFuture as std::future::IntoFuture>::IntoFuture;
    let mut acks = futures::stream::FuturesUnordered::<Ack>::new();
    for (key, value) in entries {
        if acks.len() >= 256 {
            acks.next().await.expect("ack").expect("put acknowledged");
        }
        let ack = js
            .publish(format!("$KV.{bucket}.{key}"), value.clone().into())
            .await
            .expect("publish");
        acks.push(std::future::IntoFuture::into_future(ack));
    }
    while let Some(ack) = acks.next().await {
        ack.expect("put acknowledged");
    }
}

/// Every live key of a bucket and its value, read with one last-per-subject consumer.
pub async fn live_keys(js: &jetstream::Context, bucket: &str) -> BTreeMap<String, Vec<u8>> {
    let stream = js.get_stream(format!("KV_{bucket}")).await.expect("stream");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
            filter_subject: format!("$KV.{bucket}.>"),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let pending = consumer.cached_info().num_pending as usize;
    let mut keys = BTreeMap::new();
    let mut messages = consumer.messages().await.expect("messages").take(pending);
    while let Some(message) = messages.next().await {
        let message = message.expect("message");
        let deleted = message.headers.as_ref().is_some_and(|headers| {
            headers.get("KV-Operation").is_some() || headers.get("Nats-Marker-Reason").is_some()
        });
        let key = message
            .subject
            .strip_prefix(&format!("$KV.{bucket}."))
            .expect("key subject")
            .to_string();
        if !deleted {
            keys.insert(key, message.payload.to_vec());
        }
    }
    keys
}

/// The settings of a bucket a `KeyValueBucket` declares, as the server stores them.
pub async fn settings(js: &jetstream::Context, bucket: &str) -> serde_json::Value {
    let config = super::stream_config(js, bucket).await;
    let metadata: BTreeMap<&String, &String> = config
        .metadata
        .iter()
        .filter(|(key, _)| !key.starts_with("_nats.") && !key.starts_with("kvop.dev/"))
        .collect();
    serde_json::json!({
        "description": config.description,
        "history": config.max_messages_per_subject,
        "ttl": config.max_age,
        "maxValueSize": config.max_message_size,
        "maxBytes": config.max_bytes,
        "storage": format!("{:?}", config.storage),
        "replicas": config.num_replicas,
        "compression": format!("{:?}", config.compression),
        "allowMsgTtl": config.allow_message_ttl,
        "limitMarkerTtl": config.subject_delete_marker_ttl.unwrap_or(Duration::ZERO),
        "placement": format!("{:?}", config.placement),
        "republish": format!("{:?}", config.republish),
        "metadata": metadata,
    })
}

/// The `*.yaml` files of a directory by name, with their text.
pub fn files(dir: &std::path::Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|item| {
            let path = item.expect("dir entry").path();
            (
                path.file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read_to_string(&path).expect("read file"),
            )
        })
        .collect()
}

/// The first reconcile of an export on the server it came from takes each bucket over:
/// it records the claim (the `kvop.dev/adopt` annotation export writes) and changes
/// nothing else, no key included.
pub async fn take_claims(url: &str, dir: &str) {
    let run = super::kvop(url, &["reconcile", "-f", dir, "--detailed-exitcode"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let changes: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.trim_start().starts_with(['~', '+', '-', '!']))
        .collect();
    assert!(!changes.is_empty(), "{run:?}");
    assert!(
        changes
            .iter()
            .all(|line| line.trim_start().starts_with("~ claim: none -> manager")),
        "only claims are taken: {changes:?}"
    );
}
