//! Pause and reconcile-now in a shared cluster: the annotations sit on a tenant's own
//! objects, so a tenant with namespace-local rights (an impersonated user holding only a
//! Role in its namespace) uses them there, cannot use them on another tenant's objects,
//! and a paused declaration takes nothing another tenant holds; nor does a rival
//! declaration after a foreign write erased the key's claim headers.

mod support;

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kvop::api::KeyValueEntry;
use serde_json::json;
use support::k8s::wait_until;
use support::kv_get;
use support::resources::*;
use support::tenants::two_teams;

async fn annotate(api: &Api<KeyValueEntry>, name: &str, key: &str, value: Option<&str>) {
    annotate_as(api, name, key, value)
        .await
        .expect("annotate own entry");
}

async fn annotate_as(
    api: &Api<KeyValueEntry>,
    name: &str,
    key: &str,
    value: Option<&str>,
) -> Result<KeyValueEntry, kube::Error> {
    let patch = json!({"metadata": {"annotations": {key: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

async fn wait_synced(api: &Api<KeyValueEntry>, name: &str, reason: &str) {
    wait_until(&format!("{name} Synced {reason}"), WAIT, || async {
        let entry = api.get(name).await.ok()?;
        condition_of(&entry.status?.conditions, "Synced")
            .filter(|(_, actual, _)| actual == reason)
            .map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_tenant_pauses_and_asks_for_passes_on_its_own_objects_only() {
    let teams = two_teams().await;
    let (nats, team_a, team_b) = (&teams.nats, &teams.a, &teams.b);
    let (a_buckets, a_entries) = team_a.kinds();
    let (b_buckets, b_entries) = team_b.kinds();
    create(&a_buckets, &bucket("payments", json!({}))).await;
    create(
        &a_entries,
        &entry("limit", "payments", "limit", "5", json!({})),
    )
    .await;
    wait_entry(&a_entries, "limit", true, None).await;

    // Another tenant can neither pause team-a's entry nor ask for a pass on it.
    let as_b_in_a: Api<KeyValueEntry> = Api::namespaced(team_b.client.clone(), "team-a");
    for key in ["kvop.dev/paused", "kvop.dev/reconcile-requested-at"] {
        let refused = annotate_as(&as_b_in_a, "limit", key, Some("true")).await;
        assert!(
            matches!(&refused, Err(kube::Error::Api(status)) if status.code == 403),
            "{key} on another tenant's entry: {refused:?}"
        );
    }

    // team-b declares team-a's key from its own namespace, paused: refused all the
    // same (a paused object is observed and reported, and claims nothing).
    create(
        &b_buckets,
        &bucket(
            "theirs",
            json!({"bucket": "payments", "managementPolicy": "Observe"}),
        ),
    )
    .await;
    let mut grab = entry("grab", "theirs", "limit", "999999", json!({}));
    grab.metadata.annotations = Some([("kvop.dev/paused".into(), "true".into())].into());
    create(&b_entries, &grab).await;
    wait_synced(&b_entries, "grab", "ReconcilePaused").await;
    annotate(&b_entries, "grab", "kvop.dev/paused", None).await;
    wait_entry(&b_entries, "grab", false, Some("ClaimedElsewhere")).await;

    let js = nats.jetstream().await;
    // team-a pauses its own entry: a foreign write stays while paused, and erases the
    // key's claim headers; team-b's declaration still does not take the key.
    annotate(&a_entries, "limit", "kvop.dev/paused", Some("true")).await;
    wait_synced(&a_entries, "limit", "ReconcilePaused").await;
    js.get_key_value("payments")
        .await
        .expect("bucket")
        .put("limit", "drifted".into())
        .await
        .expect("a foreign write");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        kv_get(&js, "payments", "limit").await.as_deref(),
        Some(&b"drifted"[..]),
        "paused: no drift repair, and team-b's declaration took nothing"
    );
    wait_entry(&b_entries, "grab", false, Some("ClaimedElsewhere")).await;
    // Resumed, it repairs; a pass asked for is handled and recorded.
    annotate(&a_entries, "limit", "kvop.dev/paused", None).await;
    wait_value(nats, "payments", "limit", Some("5")).await;
    let requested = "2026-12-07T12:00:00Z";
    annotate(
        &a_entries,
        "limit",
        "kvop.dev/reconcile-requested-at",
        Some(requested),
    )
    .await;
    wait_until("team-a's request handled", WAIT, || async {
        let entry = a_entries.get("limit").await.ok()?;
        (entry.status?.last_handled_reconcile_at.as_deref() == Some(requested)).then_some(())
    })
    .await;

    // Unpaused, a foreign write is no race between the two declarations: the holder
    // repairs it every time, team-b's declaration never takes the key.
    for round in 0..5 {
        js.get_key_value("payments")
            .await
            .expect("bucket")
            .put("limit", format!("drifted-{round}").into())
            .await
            .expect("a foreign write");
        wait_value(nats, "payments", "limit", Some("5")).await;
    }
    wait_entry(&b_entries, "grab", false, Some("ClaimedElsewhere")).await;
    wait_entry(&a_entries, "limit", true, None).await;
}
