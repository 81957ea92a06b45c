//! kvop as pods, installed by its Helm chart with two replicas on the real test node of
//! tests/env/node-test.sh: probes and one leader, hand-overs (a deleted leader pod, a
//! rollout restart) that lose and repeat no write, the chart's security context as the
//! node really runs the container, the ServiceAccount token as the only Kubernetes
//! credential, the mounted NATS credentials, and /metrics through the chart's Service
//! from another pod.
//!
//! They need that node and release, so a plain `cargo test` lists them as ignored;
//! node-test.sh runs them with `--ignored --test-threads=1`. Each leaves the release as it
//! found it: two ready pods, one leader.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kvop::api::{KeyValueBucket, KeyValueEntry};
use serde_json::json;
use support::k8s::{namespace, wait_until};
use support::node::{
    Node, container_id, holder_is_pod, http_get, is_running_and_ready, metric_value, node, pod_ip,
};

/// A released Lease is taken within about a second; one that was not released only after
/// it expires (15 s). A hand-over slower than this waited for expiry.
const LEASE_DURATION: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(60);
const METRICS_PORT: u16 = 8080;

async fn jetstream_of(node: &Node) -> jetstream::Context {
    jetstream::new(support::connect_url(&node.nats_url).await)
}

async fn value(js: &jetstream::Context, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let store = js.get_key_value(bucket).await.ok()?;
    store.get(key).await.ok()?.map(|value| value.to_vec())
}

async fn last_sequence(js: &jetstream::Context, bucket: &str) -> u64 {
    let mut stream = js
        .get_stream(format!("KV_{bucket}"))
        .await
        .expect("the bucket's stream");
    stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence
}

/// A bucket with two declared keys, in a fresh namespace, Ready: `drift` (restored when
/// changed behind kvop's back) and `edit` (changed through its manifest).
async fn declared_bucket(node: &Node, prefix: &str) -> (String, Api<KeyValueEntry>) {
    let ns = namespace(&node.client, prefix).await;
    let bucket = format!("{prefix}-{}", std::process::id());
    let buckets: Api<KeyValueBucket> = Api::namespaced(node.client.clone(), &ns);
    let entries: Api<KeyValueEntry> = Api::namespaced(node.client.clone(), &ns);
    let resource: KeyValueBucket = serde_json::from_value(json!({
        "apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueBucket",
        "metadata": {"name": bucket}, "spec": {"history": 5},
    }))
    .expect("bucket");
    buckets
        .create(&PostParams::default(), &resource)
        .await
        .expect("create bucket");
    for (name, key, value) in [("drift", "drift", "declared"), ("edit", "edit", "v1")] {
        let entry: KeyValueEntry = serde_json::from_value(json!({
            "apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntry",
            "metadata": {"name": name},
            "spec": {"bucketRef": {"name": bucket}, "key": key, "value": value},
        }))
        .expect("entry");
        entries
            .create(&PostParams::default(), &entry)
            .await
            .expect("create entry");
    }
    let js = jetstream_of(node).await;
    wait_until("both keys in NATS", WAIT, || async {
        (value(&js, &bucket, "drift").await.as_deref() == Some(&b"declared"[..])
            && value(&js, &bucket, "edit").await.as_deref() == Some(&b"v1"[..]))
        .then_some(())
    })
    .await;
    (bucket, entries)
}

/// Changes `drift` behind kvop's back and waits for kvop to restore it; the time taken.
async fn drift_and_wait_for_repair(js: &jetstream::Context, bucket: &str) -> Duration {
    let store = js.get_key_value(bucket).await.expect("bucket");
    store
        .put("drift", "changed by hand".into())
        .await
        .expect("foreign put");
    let changed = Instant::now();
    wait_until("the drifted key restored", WAIT, || async {
        (value(js, bucket, "drift").await.as_deref() == Some(&b"declared"[..])).then_some(())
    })
    .await;
    changed.elapsed()
}

/// Waits a moment for any late write, then checks the bucket saw exactly `expected` new
/// messages since `before`: a lost write leaves fewer, a repeated one (two leaders, a
/// re-applied key) more.
async fn assert_writes_since(js: &jetstream::Context, bucket: &str, before: u64, expected: u64) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = last_sequence(js, bucket).await;
    assert_eq!(
        after - before,
        expected,
        "writes to {bucket} during the hand-over: {} (expected {expected})",
        after - before
    );
}

