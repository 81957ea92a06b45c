//! Operating the operator: leader election between two instances, the least-privilege
//! ClusterRole of deploy/, and a thousand entries in one bucket.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kvop::api::{KeyValueBucket, KeyValueEntry};
use serde_json::json;
use support::NatsServer;
use support::k8s::{Operator, admin, namespace, plane, wait_until};

fn bucket(name: &str) -> KeyValueBucket {
    serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueBucket", "metadata": {"name": name}, "spec": {}})).expect("bucket")
}

fn entry(name: &str, bucket: &str, value: &str) -> KeyValueEntry {
    serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntry", "metadata": {"name": name}, "spec": {"bucketRef": {"name": bucket}, "value": value}})).expect("entry")
}

fn is_ready(conditions: &[kvop::api::Condition]) -> bool {
    conditions.iter().any(|condition| {
        condition.type_ == "Ready" && condition.status == kvop::api::ConditionStatus::True
    })
}

async fn bucket_ready(api: &Api<KeyValueBucket>, name: &str, timeout: Duration) {
    wait_until(&format!("bucket {name} ready"), timeout, || async {
        is_ready(&api.get(name).await.ok()?.status?.conditions).then_some(())
    })
    .await;
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("kvop-leader")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test]
async fn two_instances_elect_one_leader_and_the_other_takes_over() {
    let nats = NatsServer::start();
    let client = admin().await;
    let ns = namespace(&client, "leader").await;
    let election = |identity: &str| {
        vec![
            "--leader-election".to_string(),
            "--lease-namespace".into(),
            ns.clone(),
            "--identity".into(),
            identity.to_string(),
        ]
    };
    let args_a = election("instance-a");
    let args_b = election("instance-b");
    let mut a = Operator::start(
        &plane().kubeconfig,
        &ns,
        &nats.url(),
        &args_a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    wait_until("instance-a leads", Duration::from_secs(30), || async {
        (holder(&leases).await? == "instance-a").then_some(())
    })
    .await;
    let mut b = Operator::start(
        &plane().kubeconfig,
        &ns,
        &nats.url(),
        &args_b.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let buckets: Api<KeyValueBucket> = Api::namespaced(client.clone(), &ns);
    buckets
        .create(&PostParams::default(), &bucket("first"))
        .await
        .expect("create");
    bucket_ready(&buckets, "first", Duration::from_secs(30)).await;
    assert!(
        a.metrics()
            .await
            .contains("kvop_reconciles_total{kind=\"KeyValueBucket\"}"),
        "the leader reconciles"
    );
    assert!(
        !b.metrics().await.contains("kvop_reconciles_total"),
        "the standby does not: {}",
        b.metrics().await
    );
    assert_eq!(holder(&leases).await.as_deref(), Some("instance-a"));
    a.kill();
    // The lease lasts 15 s without renewal; instance-b then takes over.
    wait_until("instance-b leads", Duration::from_secs(45), || async {
        (holder(&leases).await? == "instance-b").then_some(())
    })
    .await;
    buckets
        .create(&PostParams::default(), &bucket("second"))
        .await
        .expect("create");
    bucket_ready(&buckets, "second", Duration::from_secs(30)).await;
    assert!(b.running(), "{}", b.logs());
}

#[tokio::test]
async fn the_operator_runs_with_the_least_privilege_cluster_role() {
    let nats = NatsServer::start();
    let client = admin().await;
    let ns = namespace(&client, "rbac").await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/clusterrole.yaml"
    ))
    .expect("deploy/clusterrole.yaml");
    let mut role: ClusterRole = serde_json::from_value(
        kvop::manifest::yaml::parse_documents(&text).expect("yaml")[0]
            .value
            .clone(),
    )
    .expect("ClusterRole");
    let role_name = format!("kvop-{ns}");
    role.metadata.name = Some(role_name.clone());
    let roles: Api<ClusterRole> = Api::all(client.clone());
    roles
        .patch(
            &role_name,
            &PatchParams::apply("kvop-tests").force(),
            &Patch::Apply(&role),
        )
        .await
        .expect("ClusterRole");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kvop-limited"}]
    }))
    .expect("binding");
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    bindings
        .patch(
            &role_name,
            &PatchParams::apply("kvop-tests").force(),
            &Patch::Apply(&binding),
        )
        .await
        .expect("binding");
    let lease_args = [
        "--leader-election",
        "--lease-namespace",
        ns.as_str(),
        "--identity",
        "limited",
    ];
    let operator = Operator::start(&plane().limited_kubeconfig, &ns, &nats.url(), &lease_args);
    let buckets: Api<KeyValueBucket> = Api::namespaced(client.clone(), &ns);
    let entries: Api<KeyValueEntry> = Api::namespaced(client.clone(), &ns);
    buckets
        .create(&PostParams::default(), &bucket("b"))
        .await
        .expect("bucket");
    entries
        .create(&PostParams::default(), &entry("e", "b", "v"))
        .await
        .expect("entry");
    wait_until(
        "entry ready under the limited identity",
        Duration::from_secs(30),
        || async { is_ready(&entries.get("e").await.ok()?.status?.conditions).then_some(()) },
    )
    .await;
    assert!(
        !operator.logs().contains("Forbidden"),
        "no permission was missing:\n{}",
        operator.logs()
    );
}

