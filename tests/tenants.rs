//! A shared cluster: tenants with namespace-local rights (impersonated users holding
//! only a Role in their namespace) against one cluster-wide `kvop run`, on a control
//! plane of each test's own and real nats-servers. No tenant reaches the operator's NATS
//! identity, another tenant's account, or a bucket name the administrator did not give
//! its namespace.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use kvop::api::{ConditionStatus, KeyValueBucket, KeyValueEntry, KeyValueEntrySet};
use serde_json::json;
use support::gitops::stalled_in_gitops_tools;
use support::k8s::{Operator, install_crds, wait_until};
use support::resources::*;
use support::tenants::{FakeNats, Tenant, private_plane, two_teams};
use support::{NatsServer, connect_url, kv_get};

async fn secret(tenant: &Tenant, name: &str, data: serde_json::Value) {
    create_secret(&tenant.api::<Secret>(), name, data).await;
}

/// Attack 1: a bucket whose `spec.connection` names only a server the tenant runs used
/// to inherit the operator's user and password and send them there in clear.
#[tokio::test]
async fn the_operators_credentials_never_go_to_a_server_an_object_names() {
    let (plane, admin) = private_plane().await;
    let nats = NatsServer::start_with_config(
        "authorization { users: [ { user: op, password: \"op-s3cret\" }, { user: tenant, password: \"tenant-pw\" } ] }\n",
    );
    let fake = FakeNats::start().await;
    let team = Tenant::create(&plane.kubeconfig, &admin, "team-b").await;
    let operator = Operator::start_cluster_wide(
        &plane.kubeconfig,
        &nats.url(),
        &["--user", "op", "--password", "op-s3cret"],
    );
    let buckets: Api<KeyValueBucket> = team.api();
    create(
        &buckets,
        &bucket("grab", json!({"connection": {"servers": [fake.url]}})),
    )
    .await;
    secret(
        &team,
        "mine",
        json!({"user": "tenant", "password": "tenant-pw"}),
    )
    .await;
    create(
        &buckets,
        &bucket(
            "own",
            json!({"connection": {"servers": [fake.url], "userSecretRef": {"name": "mine"}}}),
        ),
    )
    .await;
    // Its own credentials, no servers: the operator's server with the tenant's identity.
    create(
        &buckets,
        &bucket(
            "plain",
            json!({"connection": {"userSecretRef": {"name": "mine"}}}),
        ),
    )
    .await;
    let connects = wait_until("both buckets tried the fake server", WAIT, || async {
        let connects = fake.connects();
        let users: Vec<_> = connects.iter().map(|c| c["user"].clone()).collect();
        (users.len() >= 2 && users.contains(&json!("tenant"))).then_some(connects)
    })
    .await;
    for connect in &connects {
        let text = connect.to_string();
        assert!(
            !text.contains("op-s3cret") && connect["user"] != json!("op"),
            "the operator's identity went to a tenant's server: {text}"
        );
    }
    wait_bucket(&buckets, "plain", true, None).await;
    assert!(
        !operator.logs().contains("op-s3cret") && !operator.logs().contains("tenant-pw"),
        "no password in the log"
    );
}

