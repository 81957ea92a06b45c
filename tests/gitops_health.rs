//! What the GitOps tools' own code says of kvop's objects, read from a real apiserver:
//! kstatus (sigs.k8s.io/cli-utils, Flux's health checks and `wait`) and the Argo CD health
//! check of docs/gitops.md run under gopher-lua (Argo CD's Lua interpreter), both in
//! tests/env/gitops-health. Every reason of kvop's reason table, with the conditions
//! kvop's own code writes for it; an object kvop has not reconciled yet; a stale
//! generation; an object being deleted; and, with the real operator and nats-server, a
//! ready bucket and key, an invalid spec, an `IfUnchanged` conflict and NATS down.

mod support;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kvop::api::KeyValueEntry;
use kvop::operator::reasons::{Health, REASONS};
use serde_json::{Value, json};
use support::k8s::{Object, Operator, live_json, plane, wait_until};
use support::resources::*;

/// kstatus' and Argo CD's verdicts on one object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    kstatus: String,
    argo: String,
    messages: String,
}

/// Runs the checker on the objects as the apiserver returns them.
async fn verdicts(objects: &[Value]) -> Vec<Verdict> {
    let parsed =
        support::gitops::gitops_health(&[], &kvop::operator::argocd::health_lua(), objects).await;
    parsed
        .iter()
        .map(|verdict| Verdict {
            kstatus: verdict["kstatus"].as_str().unwrap_or_default().to_string(),
            argo: verdict["argo"].as_str().unwrap_or_default().to_string(),
            messages: format!("{} / {}", verdict["kstatusMessage"], verdict["argoMessage"]),
        })
        .collect()
}

async fn verdict_of<K>(api: &Api<K>, name: &str) -> Verdict
where
    K: Object,
{
    verdicts(&[live_json(api, name).await]).await.remove(0)
}

fn expect(verdict: &Verdict, kstatus: &str, argo: &str, what: &str) {
    assert_eq!(
        (verdict.kstatus.as_str(), verdict.argo.as_str()),
        (kstatus, argo),
        "{what}: {}",
        verdict.messages
    );
}

/// Writes the status kvop's own code writes for `reason` (through `/status`).
async fn report<K>(api: &Api<K>, name: &str, reason: &str, health: Health)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let object = api.get(name).await.expect("get");
    let generation = object.meta().generation;
    let ready = health == Health::Ready;
    let conditions = kvop::operator::status::ready_and_synced(
        &[],
        generation,
        ready,
        reason,
        &format!("what {reason} says"),
        ready,
    );
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            &json!({"status": {"observedGeneration": generation, "conditions": conditions}}),
        ),
    )
    .await
    .expect("write the status");
}

#[tokio::test]
async fn every_reason_reads_in_kstatus_and_argo_cd_as_the_reason_table_says() {
    let s = setup("health").await;
    let mut objects = Vec::new();
    for reason in REASONS {
        let name = reason.name.to_lowercase();
        if reason.kinds == "KeyValueBucket" {
            create(&s.buckets, &bucket(&name, json!({}))).await;
            report(&s.buckets, &name, reason.name, reason.health).await;
            objects.push(serde_json::to_value(s.buckets.get(&name).await.unwrap()).unwrap());
        } else {
            create(&s.entries, &entry(&name, "b", "k", "v", json!({}))).await;
            report(&s.entries, &name, reason.name, reason.health).await;
            objects.push(serde_json::to_value(s.entries.get(&name).await.unwrap()).unwrap());
        }
    }
    for (reason, verdict) in REASONS.iter().zip(verdicts(&objects).await) {
        // A paused object's kstatus follows its Ready condition, false here.
        let kstatus = match reason.health {
            Health::Paused => "InProgress",
            health => health.kstatus(),
        };
        expect(&verdict, kstatus, reason.health.argocd(), reason.name);
    }
}

