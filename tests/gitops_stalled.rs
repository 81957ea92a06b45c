//! Every stalled reason that one operator reaches with real nats-servers (a default one,
//! and one with users and permissions) reads `Failed` in kstatus and `Degraded` in Argo
//! CD's health check within 15 s of its cause, so a Flux `wait` fails fast instead of at
//! its timeout. The tenancy reasons (`ServerNotAllowed`, `BucketNotAllowed`,
//! `NamespaceNotAllowed`, `ClaimedElsewhere`) are checked the same way in tests/tenants.rs,
//! where the operator runs with tenancy settings.

mod support;

use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;
use support::NatsServer;
use support::gitops::stalled_in_gitops_tools;
use support::k8s::{Operator, plane};
use support::resources::*;

/// Users of the secured server: `app` may do anything, `limited` may not create the
/// bucket `denied`.
const USERS: &str = r#"authorization {
  users: [
    { user: app, password: "app-pw" }
    { user: limited, password: "limited-pw", permissions: { publish: { deny: ["$JS.API.STREAM.CREATE.KV_denied"] } } }
  ]
}
"#;

#[tokio::test]
async fn every_stalled_reason_reads_failed_in_kstatus_within_15_seconds_of_its_cause() {
    let s = setup("stalled").await;
    let secured = NatsServer::start_with_config(USERS);
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    for (name, data) in [
        (
            "wrong-password",
            json!({"user": "app", "password": "not-it"}),
        ),
        (
            "limited",
            json!({"user": "limited", "password": "limited-pw"}),
        ),
        ("garbage-creds", json!({"creds": "this is no .creds file"})),
    ] {
        create_secret(&secrets, name, data).await;
    }
    create(&s.buckets, &bucket("b", json!({"maxValueSize": 256}))).await;
    wait_bucket(&s.buckets, "b", true, None).await;
    let js = s.nats.jetstream().await;
    js.get_key_value("b")
        .await
        .expect("bucket b")
        .put("theirs", "foreign".into())
        .await
        .expect("a foreign put");
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: "foreign".into(),
        ..Default::default()
    })
    .await
    .expect("a bucket kvop did not create");
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: "in-memory".into(),
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .expect("a memory bucket");

    let user = |secret: &str| json!({"connection": {"servers": [secured.url()], "userSecretRef": {"name": secret}}});
    let mut took = Vec::new();
    let started = Instant::now();
    let big = "x".repeat(1024);
    create(&s.entries, &entry("big", "b", "big", &big, json!({}))).await;
    took.push(stalled_in_gitops_tools(&s.entries, "big", "InvalidSpec", started).await);

    let started = Instant::now();
    let if_unchanged = json!({"updatePolicy": "IfUnchanged"});
    create(
        &s.entries,
        &entry("theirs", "b", "theirs", "v", if_unchanged),
    )
    .await;
    took.push(stalled_in_gitops_tools(&s.entries, "theirs", "Conflict", started).await);

    // Adopted, but declared with file storage: the server cannot change it (the CRD
    // refuses a storage change on an object, so this is how a user meets it).
    let started = Instant::now();
    let mut adopted = bucket("in-memory", json!({"storage": "file"}));
    adopted.metadata.annotations = Some([("kvop.dev/adopt".into(), "true".into())].into());
    create(&s.buckets, &adopted).await;
    let reason = "ImmutableFieldChanged";
    took.push(stalled_in_gitops_tools(&s.buckets, "in-memory", reason, started).await);

    let buckets = [
        (
            "absent",
            json!({"managementPolicy": "Observe"}),
            "BucketMissing",
        ),
        ("foreign", json!({}), "AdoptionRequired"),
        ("replicated", json!({"replicas": 3}), "Rejected"),
        ("wrong-password", user("wrong-password"), "Unauthorized"),
        ("denied", user("limited"), "Forbidden"),
        (
            "garbage",
            json!({"connection": {"credentialsSecretRef": {"name": "garbage-creds", "key": "creds"}}}),
            "InvalidConnectionSettings",
        ),
    ];
    for (name, spec, reason) in buckets {
        let started = Instant::now();
        create(&s.buckets, &bucket(name, spec)).await;
        took.push(stalled_in_gitops_tools(&s.buckets, name, reason, started).await);
    }
    eprintln!("slowest: {:?}", took.iter().max());
}
