//! The live bucket view (what `--watch` and the operator follow a bucket with) under
//! interference: its stream deleted or its consumer deleted behind its back. The view
//! must end, so that its caller follows again and asks for a pass, never wait silently.

mod support;

use std::ops::ControlFlow;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::TryStreamExt;
use kvop::nats::{Change, Connection, ConnectionSettings};
use support::NatsServer;
use tokio::sync::mpsc;

/// Longer than two missed heartbeats of the view: the slowest way it may notice.
const ENDS_WITHIN: Duration = Duration::from_secs(20);

async fn connection(server: &NatsServer) -> Connection {
    kvop::nats::connect(&ConnectionSettings {
        url: server.url(),
        client_name: "kvop-test".into(),
        ..Default::default()
    })
    .await
    .expect("kvop connects")
}

async fn bucket_with_keys(js: &jetstream::Context) {
    let store = js
        .create_key_value(kv::Config {
            bucket: "b".into(),
            ..Default::default()
        })
        .await
        .expect("create bucket");
    for key in ["a", "b", "c"] {
        store.put(key, "v".into()).await.expect("put");
    }
}

/// Follows bucket `b` on a task; the receiver gets `()` once the view has loaded, and the
/// handle ends with what `follow` returned.
fn follow(
    connection: Connection,
) -> (
    mpsc::UnboundedReceiver<()>,
    tokio::task::JoinHandle<Result<(), kvop::nats::NatsError>>,
) {
    let (loaded, on_loaded) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        connection
            .bucket("b")
            .follow(|change| {
                if let Change::Loaded(keys) = change {
                    assert_eq!(keys.len(), 3, "the view loads every key");
                    let _ = loaded.send(());
                }
                ControlFlow::Continue(())
            })
            .await
    });
    (on_loaded, task)
}

#[tokio::test]
async fn a_view_whose_stream_is_deleted_ends_instead_of_waiting_for_it() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    bucket_with_keys(&js).await;
    let (mut loaded, view) = follow(connection(&server).await);
    loaded.recv().await.expect("the view loads");

    js.delete_key_value("b").await.expect("delete bucket");
    ends_with_an_error(view, "its stream is gone").await;
}

/// Waits for the view to end and checks that it ended as a failure its caller follows
/// again after, not as a view that stopped on purpose.
async fn ends_with_an_error(
    view: tokio::task::JoinHandle<Result<(), kvop::nats::NatsError>>,
    because: &str,
) {
    let ended = tokio::time::timeout(ENDS_WITHIN, view)
        .await
        .unwrap_or_else(|_| panic!("the view ends once {because}"))
        .expect("no panic");
    assert!(ended.is_err(), "it ends with an error: {ended:?}");
}

#[tokio::test]
async fn a_view_whose_consumer_is_deleted_ends() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    bucket_with_keys(&js).await;
    let (mut loaded, view) = follow(connection(&server).await);
    loaded.recv().await.expect("the view loads");

    let stream = js.get_stream("KV_b").await.expect("stream");
    let consumers: Vec<String> = stream
        .consumer_names()
        .try_collect()
        .await
        .expect("consumer names");
    assert_eq!(consumers.len(), 1, "one consumer per view: {consumers:?}");
    stream
        .delete_consumer(&consumers[0])
        .await
        .expect("delete consumer");
    ends_with_an_error(view, "its consumer is gone").await;
    assert!(
        js.get_key_value("b").await.is_ok(),
        "the bucket itself is untouched"
    );
}