/// Namespaces map to NATS accounts by the administrator's tenants file, so NATS itself
/// keeps tenants apart: two teams' `payments` are two buckets in two accounts, and
/// deleting one leaves the other with its data. Bucket names, mirrors and sources are
/// limited to the patterns the file gives each namespace; objects may name only the
/// listed servers; an unlisted namespace gets no NATS at all.
#[tokio::test]
async fn namespaces_use_the_accounts_and_bucket_names_the_administrator_gave_them() {
    let (plane, admin) = private_plane().await;
    let nats = NatsServer::start_with_config(
        "accounts {\n  OPS: { jetstream: enabled, users: [ { user: op, password: op-pw } ] }\n  A: { jetstream: enabled, users: [ { user: a, password: a-pw } ] }\n  B: { jetstream: enabled, users: [ { user: b, password: b-pw } ] }\n}\n",
    );
    let fake = FakeNats::start().await;
    let files = tempfile::tempdir().expect("dir");
    std::fs::write(files.path().join("a-pw"), "a-pw\n").expect("a-pw");
    std::fs::write(files.path().join("b-pw"), "b-pw").expect("b-pw");
    let tenants = json!({"tenants": [
        {"namespaces": ["team-a"], "buckets": ["payments", "a-*"],
         "connection": {"user": "a", "passwordFile": files.path().join("a-pw")}},
        {"namespaces": ["team-b"], "buckets": ["payments", "b-*"],
         "connection": {"user": "b", "passwordFile": files.path().join("b-pw")}}
    ]});
    let tenants_file = files.path().join("tenants.json");
    std::fs::write(&tenants_file, tenants.to_string()).expect("tenants file");
    let team_a = Tenant::create(&plane.kubeconfig, &admin, "team-a").await;
    let team_b = Tenant::create(&plane.kubeconfig, &admin, "team-b").await;
    let team_c = Tenant::create(&plane.kubeconfig, &admin, "team-c").await;
    let _operator = Operator::start_cluster_wide(
        &plane.kubeconfig,
        &nats.url(),
        &[
            "--user",
            "op",
            "--password",
            "op-pw",
            "--tenants",
            tenants_file.to_str().expect("path"),
            "--allowed-object-servers",
            &nats.url(),
        ],
    );
    let (a_buckets, a_entries) = team_a.kinds();
    let (b_buckets, b_entries) = team_b.kinds();
    create(&a_buckets, &bucket("payments", json!({}))).await;
    create(
        &a_entries,
        &entry("k", "payments", "k", "from-a", json!({})),
    )
    .await;
    create(
        &b_buckets,
        &bucket("payments", json!({"deletionPolicy": "Delete"})),
    )
    .await;
    create(
        &b_entries,
        &entry("k", "payments", "k", "from-b", json!({})),
    )
    .await;
    wait_entry(&a_entries, "k", true, None).await;
    wait_entry(&b_entries, "k", true, None).await;
    let account = |user: &str, password: &str| {
        let url = nats
            .url()
            .replace("nats://", &format!("nats://{user}:{password}@"));
        async move { async_nats::jetstream::new(connect_url(&url).await) }
    };
    let (a, b, ops) = (
        account("a", "a-pw").await,
        account("b", "b-pw").await,
        account("op", "op-pw").await,
    );
    assert_eq!(
        kv_get(&a, "payments", "k").await.as_deref(),
        Some(&b"from-a"[..])
    );
    assert_eq!(
        kv_get(&b, "payments", "k").await.as_deref(),
        Some(&b"from-b"[..])
    );
    assert!(
        ops.get_stream("KV_payments").await.is_err(),
        "the operator's own account holds no tenant bucket"
    );

    // Names the namespace was not given: its own, a mirror's, a source's.
    for (name, spec) in [
        ("theirs", json!({"bucket": "a-ledger"})),
        (
            "copy",
            json!({"bucket": "b-copy", "mirror": {"name": "a-ledger"}}),
        ),
        (
            "merge",
            json!({"bucket": "b-merge", "sources": [{"name": "b-x"}, {"name": "payments2"}]}),
        ),
    ] {
        let started = Instant::now();
        create(&b_buckets, &bucket(name, spec)).await;
        let refused = wait_bucket(&b_buckets, name, false, Some("BucketNotAllowed")).await;
        stalled_in_gitops_tools(&b_buckets, name, "BucketNotAllowed", started).await;
        let (_, _, message) =
            condition_of(&refused.status.expect("status").conditions, "Ready").expect("Ready");
        assert!(
            message.contains("team-b") && message.contains("b-*"),
            "{message}"
        );
    }
    // A server the administrator did not list is never contacted.
    let started = Instant::now();
    create(
        &b_buckets,
        &bucket("b-far", json!({"connection": {"servers": [fake.url]}})),
    )
    .await;
    stalled_in_gitops_tools(&b_buckets, "b-far", "ServerNotAllowed", started).await;
    // A listed one is, with the namespace's own identity when the object names none.
    create(
        &b_buckets,
        &bucket("b-near", json!({"connection": {"servers": [nats.url()]}})),
    )
    .await;
    // The object names no credentials and the server needs some: no identity went along.
    wait_bucket(&b_buckets, "b-near", false, None).await;
    // A namespace the file does not list gets no NATS at all.
    let c_buckets: Api<KeyValueBucket> = team_c.api();
    let started = Instant::now();
    create(&c_buckets, &bucket("b-anything", json!({}))).await;
    stalled_in_gitops_tools(&c_buckets, "b-anything", "NamespaceNotAllowed", started).await;

    // team-b deletes its payments with deletionPolicy Delete: team-a's stays, key and all.
    b_entries
        .delete("k", &DeleteParams::default())
        .await
        .expect("delete entry");
    b_buckets
        .delete("payments", &DeleteParams::default())
        .await
        .expect("delete bucket");
    wait_until("team-b's payments deleted", WAIT, || async {
        b.get_stream("KV_payments").await.is_err().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        kv_get(&a, "payments", "k").await.as_deref(),
        Some(&b"from-a"[..])
    );
    assert!(fake.connects().is_empty(), "{:?}", fake.connects());
}

/// Attack 4 and "nothing loops": a second entry for a key another entry holds (from
/// another namespace through an `Observe` bucket, or from the same namespace) is
/// refused with the holder named, under every update policy; the holder stays Ready
/// and names its rivals; no key is written in 15 s; deleting a rival writes no marker
/// on the holder's key; a holder deleted with `Retain` passes the key on.
#[tokio::test]
async fn a_key_another_entry_holds_is_never_written_and_nothing_loops() {
    let teams = two_teams().await;
    let (nats, team_a, team_b) = (&teams.nats, &teams.a, &teams.b);
    let (a_buckets, a_entries) = team_a.kinds();
    let (b_buckets, b_entries) = team_b.kinds();
    create(&a_buckets, &bucket("payments", json!({}))).await;
    create(
        &a_entries,
        &entry(
            "limit",
            "payments",
            "limit",
            "100",
            json!({"deletionPolicy": "Retain"}),
        ),
    )
    .await;
    wait_entry(&a_entries, "limit", true, None).await;
    create(
        &b_buckets,
        &bucket(
            "theirs",
            json!({"bucket": "payments", "managementPolicy": "Observe"}),
        ),
    )
    .await;
    let started = Instant::now();
    for (name, policy) in [("over", "Overwrite"), ("careful", "IfUnchanged")] {
        create(
            &b_entries,
            &entry(
                name,
                "theirs",
                "limit",
                "999999",
                json!({"updatePolicy": policy}),
            ),
        )
        .await;
    }
    create(
        &a_entries,
        &entry("limit-copy", "payments", "limit", "5", json!({})),
    )
    .await;
    for (api, name) in [
        (&b_entries, "over"),
        (&b_entries, "careful"),
        (&a_entries, "limit-copy"),
    ] {
        let refused = wait_entry(api, name, false, Some("ClaimedElsewhere")).await;
        stalled_in_gitops_tools(api, name, "ClaimedElsewhere", started).await;
        let (_, _, message) =
            condition_of(&refused.status.expect("status").conditions, "Ready").expect("Ready");
        assert!(message.contains("team-a/limit"), "{name}: {message}");
    }
    let holder = wait_until("the holder names its rivals", WAIT, || async {
        let holder = a_entries.get("limit").await.ok()?;
        let (ready, _, message) = condition_of(&holder.status?.conditions, "Ready")?;
        (ready
            && message.contains("team-b/over")
            && message.contains("team-b/careful")
            && message.contains("team-a/limit-copy"))
        .then_some(message)
    })
    .await;
    assert!(holder.contains("refused"), "{holder}");
    let js = nats.jetstream().await;
    let before = support::last_sequence(&js, "payments").await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        support::last_sequence(&js, "payments").await,
        before,
        "no key written while the rivals stand"
    );
    assert_eq!(
        kv_get(&js, "payments", "limit").await.as_deref(),
        Some(&b"100"[..])
    );

    // Deleting a rival (deletionPolicy Delete) leaves the holder's key alone.
    b_entries
        .delete("over", &DeleteParams::default())
        .await
        .expect("delete");
    b_entries
        .delete("careful", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until("the rivals are gone", WAIT, || async {
        (b_entries.get_opt("over").await.ok()?.is_none()
            && b_entries.get_opt("careful").await.ok()?.is_none())
        .then_some(())
    })
    .await;
    assert_eq!(support::last_sequence(&js, "payments").await, before);
    assert_eq!(
        kv_get(&js, "payments", "limit").await.as_deref(),
        Some(&b"100"[..])
    );

    // The holder goes, keeping its key (Retain): the remaining declaration takes it.
    a_entries
        .delete("limit", &DeleteParams::default())
        .await
        .expect("delete");
    wait_entry(&a_entries, "limit-copy", true, None).await;
    assert_eq!(
        kv_get(&js, "payments", "limit").await.as_deref(),
        Some(&b"5"[..])
    );
}

/// Another team's set, made by a tenant with namespace-local rights over the same NATS
/// bucket, declares a key team A's entry holds and owns the prefix exclusively: it
/// neither writes nor deletes team A's key (nor a byte of the bucket), says who holds
/// it, and its own key beside it is written.
#[tokio::test]
async fn a_set_never_writes_nor_prunes_a_key_another_teams_entry_holds() {
    let teams = two_teams().await;
    let (nats, team_a, team_b) = (&teams.nats, &teams.a, &teams.b);
    let (a_buckets, a_entries) = team_a.kinds();
    let (b_buckets, _) = team_b.kinds();
    create(&a_buckets, &bucket("payments", json!({}))).await;
    create(
        &a_entries,
        &entry("limit", "payments", "shared/limit", "100", json!({})),
    )
    .await;
    wait_entry(&a_entries, "limit", true, None).await;
    create(
        &b_buckets,
        &bucket(
            "theirs",
            json!({"bucket": "payments", "managementPolicy": "Observe"}),
        ),
    )
    .await;
    let sets: Api<KeyValueEntrySet> = team_b.api();
    let set: KeyValueEntrySet = serde_json::from_value(json!({
        "apiVersion": "kvop.dev/v1alpha1",
        "kind": "KeyValueEntrySet",
        "metadata": {"name": "grab"},
        "spec": {
            "bucketRef": {"name": "theirs"},
            "keyPrefix": "shared/",
            "prune": "Exclusive",
            "entries": [{"key": "limit", "value": "999999"}, {"key": "mine", "value": "b"}],
        },
    }))
    .expect("set");
    create(&sets, &set).await;
    let message = wait_until("team B's set reports the held key", WAIT, || async {
        let set = sets.get("grab").await.ok()?;
        let status = set.status?;
        let (ready, reason, message) = condition_of(&status.conditions, "Ready")?;
        let ready_false = !ready && reason == "ClaimedElsewhere";
        let listed = status.conflicts.iter().any(|conflict| {
            conflict.key == "shared/limit" && conflict.holder.contains("team-a/limit")
        });
        (ready_false && listed).then_some(message)
    })
    .await;
    assert!(message.contains("team-a/limit"), "{message}");
    let js = nats.jetstream().await;
    assert_eq!(
        kv_get(&js, "payments", "shared/mine").await.as_deref(),
        Some(&b"b"[..]),
        "the set's own key is written"
    );
    let before = support::last_sequence(&js, "payments").await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        support::last_sequence(&js, "payments").await,
        before,
        "nothing written while the claim stands: no loop"
    );
    assert_eq!(
        kv_get(&js, "payments", "shared/limit").await.as_deref(),
        Some(&b"100"[..]),
        "team A's key is neither overwritten nor pruned"
    );
    let holder = a_entries.get("limit").await.expect("holder");
    assert!(holder.status.is_some_and(|status| {
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
    }));
}

