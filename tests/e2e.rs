//! End to end, written once for any cluster: apply `examples/` (buckets, entries, an
//! entry set and the ConfigMap it reads), wait for `Ready`, verify every key in NATS with
//! a client that is not kvop's, change a key behind kvop's back and see it restored,
//! change and delete manifests and the ConfigMap, verify again.
//!
//! - Against a cluster where the Helm chart runs the operator as pods:
//!   `KVOP_E2E_KUBECONFIG` and `KVOP_E2E_NATS_URL` point at it (the test node of
//!   tests/env/node-test.sh, and the kind job of .github/workflows/e2e.yml).
//! - Otherwise (here, and in `tests/run`): the local control plane of tests/env, a local
//!   nats-server, and `kvop run` as a process.

mod support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kvop::api::{KeyValueBucket, KeyValueEntry, KeyValueEntrySet};
use serde_json::json;
use support::k8s::{Operator, admin, client_for, namespace, plane, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// Where the test runs: a cluster with the operator installed, or a local setup.
struct Target {
    client: kube::Client,
    nats_url: String,
    namespace: String,
    _local: Option<(support::NatsServer, Operator)>,
}

async fn target() -> Target {
    if let (Ok(kubeconfig), Ok(nats_url)) = (
        std::env::var("KVOP_E2E_KUBECONFIG"),
        std::env::var("KVOP_E2E_NATS_URL"),
    ) {
        let client = client_for(Path::new(&kubeconfig)).await;
        let namespace = namespace(&client, "e2e").await;
        return Target {
            client,
            nats_url,
            namespace,
            _local: None,
        };
    }
    let nats = support::NatsServer::start();
    let client = admin().await;
    let namespace = namespace(&client, "e2e").await;
    let operator = Operator::start(&plane().kubeconfig, &namespace, &nats.url(), &[]);
    Target {
        client,
        nats_url: nats.url(),
        namespace,
        _local: Some((nats, operator)),
    }
}

/// The documents of examples/ this test applies, as JSON.
fn example_documents() -> Vec<serde_json::Value> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut documents = Vec::new();
    for file in [
        "app-config.yaml",
        "cache.yaml",
        "user-sessions.yaml",
        "feature-flags.yaml",
    ] {
        let text = std::fs::read_to_string(examples.join(file)).expect("example");
        documents.extend(
            kvop::manifest::yaml::parse_documents(&text)
                .expect("yaml")
                .into_iter()
                .map(|document| document.value),
        );
    }
    documents
}

/// Every (bucket, key, value) the examples' entries and sets declare, as kvop's loader
/// reads them (from files, the set reads the ConfigMap manifest beside it).
fn declared_values() -> Vec<(String, String, Vec<u8>)> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let loaded = kvop::manifest::load(
        &[kvop::manifest::Input::Path(examples)],
        &kvop::manifest::LoadOptions {
            manager: "kvop".into(),
        },
    )
    .expect("examples load");
    loaded
        .desired
        .entries
        .into_iter()
        .map(|entry| {
            (
                entry.bucket.to_string(),
                entry.key.to_string(),
                entry.value.to_vec(),
            )
        })
        .collect()
}

async fn value_in_nats(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    key: &str,
) -> Option<Vec<u8>> {
    let store = js.get_key_value(bucket).await.ok()?;
    store.get(key).await.ok()?.map(|value| value.to_vec())
}

/// Waits until `bucket/key` holds `value` (`None`: no value).
async fn wait_for_value(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    key: &str,
    value: Option<&[u8]>,
) {
    wait_until(&format!("{bucket}/{key} = {value:?}"), WAIT, || async {
        (value_in_nats(js, bucket, key).await.as_deref() == value).then_some(())
    })
    .await;
}