async fn metrics_of(pod: &Pod) -> String {
    let address: SocketAddr = format!("{}:{METRICS_PORT}", pod_ip(pod))
        .parse()
        .expect("pod address");
    http_get(address, "/metrics").await
}

#[tokio::test]
#[ignore = "needs the test node: tests/env/node-test.sh"]
async fn both_replicas_are_ready_and_exactly_one_leads() {
    let node = node().await;
    let pods = node.wait_settled(2).await;
    for pod in &pods {
        let status = pod.status.as_ref().expect("status");
        let restarts: i32 = status
            .container_statuses
            .iter()
            .flatten()
            .map(|s| s.restart_count)
            .sum();
        assert_eq!(restarts, 0, "{:?} restarted", pod.metadata.name);
    }
    let leader = node.leader_pod().await;
    let mut leaders = Vec::new();
    for pod in &pods {
        let name = pod.metadata.name.clone().expect("name");
        let metrics = metrics_of(pod).await;
        let leading = metric_value(&metrics, "kvop_leader");
        assert_eq!(
            leading,
            Some(if name == leader { 1.0 } else { 0.0 }),
            "kvop_leader of {name} (Lease holder {leader})"
        );
        if leading == Some(1.0) {
            leaders.push(name);
        }
    }
    assert_eq!(leaders, vec![leader.clone()], "exactly one pod leads");
    let logs = node
        .pods_api()
        .logs(&leader, &Default::default())
        .await
        .expect("leader's logs");
    assert!(
        logs.contains("acquired leadership"),
        "the leader logs that it leads:\n{logs}"
    );
    node.report(&format!("pods: 2 Running and Ready, leader {leader}"));
}

#[tokio::test]
#[ignore = "needs the test node: tests/env/node-test.sh"]
async fn the_container_runs_non_root_on_a_read_only_root_without_capabilities() {
    let node = node().await;
    for pod in node.wait_settled(2).await {
        let name = pod.metadata.name.clone().expect("name");
        // The chart's securityContext, unchanged.
        let spec = pod.spec.as_ref().expect("spec");
        let container = &spec.containers[0];
        let security = container
            .security_context
            .as_ref()
            .expect("securityContext");
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_string()])
        );
        // What the node really runs: the process, seen from the host.
        let pid = node.container_pid(&container_id(&pod));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|rest| rest.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(field("Uid:"), vec!["65532"; 4], "{name}: user");
        assert_eq!(field("Gid:"), vec!["65532"; 4], "{name}: group");
        assert_eq!(
            field("CapEff:"),
            vec!["0000000000000000"],
            "{name}: capabilities"
        );
        assert_eq!(
            field("NoNewPrivs:"),
            vec!["1"],
            "{name}: no privilege escalation"
        );
        assert_eq!(
            field("Seccomp:"),
            vec!["2"],
            "{name}: a seccomp filter (RuntimeDefault)"
        );
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
        assert_eq!(comm.trim(), "kvop", "{name}: the entrypoint is /kvop");
        let mountinfo =
            std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
        let mount_options = |point: &str| {
            mountinfo.lines().find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.get(4) == Some(&point)).then(|| fields[5].to_string())
            })
        };
        let root = mount_options("/").expect("root mount");
        assert!(
            root.split(',').any(|o| o == "ro"),
            "{name}: / is mounted {root}"
        );
        let tmp = mount_options("/tmp").expect("/tmp mount");
        assert!(
            tmp.split(',').any(|o| o == "rw"),
            "{name}: /tmp is mounted {tmp}"
        );
        node.report(&format!(
            "security: {name} runs as 65532:65532, no capabilities, seccomp filter, / {root}"
        ));
    }
}

