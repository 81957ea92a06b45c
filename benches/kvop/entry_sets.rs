//! S1: B1's 10,000 keys declared as 10 `KeyValueEntrySet`s of 1,000 keys (one per
//! bucket) instead of 10,000 `KeyValueEntry`s. Standalone: a cold `kvop reconcile -f`
//! of the sets against B1's cold run of the entries, alternated in one run. Through the
//! operator: from the last create returning (what `kubectl apply` waits for) to every
//! set `Ready`, against the same B1 time; with the operator's writes to the apiserver per
//! set and its peak RSS.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use kvop::api::{ConditionStatus, KeyValueBucket, KeyValueEntrySet};
use serde_json::json;

use super::workloads::{
    BUCKETS, BURST_RUNS, KEYS, RUNS, Row, delete_buckets, kvop, median, value, write_manifests,
};
use crate::deployed_operator::DeployedOperator;
use crate::operator_burst::{apiserver_writes, peak_rss_kib};
use crate::support::NatsServer;
use crate::support::admission::AdmissionPolicy;
use crate::support::k8s::{admin, namespace, plane, wait_until};

/// Far above any run seen; a stuck operator fails the bench instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(1800);

/// The sets' `spec`s: bucket `bench{b}`'s keys `k0`… with B1's values.
fn set_specs() -> Vec<serde_json::Value> {
    let per_set = KEYS / BUCKETS;
    (0..BUCKETS)
        .map(|b| {
            let items: Vec<serde_json::Value> = (0..per_set)
                .map(|k| json!({"key": format!("k{k}"), "value": value(b * per_set + k + 1)}))
                .collect();
            json!({"bucketRef": {"name": format!("bench{b}")}, "entries": items})
        })
        .collect()
}

/// B1's buckets and the sets, as one manifest file.
fn write_set_manifests(dir: &Path) {
    let mut text = String::new();
    for b in 0..BUCKETS {
        text.push_str(&format!("---\napiVersion: kvop.dev/v1alpha1\nkind: KeyValueBucket\nmetadata:\n  name: bench{b}\nspec:\n  history: 1\n"));
    }
    for (b, spec) in set_specs().into_iter().enumerate() {
        let set = json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntrySet", "metadata": {"name": format!("set{b}")}, "spec": spec});
        // JSON is YAML: one document per set.
        text.push_str(&format!("---\n{set}\n"));
    }
    std::fs::write(dir.join("sets.yaml"), text).expect("write set manifests");
}

