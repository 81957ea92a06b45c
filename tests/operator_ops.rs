//! Operating the operator: leader election between two instances (hand-over by expiry
//! and by release), the least-privilege ClusterRole of deploy/, and a thousand entries
//! in one bucket.

mod support;

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::jiff::SignedDuration;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kvop::api::{KeyValueBucket, KeyValueEntry};
use serde_json::json;
use support::NatsServer;
use support::k8s::{
    Operator, PrivatePlane, admin, client_for, install_crds, namespace, plane, scrape_metrics,
    wait_until,
};

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
    let args_a = candidate(&ns, "instance-a");
    let args_b = candidate(&ns, "instance-b");
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
    // A reconcile is counted when it returns, after `Ready` (and the finalizer after it).
    wait_until(
        "the leader counts its reconcile",
        Duration::from_secs(10),
        || async {
            a.metrics()
                .await
                .contains("kvop_reconciles_total{kind=\"KeyValueBucket\"}")
                .then_some(())
        },
    )
    .await;
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

/// The arguments of one election candidate.
fn candidate(namespace: &str, identity: &str) -> Vec<String> {
    [
        "--leader-election",
        "--lease-namespace",
        namespace,
        "--identity",
        identity,
    ]
    .map(String::from)
    .to_vec()
}

/// The `kvop_leader` gauge in a /metrics scrape.
fn leader_gauge(metrics: &str) -> Option<i64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("kvop_leader "))
        .and_then(|value| value.trim().parse().ok())
}

/// The Lease's spec as `initial` had it, then at every change after it, until `until`
/// holds it.
async fn lease_history(leases: Api<Lease>, initial: Lease, until: &'static str) -> Vec<LeaseSpec> {
    let params = WatchParams::default().fields("metadata.name=kvop-leader");
    let from = initial.metadata.resource_version.expect("resourceVersion");
    let mut events = leases
        .watch(&params, &from)
        .await
        .expect("watch the lease")
        .boxed();
    let mut history = vec![initial.spec.expect("spec")];
    while let Some(event) = events.try_next().await.expect("lease event") {
        if let WatchEvent::Modified(lease) = event {
            let spec = lease.spec.expect("spec");
            let done = spec.holder_identity.as_deref() == Some(until);
            history.push(spec);
            if done {
                break;
            }
        }
    }
    history
}