#[tokio::test]
#[ignore = "needs the test node: tests/env/node-test.sh"]
async fn the_service_account_token_is_the_only_kubernetes_credential() {
    let node = node().await;
    let leader = node.leader_pod().await;
    let pod = node.pods_api().get(&leader).await.expect("leader pod");
    let spec = pod.spec.expect("spec");
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some(node.release.as_str())
    );
    let container = &spec.containers[0];
    let env_names: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    assert!(
        !env_names.iter().any(|name| name.starts_with("KUBE")),
        "no Kubernetes credentials in the environment: {env_names:?}"
    );
    let mut kinds = Vec::new();
    for volume in spec.volumes.iter().flatten() {
        let kind = if volume.empty_dir.is_some() {
            "emptyDir".to_string()
        } else if let Some(secret) = &volume.secret {
            format!("secret {}", secret.secret_name.clone().unwrap_or_default())
        } else if let Some(projected) = &volume.projected {
            let token = projected
                .sources
                .iter()
                .flatten()
                .any(|source| source.service_account_token.is_some());
            assert!(
                token,
                "a projected volume other than the token: {}",
                volume.name
            );
            "serviceAccountToken".to_string()
        } else {
            panic!("unexpected volume {volume:?}")
        };
        kinds.push(kind);
    }
    kinds.sort();
    assert_eq!(
        kinds,
        vec!["emptyDir", "secret kvop-nats-nkey", "serviceAccountToken"],
        "the pod's volumes"
    );
    // It is authenticated with that token: the Lease it renews needs the chart's RBAC,
    // which only its ServiceAccount has.
    let holder = node.lease_holder().await.expect("held");
    assert!(holder_is_pod(&holder, &leader));
    node.report("credentials: only the ServiceAccount token (projected), the NKey Secret, /tmp");
}

#[tokio::test]
#[ignore = "needs the test node: tests/env/node-test.sh"]
async fn kvop_connects_to_nats_with_the_nkey_secret_the_chart_mounts() {
    let node = node().await;
    let leader = node.leader_pod().await;
    let pod = node.pods_api().get(&leader).await.expect("leader pod");
    let container = &pod.spec.expect("spec").containers[0];
    let nkey = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "NATS_NKEY")
        .and_then(|e| e.value.clone());
    assert_eq!(nkey.as_deref(), Some("/etc/kvop/nats/nkey/seed"));
    // The server accepts only that NKey and the tests' own user, whose password is not in
    // the cluster: a bucket kvop creates proves it used the mounted seed.
    let (bucket, _) = declared_bucket(&node, "nkey").await;
    let js = jetstream_of(&node).await;
    assert!(js.get_key_value(&bucket).await.is_ok());
    node.report("nats: kvop authenticated with the NKey seed mounted from kvop-nats-nkey");
}