#[tokio::test]
async fn examples_apply_converge_change_and_delete_end_to_end() {
    let target = target().await;
    let buckets: Api<KeyValueBucket> = Api::namespaced(target.client.clone(), &target.namespace);
    let entries: Api<KeyValueEntry> = Api::namespaced(target.client.clone(), &target.namespace);
    let sets: Api<KeyValueEntrySet> = Api::namespaced(target.client.clone(), &target.namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(target.client.clone(), &target.namespace);
    let (mut entry_names, mut set_names) = (Vec::new(), Vec::new());
    for document in example_documents() {
        match document["kind"].as_str() {
            Some("KeyValueBucket") => {
                let bucket: KeyValueBucket = serde_json::from_value(document).expect("bucket");
                buckets
                    .create(&PostParams::default(), &bucket)
                    .await
                    .expect("create bucket");
            }
            Some("KeyValueEntry") => {
                let entry: KeyValueEntry = serde_json::from_value(document).expect("entry");
                entry_names.push(entry.metadata.name.clone().expect("name"));
                entries
                    .create(&PostParams::default(), &entry)
                    .await
                    .expect("create entry");
            }
            Some("KeyValueEntrySet") => {
                let set: KeyValueEntrySet = serde_json::from_value(document).expect("set");
                set_names.push(set.metadata.name.clone().expect("name"));
                sets.create(&PostParams::default(), &set)
                    .await
                    .expect("create set");
            }
            Some("ConfigMap") => {
                let config_map: ConfigMap = serde_json::from_value(document).expect("ConfigMap");
                config_maps
                    .create(&PostParams::default(), &config_map)
                    .await
                    .expect("create ConfigMap");
            }
            other => panic!("an example of kind {other:?}: apply it here too"),
        }
    }
    for name in &set_names {
        wait_until(&format!("set {name} Ready"), WAIT, || async {
            let set = sets.get(name).await.ok()?;
            set.status?
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == kvop::api::ConditionStatus::True)
                .then_some(())
        })
        .await;
    }
    for name in &entry_names {
        wait_until(&format!("entry {name} Ready"), WAIT, || async {
            let entry = entries.get(name).await.ok()?;
            entry
                .status?
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == kvop::api::ConditionStatus::True)
                .then_some(())
        })
        .await;
    }
    // Verified with async-nats' KV API, not through kvop.
    let js = async_nats::jetstream::new(support::connect_url(&target.nats_url).await);
    let declared = declared_values();
    for (bucket, key, value) in &declared {
        assert_eq!(
            value_in_nats(&js, bucket, key).await,
            Some(value.clone()),
            "{bucket}/{key}"
        );
    }

    // Drift: a foreign put on a key with the default updatePolicy (Always) is undone.
    let (_, _, settings) = declared
        .iter()
        .find(|(bucket, key, _)| bucket == "app-config" && key == "checkout/settings.json")
        .expect("examples declare app-config/checkout/settings.json");
    js.get_key_value("app-config")
        .await
        .expect("bucket")
        .put("checkout/settings.json", "edited by hand".into())
        .await
        .expect("foreign put");
    wait_until("the drifted key restored", WAIT, || async {
        (value_in_nats(&js, "app-config", "checkout/settings.json")
            .await
            .as_ref()
            == Some(settings))
        .then_some(())
    })
    .await;

    entries
        .patch(
            "checkout-banner",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"value": "Sale ends Sunday"}})),
        )
        .await
        .expect("change a value");
    entries
        .delete("cache-homepage", &DeleteParams::default())
        .await
        .expect("delete an entry");
    // The set follows its ConfigMap: a changed key is written, a removed one deleted.
    config_maps
        .patch(
            "checkout-flags",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"new-cart": "false", "one-click": null}})),
        )
        .await
        .expect("change the set's ConfigMap");
    wait_for_value(&js, "feature-flags", "checkout/new-cart", Some(b"false")).await;
    wait_for_value(&js, "feature-flags", "checkout/one-click", None).await;
    wait_for_value(
        &js,
        "app-config",
        "checkout/banner",
        Some(b"Sale ends Sunday"),
    )
    .await;
    wait_for_value(&js, "cache", "fragments/homepage", None).await;
    wait_until("the deleted entry gone", WAIT, || async {
        entries
            .get_opt("cache-homepage")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        value_in_nats(&js, "user-sessions", "sessions.alice")
            .await
            .is_some(),
        "other keys stay"
    );
}