#[tokio::test]
async fn unreconciled_stale_and_deleted_objects_read_in_progress() {
    let s = setup("unseen").await;
    // Never reconciled: no conditions, the CRD's default observedGeneration 0.
    create(&s.entries, &entry("new", "b", "k", "v", json!({}))).await;
    create(&s.buckets, &bucket("new", json!({}))).await;
    expect(
        &verdict_of(&s.entries, "new").await,
        "InProgress",
        "Progressing",
        "a new entry",
    );
    expect(
        &verdict_of(&s.buckets, "new").await,
        "InProgress",
        "Progressing",
        "a new bucket",
    );

    // Ready for generation 1, then the spec changes: generation 2 is not observed yet.
    create(&s.entries, &entry("stale", "b", "k2", "v", json!({}))).await;
    report(&s.entries, "stale", "Synced", Health::Ready).await;
    expect(
        &verdict_of(&s.entries, "stale").await,
        "Current",
        "Healthy",
        "ready",
    );
    merge(&s.entries, "stale", json!({"spec": {"value": "w"}}))
        .await
        .expect("edit the spec");
    expect(
        &verdict_of(&s.entries, "stale").await,
        "InProgress",
        "Progressing",
        "a generation not observed",
    );

    // Being deleted, held by a finalizer.
    create(&s.entries, &entry("going", "b", "k3", "v", json!({}))).await;
    report(&s.entries, "going", "Synced", Health::Ready).await;
    merge(
        &s.entries,
        "going",
        json!({"metadata": {"finalizers": ["kvop.dev/test-hold"]}}),
    )
    .await
    .expect("add a finalizer");
    s.entries
        .delete("going", &DeleteParams::default())
        .await
        .expect("delete");
    expect(
        &verdict_of(&s.entries, "going").await,
        "Terminating",
        "Progressing",
        "being deleted",
    );
    merge(
        &s.entries,
        "going",
        json!({"metadata": {"finalizers": null}}),
    )
    .await
    .expect("release");
}

/// Waits until the object's verdict is `kstatus`.
async fn wait_verdict<K>(api: &Api<K>, name: &str, kstatus: &str) -> Verdict
where
    K: Object,
{
    let what = format!("{name} {kstatus}");
    wait_until(&what, WAIT, || async {
        let verdict = verdict_of(api, name).await;
        (verdict.kstatus == kstatus).then_some(verdict)
    })
    .await
}

#[tokio::test]
async fn the_operators_own_verdicts_read_as_the_table_says() {
    let mut s = setup("live").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({"maxValueSize": 256}))).await;
    create(&s.entries, &entry("ok", "b", "ok", "v", json!({}))).await;
    let ready = wait_verdict(&s.entries, "ok", "Current").await;
    expect(&ready, "Current", "Healthy", "a written key");
    expect(
        &wait_verdict(&s.buckets, "b", "Current").await,
        "Current",
        "Healthy",
        "a created bucket",
    );

    // Stalled: an invalid spec (over maxValueSize) and an IfUnchanged conflict.
    let big = "x".repeat(1024);
    create(&s.entries, &entry("big", "b", "big", &big, json!({}))).await;
    let invalid = wait_verdict(&s.entries, "big", "Failed").await;
    expect(&invalid, "Failed", "Degraded", "an invalid spec");
    s.nats
        .jetstream()
        .await
        .get_key_value("b")
        .await
        .expect("bucket")
        .put("theirs", "foreign".into())
        .await
        .expect("a foreign put");
    create(
        &s.entries,
        &entry(
            "theirs",
            "b",
            "theirs",
            "mine",
            json!({"updatePolicy": "IfUnchanged"}),
        ),
    )
    .await;
    let conflict = wait_verdict(&s.entries, "theirs", "Failed").await;
    expect(&conflict, "Failed", "Degraded", "an IfUnchanged conflict");

    // NATS down: a new entry waits, in progress.
    s.nats.stop();
    create(&s.entries, &entry("later", "b", "later", "v", json!({}))).await;
    wait_until("the entry reports NATS down", WAIT, || async {
        let entry: KeyValueEntry = s.entries.get("later").await.ok()?;
        let conditions = entry.status?.conditions;
        condition_of(&conditions, "Reconciling")
            .filter(|(_, reason, _)| reason == "NatsUnavailable")
            .map(|_| ())
    })
    .await;
    expect(
        &verdict_of(&s.entries, "later").await,
        "InProgress",
        "Progressing",
        "NATS down",
    );
}