#[tokio::test]
async fn a_thousand_entries_in_one_bucket_converge() {
    const ENTRIES: usize = 1000;
    let nats = NatsServer::start();
    let client = admin().await;
    let ns = namespace(&client, "thousand").await;
    let operator = Operator::start(&plane().kubeconfig, &ns, &nats.url(), &[]);
    let buckets: Api<KeyValueBucket> = Api::namespaced(client.clone(), &ns);
    let entries: Api<KeyValueEntry> = Api::namespaced(client.clone(), &ns);
    let started = Instant::now();
    buckets
        .create(&PostParams::default(), &bucket("many"))
        .await
        .expect("bucket");
    let creates = (0..ENTRIES).map(|i| {
        let entries = entries.clone();
        async move {
            entries
                .create(
                    &PostParams::default(),
                    &entry(&format!("e{i}"), "many", &format!("value-{i}")),
                )
                .await
                .map(|_| ())
        }
    });
    for result in futures::future::join_all(creates).await {
        result.expect("create entry");
    }
    let created = started.elapsed();
    let store = nats.jetstream().await;
    wait_until("every key in NATS", Duration::from_secs(180), || async {
        let bucket = store.get_stream("KV_many").await.ok()?;
        (bucket.cached_info().state.messages as usize >= ENTRIES).then_some(())
    })
    .await;
    let in_nats = started.elapsed();
    wait_until("every entry Ready", Duration::from_secs(180), || async {
        let list = entries.list(&Default::default()).await.ok()?;
        (list
            .items
            .iter()
            .filter(|entry| {
                entry
                    .status
                    .as_ref()
                    .is_some_and(|status| is_ready(&status.conditions))
            })
            .count()
            == ENTRIES)
            .then_some(())
    })
    .await;
    let ready = started.elapsed();
    assert_eq!(
        store
            .get_stream("KV_many")
            .await
            .expect("stream")
            .cached_info()
            .state
            .messages as usize,
        ENTRIES,
        "one write per entry, no more"
    );
    let rss = operator_rss(&operator);
    eprintln!(
        "{ENTRIES} entries: created in {created:?}, all keys in NATS after {in_nats:?}, all Ready after {ready:?}; operator RSS {rss} KiB"
    );
}

/// Resident memory of the operator process (Linux), for the notes.
fn operator_rss(operator: &Operator) -> u64 {
    let status = operator
        .pid()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_deploy_manifests_are_accepted_by_the_apiserver() {
    use kube::api::DynamicObject;
    use kube::discovery::Discovery;
    let client = admin().await;
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    // Namespaced objects go into a real namespace, so the dry run validates them fully.
    let ns = namespace(&client, "deploy").await;
    for file in ["deploy/clusterrole.yaml", "deploy/operator.yaml"] {
        let text =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
                .expect("read");
        for document in kvop::manifest::yaml::parse_documents(&text).expect("yaml") {
            let mut object: DynamicObject =
                serde_json::from_value(document.value.clone()).expect("object");
            let types = object.types.clone().expect("apiVersion and kind");
            let (group, version) = types
                .api_version
                .split_once('/')
                .unwrap_or(("", types.api_version.as_str()));
            let gvk = kube::api::GroupVersionKind::gvk(group, version, &types.kind);
            let (resource, capabilities) = discovery.resolve_gvk(&gvk).expect("known kind");
            let api: Api<DynamicObject> = match capabilities.scope {
                kube::discovery::Scope::Namespaced => {
                    object.metadata.namespace = Some(ns.clone());
                    Api::namespaced_with(client.clone(), &ns, &resource)
                }
                kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
            };
            let params = PostParams {
                dry_run: true,
                ..Default::default()
            };
            if let Err(error) = api.create(&params, &object).await {
                panic!(
                    "{file}: {} {:?} refused: {error}",
                    types.kind, object.metadata.name
                );
            }
        }
    }
}