#[tokio::test]
async fn a_terminated_leader_releases_its_lease_and_the_standby_takes_over_at_once() {
    let nats = NatsServer::start();
    let client = admin().await;
    let ns = namespace(&client, "release").await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let args_a = candidate(&ns, "instance-a");
    let mut a = Operator::start(
        &plane().kubeconfig,
        &ns,
        &nats.url(),
        &args_a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    wait_until("instance-a leads", Duration::from_secs(30), || async {
        (holder(&leases).await? == "instance-a").then_some(())
    })
    .await;
    let b = Operator::start(
        &plane().kubeconfig,
        &ns,
        &nats.url(),
        &candidate(&ns, "instance-b")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    wait_until("instance-b stands by", Duration::from_secs(30), || async {
        b.logs().contains("standing by").then_some(())
    })
    .await;
    assert_eq!(
        leader_gauge(&scrape_metrics(a.metrics_port).await),
        Some(1),
        "the leader"
    );
    assert_eq!(leader_gauge(&b.metrics().await), Some(0), "the standby");
    // The leader has work in hand when it is told to stop.
    let buckets: Api<KeyValueBucket> = Api::namespaced(client.clone(), &ns);
    buckets
        .create(&PostParams::default(), &bucket("first"))
        .await
        .expect("create");
    bucket_ready(&buckets, "first", Duration::from_secs(30)).await;

    let initial = leases.get("kvop-leader").await.expect("lease");
    let history = tokio::spawn(lease_history(leases.clone(), initial, "instance-b"));
    let status = a.terminate(Duration::from_secs(20)).await;
    let exited = Instant::now();
    assert!(
        status.success(),
        "exit 0 after SIGTERM, got {status}:\n{}",
        a.logs()
    );
    assert!(a.logs().contains("released leadership"), "{}", a.logs());
    let history = tokio::time::timeout(Duration::from_secs(30), history)
        .await
        .expect("instance-b leads")
        .expect("watch task");
    eprintln!(
        "hand-over: instance-b leads {:?} after instance-a exited",
        exited.elapsed()
    );
    let holders: Vec<&str> = history
        .iter()
        .map(|spec| spec.holder_identity.as_deref().unwrap_or_default())
        .collect();
    let released = holders
        .iter()
        .position(|holder| holder.is_empty())
        .unwrap_or_else(|| panic!("the lease was never released: {holders:?}"));
    assert!(
        released > 0
            && holders[..released]
                .iter()
                .all(|holder| *holder == "instance-a")
            && holders[released + 1..]
                .iter()
                .all(|holder| *holder == "instance-b"),
        "instance-a holds, releases, then instance-b takes over: {holders:?}"
    );
    // By expiry instance-b could not have led before instance-a's last renewal ran out
    // (10 to 15 s after the exit).
    let renewed = &history[released - 1];
    let expiry = renewed.renew_time.as_ref().expect("renewTime").0
        + SignedDuration::from_secs(renewed.lease_duration_seconds.expect("duration").into());
    let acquired = history
        .last()
        .and_then(|spec| spec.acquire_time.as_ref())
        .expect("acquireTime")
        .0;
    assert!(
        acquired < expiry,
        "instance-b took over at {acquired}, not before instance-a's lease ran out at {expiry}"
    );
    wait_until(
        "instance-b reports leading",
        Duration::from_secs(10),
        || async { (leader_gauge(&b.metrics().await)? == 1).then_some(()) },
    )
    .await;
    buckets
        .create(&PostParams::default(), &bucket("second"))
        .await
        .expect("create");
    bucket_ready(&buckets, "second", Duration::from_secs(30)).await;
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
    // An entry set that reads a ConfigMap and a Secret, and is deleted (its finalizer,
    // its CRD looked up): nothing beyond the role either.
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &ns);
    let cm = json!({"metadata": {"name": "cm"}, "data": {"a": "1"}});
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(cm).expect("cm"),
        )
        .await
        .expect("ConfigMap");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    let secret = json!({"metadata": {"name": "s"}, "stringData": {"b": "2"}});
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(secret).expect("secret"),
        )
        .await
        .expect("Secret");
    let sets: Api<kvop::api::KeyValueEntrySet> = Api::namespaced(client.clone(), &ns);
    let set = json!({
        "apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntrySet",
        "metadata": {"name": "set"},
        "spec": {"bucketRef": {"name": "b"}, "keyPrefix": "set/",
                 "from": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "s"}}]},
    });
    sets.create(
        &PostParams::default(),
        &serde_json::from_value(set).expect("set"),
    )
    .await
    .expect("set");
    wait_until(
        "set ready under the limited identity",
        Duration::from_secs(30),
        || async { is_ready(&sets.get("set").await.ok()?.status?.conditions).then_some(()) },
    )
    .await;
    sets.delete("set", &Default::default())
        .await
        .expect("delete set");
    wait_until("set gone", Duration::from_secs(30), || async {
        sets.get_opt("set").await.ok()?.is_none().then_some(())
    })
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
            // The plane may hold the manifest's namespace already (the chart test
            // installs into kvop-system): a dry run of it under a fresh name validates
            // the same object without meeting AlreadyExists.
            if types.kind == "Namespace" {
                object.metadata.name = Some(format!("{ns}-ns"));
            }
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

/// The safety half of leader election: a leader that cannot renew its Lease (here: the
/// apiserver frozen) stops before the Lease can expire, so that a standby taking the
/// expired Lease never reconciles alongside it.
#[tokio::test]
async fn a_leader_that_cannot_renew_stops_before_its_lease_can_expire() {
    let nats = NatsServer::start();
    let private = PrivatePlane::start();
    let client = client_for(&private.kubeconfig).await;
    install_crds(&client).await;
    let ns = namespace(&client, "deadline").await;
    let args = candidate(&ns, "frozen-out");
    let mut leader = Operator::start(
        &private.kubeconfig,
        &ns,
        &nats.url(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    wait_until("the instance to lead", Duration::from_secs(30), || async {
        let spec = leases.get_opt("kvop-leader").await.ok()??.spec?;
        (spec.holder_identity.as_deref() == Some("frozen-out")).then_some(())
    })
    .await;

    private.signal_apiserver("STOP");
    let status = leader.exited(Duration::from_secs(30)).await;
    let exited_at = std::time::SystemTime::now();
    private.signal_apiserver("CONT");

    assert!(
        !status.success(),
        "losing leadership is an error exit: {status}"
    );
    let logs = leader.logs();
    assert!(
        logs.contains("stepping down"),
        "says why it stopped:\n{logs}"
    );
    // The Lease as the apiserver kept it: its last renewal, and how long it holds.
    let spec = wait_until("the thawed apiserver", Duration::from_secs(30), || async {
        leases.get_opt("kvop-leader").await.ok()??.spec
    })
    .await;
    let renewed = spec.renew_time.expect("renewTime").0;
    let duration =
        SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.expect("duration")));
    let expires = std::time::SystemTime::from(renewed + duration);
    assert!(
        exited_at < expires,
        "the leader stopped at {exited_at:?}, after its Lease expired at {expires:?}"
    );
}