/// Counts the server's stream-updated advisories of a bucket from now on: every config
/// change anyone makes.
async fn count_config_updates(
    nats: &NatsServer,
    bucket: &str,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use futures::StreamExt;
    let client = nats.client().await;
    let mut advisories = client
        .subscribe(format!("$JS.EVENT.ADVISORY.STREAM.UPDATED.KV_{bucket}"))
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        let _client = client;
        while advisories.next().await.is_some() {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    count
}

/// Attacks 2 and 3 and "nothing loops": a second object declaring a bucket another
/// object holds (another namespace, another history) is refused with the holder named,
/// changes no config in 15 s, and deleting it with `deletionPolicy: Delete` leaves the
/// holder's bucket and data. The holder deleted with `Retain` and created again (a
/// GitOps re-apply) takes its own claim back.
#[tokio::test]
async fn a_bucket_another_object_holds_is_never_changed_nor_deleted() {
    let teams = two_teams().await;
    let (nats, team_a, team_b) = (&teams.nats, &teams.a, &teams.b);
    let a_buckets: Api<KeyValueBucket> = team_a.api();
    let b_buckets: Api<KeyValueBucket> = team_b.api();
    create(&a_buckets, &bucket("payments", json!({"history": 5}))).await;
    let holder = wait_bucket(&a_buckets, "payments", true, None).await;
    let js = nats.jetstream().await;
    // An application's own key, which no manifest declares.
    js.get_key_value("payments")
        .await
        .expect("bucket")
        .put("ledger", "app-data".into())
        .await
        .expect("put");
    let updates = count_config_updates(nats, "payments").await;
    create(
        &b_buckets,
        &bucket(
            "grab",
            json!({"bucket": "payments", "history": 1, "deletionPolicy": "Delete"}),
        ),
    )
    .await;
    let refused = wait_bucket(&b_buckets, "grab", false, Some("ClaimedElsewhere")).await;
    let (_, _, message) =
        condition_of(&refused.status.expect("status").conditions, "Ready").expect("Ready");
    assert!(message.contains("team-a/payments"), "{message}");
    // Attack 5 without any tenancy settings: a mirror or source of a bucket another
    // namespace holds would copy its data.
    create(
        &b_buckets,
        &bucket("copy", json!({"mirror": {"name": "payments"}})),
    )
    .await;
    create(
        &b_buckets,
        &bucket("merged", json!({"sources": [{"name": "payments"}]})),
    )
    .await;
    for name in ["copy", "merged"] {
        let refused = wait_bucket(&b_buckets, name, false, Some("ClaimedElsewhere")).await;
        let (_, _, message) =
            condition_of(&refused.status.expect("status").conditions, "Ready").expect("Ready");
        assert!(message.contains("team-a/payments"), "{name}: {message}");
        assert!(
            js.get_stream(format!("KV_{name}")).await.is_err(),
            "{name} not created"
        );
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        updates.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "no config change while the rival stands"
    );
    assert_eq!(
        support::stream_config(&js, "payments")
            .await
            .max_messages_per_subject,
        5
    );
    wait_bucket(&a_buckets, "payments", true, None).await;

    b_buckets
        .delete("grab", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until("the rival is gone", WAIT, || async {
        b_buckets
            .get_opt("grab")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        kv_get(&js, "payments", "ledger").await.as_deref(),
        Some(&b"app-data"[..]),
        "the holder's bucket and data are kept"
    );

    // Deleted with Retain and applied again: a new uid, the same namespace/name.
    a_buckets
        .delete("payments", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until("the holder is gone", WAIT, || async {
        a_buckets
            .get_opt("payments")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    create(&a_buckets, &bucket("payments", json!({"history": 5}))).await;
    let again = wait_bucket(&a_buckets, "payments", true, None).await;
    assert_ne!(again.metadata.uid, holder.metadata.uid);
    let metadata = js
        .get_stream("KV_payments")
        .await
        .expect("stream")
        .cached_info()
        .config
        .metadata
        .clone();
    assert_eq!(
        metadata.get("kvop.dev/claim-owner").map(String::as_str),
        Some("team-a/payments"),
        "{metadata:?}"
    );
    assert_eq!(
        metadata.get("kvop.dev/claim-uid"),
        again.metadata.uid.as_ref()
    );
    assert_eq!(
        kv_get(&js, "payments", "ledger").await.as_deref(),
        Some(&b"app-data"[..])
    );
}

/// Two namespaced operators with different managers, started at once, both create the
/// same bucket: the create is atomic, so exactly one claim holds and the other object
/// is refused; neither changes the config afterwards.
#[tokio::test]
async fn two_operators_racing_for_one_bucket_leave_one_claim_and_no_flips() {
    let (plane, admin) = private_plane().await;
    let nats = NatsServer::start();
    let team_a = Tenant::create(&plane.kubeconfig, &admin, "team-a").await;
    let team_b = Tenant::create(&plane.kubeconfig, &admin, "team-b").await;
    let a_buckets: Api<KeyValueBucket> = team_a.api();
    let b_buckets: Api<KeyValueBucket> = team_b.api();
    create(&a_buckets, &bucket("shared", json!({"history": 3}))).await;
    create(&b_buckets, &bucket("shared", json!({"history": 7}))).await;
    let _a = Operator::start(
        &plane.kubeconfig,
        "team-a",
        &nats.url(),
        &["--manager", "ops-a"],
    );
    let _b = Operator::start(
        &plane.kubeconfig,
        "team-b",
        &nats.url(),
        &["--manager", "ops-b"],
    );
    let verdicts = wait_until("both buckets decided", WAIT, || async {
        let a = ready_of(&a_buckets.get("shared").await.ok()?.status?.conditions)?;
        let b = ready_of(&b_buckets.get("shared").await.ok()?.status?.conditions)?;
        Some((a, b))
    })
    .await;
    let ((a_ready, a_reason), (b_ready, b_reason)) = verdicts;
    assert!(
        a_ready != b_ready,
        "exactly one holds: {a_reason} / {b_reason}"
    );
    let refused_reason = if a_ready { &b_reason } else { &a_reason };
    assert_eq!(refused_reason, "ClaimedElsewhere");
    let js = nats.jetstream().await;
    let history = support::stream_config(&js, "shared")
        .await
        .max_messages_per_subject;
    assert_eq!(history, if a_ready { 3 } else { 7 });
    let updates = count_config_updates(&nats, "shared").await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(updates.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(
        support::stream_config(&js, "shared")
            .await
            .max_messages_per_subject,
        history
    );
}

/// Deleting the `keyvalueentries` CRD (an Argo CD prune, a `helm uninstall` script)
/// deletes every entry: their finalizers are released without a single write to NATS
/// (it used to write a delete marker on every key). The CRDs carry the annotations that
/// keep Helm, Argo CD and Flux from deleting them. The CRD applied again, the operator
/// follows the new objects.
#[tokio::test]
async fn deleting_the_entry_crd_writes_nothing_to_nats() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let (plane, admin) = private_plane().await;
    let nats = NatsServer::start();
    let team = Tenant::create(&plane.kubeconfig, &admin, "team-a").await;
    let _operator = Operator::start_cluster_wide(&plane.kubeconfig, &nats.url(), &[]);
    let buckets: Api<KeyValueBucket> = team.api();
    let entries: Api<KeyValueEntry> = team.api();
    create(&buckets, &bucket("flags", json!({}))).await;
    for i in 0..20 {
        create(
            &entries,
            &entry(&format!("e{i}"), "flags", &format!("k{i}"), "on", json!({})),
        )
        .await;
    }
    for i in 0..20 {
        wait_entry(&entries, &format!("e{i}"), true, None).await;
    }
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let crd = crds.get("keyvalueentries.kvop.dev").await.expect("crd");
    let annotations = crd.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("helm.sh/resource-policy")
            .map(String::as_str),
        Some("keep")
    );
    assert!(
        annotations
            .get("argocd.argoproj.io/sync-options")
            .is_some_and(|options| options.contains("Prune=false"))
    );
    let js = nats.jetstream().await;
    let before = support::last_sequence(&js, "flags").await;
    crds.delete("keyvalueentries.kvop.dev", &DeleteParams::default())
        .await
        .expect("delete crd");
    wait_until("the entry CRD is gone", Duration::from_secs(60), || async {
        crds.get_opt("keyvalueentries.kvop.dev")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        support::last_sequence(&js, "flags").await,
        before,
        "no delete marker, no write"
    );
    assert_eq!(
        kv_get(&js, "flags", "k7").await.as_deref(),
        Some(&b"on"[..])
    );

    install_crds(&admin).await;
    let entries: Api<KeyValueEntry> = team.api();
    create(&entries, &entry("back", "flags", "back", "yes", json!({}))).await;
    wait_entry(&entries, "back", true, None).await;
    assert_eq!(
        kv_get(&js, "flags", "back").await.as_deref(),
        Some(&b"yes"[..])
    );
}