#[tokio::test]
#[ignore = "needs the test node: tests/env/node-test.sh"]
async fn metrics_are_scraped_through_the_charts_service_from_another_pod() {
    let node = node().await;
    let services: Api<Service> = Api::namespaced(node.client.clone(), &node.namespace);
    let service = services
        .get(&format!("{}-metrics", node.release))
        .await
        .expect("the metrics Service");
    let cluster_ip = service
        .spec
        .and_then(|spec| spec.cluster_ip)
        .expect("ClusterIP");
    let ns = namespace(&node.client, "scrape").await;
    let pods: Api<Pod> = Api::namespaced(node.client.clone(), &ns);
    // No cluster DNS on the test node: the Service by its ClusterIP.
    let scraper: Pod = serde_json::from_value(json!({
        "metadata": {"name": "scraper"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65534},
            "containers": [{
                "name": "wget",
                "image": "kvop.local/busybox:1",
                "imagePullPolicy": "Never",
                "command": ["wget", "-q", "-O", "-", format!("http://{cluster_ip}:{METRICS_PORT}/metrics")],
            }],
        },
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &scraper)
        .await
        .expect("create the scraper pod");
    let phase = wait_until("the scraper pod to finish", WAIT, || async {
        let phase = pods.get("scraper").await.ok()?.status?.phase?;
        matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
    })
    .await;
    let logs = pods
        .logs("scraper", &Default::default())
        .await
        .expect("scraper logs");
    assert_eq!(phase, "Succeeded", "wget from a pod: {logs}");
    assert!(
        metric_value(&logs, "kvop_leader").is_some(),
        "kvop's metrics through {cluster_ip}:{METRICS_PORT}:\n{logs}"
    );
    node.report(&format!(
        "metrics: scraped from pod scraper through Service {}-metrics ({cluster_ip}:{METRICS_PORT})",
        node.release
    ));
}

#[tokio::test]
#[ignore = "needs the test node: tests/env/node-test.sh"]
async fn deleting_the_leader_pod_hands_over_without_losing_or_repeating_a_write() {
    let node = node().await;
    node.wait_settled(2).await;
    let (bucket, entries) = declared_bucket(&node, "handover").await;
    let js = jetstream_of(&node).await;
    let leader = node.leader_pod().await;
    let old_holder = node.lease_holder().await.expect("held");
    let before = last_sequence(&js, &bucket).await;

    // The leader pod is deleted (SIGTERM, as a drain or an eviction does) and, while it
    // shuts down, a manifest changes.
    let deleted = Instant::now();
    node.pods_api()
        .delete(&leader, &DeleteParams::default())
        .await
        .expect("delete the leader pod");
    entries
        .patch(
            "edit",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"value": "v2"}})),
        )
        .await
        .expect("change a manifest");
    // The old leader's last act is releasing the Lease; from then on nobody writes until
    // the standby leads. A change made behind kvop's back at that moment is repaired by
    // the new leader.
    let released_holder = wait_until("the old leader to let go of the Lease", WAIT, || async {
        let holder = node.lease_holder().await.unwrap_or_default();
        (holder != old_holder).then_some(holder)
    })
    .await;
    let released = Instant::now();
    let repair = drift_and_wait_for_repair(&js, &bucket).await;
    let exit_to_repair = released.elapsed();
    wait_until("the changed manifest in NATS", WAIT, || async {
        (value(&js, &bucket, "edit").await.as_deref() == Some(&b"v2"[..])).then_some(())
    })
    .await;
    let new_leader = node.leader_pod().await;
    assert_ne!(new_leader, leader, "the standby leads");
    // One write for the manifest change, the foreign put and its repair: none lost, none
    // repeated by two leaders.
    assert_writes_since(&js, &bucket, before, 3).await;
    assert!(
        exit_to_repair < LEASE_DURATION,
        "the hand-over took {exit_to_repair:?}: the standby waited for the Lease to expire"
    );
    node.wait_settled(2).await;
    node.report(&format!(
        "leader pod deleted: shutdown to Lease release {:?} (released to {:?}), \
         release to the next repair of an out-of-band change {:?} (the repair itself {:?}); \
         new leader {new_leader}; writes exactly 3",
        released - deleted,
        if released_holder.is_empty() {
            "nobody"
        } else {
            released_holder.as_str()
        },
        exit_to_repair,
        repair,
    ));
}

#[tokio::test]
#[ignore = "needs the test node: tests/env/node-test.sh"]
async fn a_rollout_restart_hands_over_without_losing_or_repeating_a_write() {
    let node = node().await;
    let old_pods: Vec<String> = node
        .wait_settled(2)
        .await
        .into_iter()
        .filter_map(|pod| pod.metadata.name)
        .collect();
    let (bucket, _entries) = declared_bucket(&node, "rollout").await;
    let js = jetstream_of(&node).await;
    let before = last_sequence(&js, &bucket).await;

    let restarted = Instant::now();
    node.kubectl(&[
        "-n",
        &node.namespace,
        "rollout",
        "restart",
        &format!("deployment/{}", node.release),
    ]);
    // Until every old pod is gone and two new ones are ready: change the key behind
    // kvop's back, wait for the repair, again. Whoever leads at each moment must repair
    // each change exactly once.
    let mut repairs = Vec::new();
    loop {
        repairs.push(drift_and_wait_for_repair(&js, &bucket).await);
        let pods = node.pods().await;
        let done = pods.len() == 2
            && pods.iter().all(is_running_and_ready)
            && pods
                .iter()
                .all(|pod| !old_pods.contains(pod.metadata.name.as_ref().expect("name")));
        if done {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(180),
            "the rollout did not finish in 180 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rollout = restarted.elapsed();
    // One more after the rollout, by the final leader.
    repairs.push(drift_and_wait_for_repair(&js, &bucket).await);
    let new_leader = node.leader_pod().await;
    assert!(!old_pods.contains(&new_leader), "a new pod leads");
    assert_writes_since(&js, &bucket, before, 2 * repairs.len() as u64).await;
    let slowest = repairs.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < LEASE_DURATION,
        "a change waited {slowest:?} for a leader during the rollout"
    );
    let mut sorted = repairs.clone();
    sorted.sort();
    node.report(&format!(
        "rollout restart: {rollout:?}; {} out-of-band changes during it, each repaired once \
         (median {:?}, slowest {slowest:?}); new leader {new_leader}",
        repairs.len(),
        sorted[sorted.len() / 2],
    ));
}
