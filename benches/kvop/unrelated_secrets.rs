//! T1: the operator's memory does not grow with the cluster's Secrets. A cluster-wide
//! `kvop run` on a control plane of its own reconciles one bucket and 11 entries (one
//! value from a Secret); its peak RSS with 200 unrelated 500 KB Secrets in 20 other
//! namespaces is compared with its peak without them, measured the same way in the
//! same run. Before the metadata-only watches it listed and decoded every Secret twice
//! (415 MB peak, OOM-killed under the chart's 256 MiB limit).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PostParams};
use kvop::api::{KeyValueBucket, KeyValueEntry};
use serde_json::json;

use crate::operator_burst::peak_rss_kib;
use crate::support::NatsServer;
use crate::support::k8s::{Operator, PrivatePlane, client_for, install_crds, wait_until};

const NAMESPACES: usize = 20;
const SECRETS_PER_NAMESPACE: usize = 10;
const SECRET_BYTES: usize = 500 * 1024;

/// The operator's VmHWM in KiB once every entry is Ready, with and without the
/// unrelated Secrets.
pub async fn peak_kib(unrelated: bool) -> u64 {
    let plane = PrivatePlane::start();
    let client = client_for(&plane.kubeconfig).await;
    install_crds(&client).await;
    let nats = NatsServer::start();
    if unrelated {
        create_unrelated_secrets(&client).await;
    }
    let app = "app";
    create_namespace(&client, app).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), app);
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "db"}, "stringData": {"password": "s3cret"}}),
    )
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let buckets: Api<KeyValueBucket> = Api::namespaced(client.clone(), app);
    let entries: Api<KeyValueEntry> = Api::namespaced(client.clone(), app);
    let bucket: KeyValueBucket = serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueBucket", "metadata": {"name": "b"}, "spec": {}})).expect("bucket");
    buckets
        .create(&PostParams::default(), &bucket)
        .await
        .expect("bucket");
    for i in 0..11 {
        let spec = if i == 0 {
            json!({"bucketRef": {"name": "b"}, "key": "db", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}})
        } else {
            json!({"bucketRef": {"name": "b"}, "key": format!("k{i}"), "value": "v"})
        };
        let entry: KeyValueEntry = serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntry", "metadata": {"name": format!("e{i}")}, "spec": spec})).expect("entry");
        entries
            .create(&PostParams::default(), &entry)
            .await
            .expect("entry");
    }
    let operator = Operator::start_cluster_wide(&plane.kubeconfig, &nats.url(), &[]);
    let pid = operator.pid().expect("operator pid");
    wait_until("every entry Ready", Duration::from_secs(300), || async {
        let list = entries.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .all(|entry| {
                entry.status.as_ref().is_some_and(|status| {
                    status
                        .conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == kvop::api::ConditionStatus::True)
                })
            })
            .then_some(())
    })
    .await;
    // A resync's worth of settling: the watches' first lists are long done.
    tokio::time::sleep(Duration::from_secs(5)).await;
    peak_rss_kib(pid).expect("VmHWM")
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace");
}

/// 200 Secrets of 500 KB of incompressible-looking text, in namespaces kvop has no
/// object in.
async fn create_unrelated_secrets(client: &kube::Client) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..NAMESPACES {
        let name = format!("unrelated-{n}");
        create_namespace(client, &name).await;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &name);
        for s in 0..SECRETS_PER_NAMESPACE {
            let text: String = (0..SECRET_BYTES)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from(b'a' + (state % 26) as u8)
                })
                .collect();
            let secret: Secret = serde_json::from_value(
                json!({"metadata": {"name": format!("blob-{s}")}, "stringData": {"blob": text}}),
            )
            .expect("secret");
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .expect("secret");
        }
    }
}