/// The rows: the standalone load of the sets against B1, and the operator's time to
/// Ready against B1.
pub async fn entry_sets() -> Vec<Row> {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let (entries_dir, sets_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    write_manifests(entries_dir.path(), 0, 0, 0);
    write_set_manifests(sets_dir.path());
    let (mut b1, mut sets) = (Vec::new(), Vec::new());
    // Alternated, so the machine's load drifts over both alike.
    for _ in 0..RUNS {
        delete_buckets(&js).await;
        b1.push(kvop(&server.url(), entries_dir.path(), &[]));
        delete_buckets(&js).await;
        sets.push(kvop(&server.url(), sets_dir.path(), &[]));
    }
    let (b1, sets) = (median(b1), median(sets));
    drop(server);
    let mut rows = vec![Row {
        id: "S1",
        workload: "10 sets of 1,000 keys, cold kvop reconcile -f".into(),
        kvop: format!("{:.0} ms", sets.as_secs_f64() * 1000.0),
        anchor: format!("{:.0} ms (B1: 10,000 entries)", b1.as_secs_f64() * 1000.0),
        ratio: sets.as_secs_f64() / b1.as_secs_f64(),
        target: "≤ 1.2× B1",
        met: sets.as_secs_f64() <= 1.2 * b1.as_secs_f64(),
    }];
    let (mut runs, mut admitted) = (Vec::new(), Vec::new());
    // Alternated, so the machine's load drifts over both alike.
    for run in 1..=BURST_RUNS {
        for with_policy in [false, true] {
            let through_operator = operator_sets(with_policy).await;
            println!(
                "S1 operator run {run}/{BURST_RUNS}{}: created in {:.2} s, all Ready {:.0} ms later; {} operator writes to the apiserver ({:.1}/set); VmHWM {} KiB; load average {}",
                if with_policy {
                    " (admission policy)"
                } else {
                    ""
                },
                through_operator.created.as_secs_f64(),
                through_operator.ready.as_secs_f64() * 1000.0,
                through_operator.writes,
                through_operator.writes as f64 / BUCKETS as f64,
                through_operator.peak_kib,
                super::workloads::load_average()
            );
            if with_policy {
                admitted.push(through_operator);
            } else {
                runs.push(through_operator);
            }
        }
    }
    let median_of = |mut runs: Vec<ThroughOperator>| {
        runs.sort_by_key(|run| run.ready);
        runs.swap_remove(runs.len() / 2)
    };
    let (through_operator, with_policy) = (median_of(runs), median_of(admitted));
    rows.push(Row {
        id: "S1",
        workload: format!(
            "… through the operator, last create to all Ready, median of 3 ({:.1} apiserver writes/set, VmHWM {} MiB)",
            through_operator.writes as f64 / BUCKETS as f64,
            through_operator.peak_kib / 1024
        ),
        kvop: format!("{:.0} ms", through_operator.ready.as_secs_f64() * 1000.0),
        anchor: format!("{:.0} ms (B1, this run)", b1.as_secs_f64() * 1000.0),
        ratio: through_operator.ready.as_secs_f64() / b1.as_secs_f64(),
        target: "≤ 3× B1",
        met: through_operator.ready.as_secs_f64() <= 3.0 * b1.as_secs_f64(),
    });
    rows.push(Row {
        id: "S1",
        workload: format!(
            "… the same with the chart's admission policy setting the finalizer ({:.1} apiserver writes/set)",
            with_policy.writes as f64 / BUCKETS as f64
        ),
        kvop: format!("{:.0} ms", with_policy.ready.as_secs_f64() * 1000.0),
        anchor: format!("{:.0} ms (B1, this run)", b1.as_secs_f64() * 1000.0),
        ratio: with_policy.ready.as_secs_f64() / b1.as_secs_f64(),
        target: "≤ 3× B1",
        met: with_policy.ready.as_secs_f64() <= 3.0 * b1.as_secs_f64(),
    });
    rows
}

/// One run of the sets through `kvop run`.
struct ThroughOperator {
    /// Until the apiserver had accepted every create.
    created: Duration,
    /// From then until every set was `Ready`.
    ready: Duration,
    /// The operator's writes to the apiserver for sets and Events.
    writes: u64,
    peak_kib: u64,
}

/// One run; `admitted`: with the chart's MutatingAdmissionPolicy bound to the namespace,
/// so each set is created with kvop's finalizer.
async fn operator_sets(admitted: bool) -> ThroughOperator {
    let nats = NatsServer::start();
    let client = admin().await;
    let ns = namespace(&client, "sets").await;
    let _policy = match admitted {
        true => Some(AdmissionPolicy::install(&client, &ns).await),
        false => None,
    };
    let mut operator = DeployedOperator::start(&plane().kubeconfig, &ns, &nats.url());
    wait_until(
        "the operator's metrics endpoint",
        Duration::from_secs(60),
        || async { (!operator.metrics().await.is_empty()).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let buckets: Api<KeyValueBucket> = Api::namespaced(client.clone(), &ns);
    let sets: Api<KeyValueEntrySet> = Api::namespaced(client.clone(), &ns);
    let (opened, watch_open) = futures::channel::oneshot::channel();
    let ready = tokio::spawn(all_ready(sets.clone(), opened));
    watch_open.await.expect("the Ready watch opened");
    let writes_before = apiserver_writes(&client, "keyvalueentrysets").await;
    let started = Instant::now();
    for b in 0..BUCKETS {
        let bucket: KeyValueBucket = serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueBucket", "metadata": {"name": format!("bench{b}")}, "spec": {"history": 1}})).expect("bucket");
        create(&buckets, &bucket).await;
    }
    for (b, spec) in set_specs().into_iter().enumerate() {
        let set: KeyValueEntrySet = serde_json::from_value(json!({"apiVersion": "kvop.dev/v1alpha1", "kind": "KeyValueEntrySet", "metadata": {"name": format!("set{b}")}, "spec": spec})).expect("set");
        create(&sets, &set).await;
    }
    let created = Instant::now();
    let ready_at = tokio::time::timeout(TIMEOUT, ready)
        .await
        .expect("every set became Ready in time")
        .expect("Ready watch");
    // kvop finalizes a set right after its first apply, so after `Ready`: its writes
    // are counted once every set carries the finalizer.
    wait_until("every set finalized", TIMEOUT, || async {
        let listed = sets.list(&Default::default()).await.ok()?;
        listed
            .items
            .iter()
            .all(|set| {
                set.finalizers()
                    .iter()
                    .any(|name| name == "kvop.dev/cleanup")
            })
            .then_some(())
    })
    .await;
    let writes = (apiserver_writes(&client, "keyvalueentrysets").await - writes_before)
        .saturating_sub(BUCKETS as u64);
    let peak_kib = peak_rss_kib(operator.pid()).expect("the operator's VmHWM");
    assert!(operator.running(), "the operator exited");
    let js = nats.jetstream().await;
    for b in 0..BUCKETS {
        let stream = js.get_stream(format!("KV_bench{b}")).await.expect("stream");
        assert_eq!(
            stream.cached_info().state.messages,
            (KEYS / BUCKETS) as u64,
            "every key written once"
        );
    }
    ThroughOperator {
        created: created - started,
        ready: ready_at.saturating_duration_since(created),
        writes,
        peak_kib,
    }
}

async fn create<K>(api: &Api<K>, object: &K)
where
    K: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.create(&PostParams::default(), object)
        .await
        .unwrap_or_else(|error| panic!("create {}: {error}", object.name_any()));
}

/// When every set is `Ready` for its current generation, from one watch.
async fn all_ready(
    api: Api<KeyValueEntrySet>,
    opened: futures::channel::oneshot::Sender<()>,
) -> Instant {
    let mut opened = Some(opened);
    let mut ready = std::collections::HashSet::new();
    let mut events = watcher(api, watcher::Config::default()).boxed();
    while let Some(event) = events.next().await {
        let set = match event {
            Ok(watcher::Event::InitDone) => {
                if let Some(opened) = opened.take() {
                    let _ = opened.send(());
                }
                continue;
            }
            Ok(watcher::Event::Apply(set) | watcher::Event::InitApply(set)) => set,
            Ok(_) => continue,
            Err(error) => {
                eprintln!("S1: Ready watch: {error}; resuming");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let is_ready = set.status.as_ref().is_some_and(|status| {
            status.observed_generation == set.metadata.generation
                && status.conditions.iter().any(|condition| {
                    condition.type_ == "Ready" && condition.status == ConditionStatus::True
                })
        });
        if is_ready {
            ready.insert(set.name_any());
        } else {
            ready.remove(&set.name_any());
        }
        if ready.len() == BUCKETS {
            return Instant::now();
        }
    }
    panic!("the Ready watch ended");
}
