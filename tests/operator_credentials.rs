//! `kvop run` against a real kube-apiserver and nats-server: values and connection
//! credentials read from Secrets, followed through their rotation, never shown.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::k8s::{Operator, plane, wait_until};
use support::resources::*;
use support::{NatsServer, kv_get, marked_sensitive};

#[tokio::test]
async fn a_value_from_a_secret_follows_its_rotation_and_never_shows_in_status() {
    let s = setup("secret").await;
    // Every log line of every component, the NATS and Kubernetes clients' included.
    let operator = Operator::start(
        &plane().kubeconfig,
        &s.namespace,
        &s.nats.url(),
        &["--log-level", "trace"],
    );
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "db"}, "stringData": {"password": "first-s3cret"}}),
    )
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    create(&s.buckets, &bucket("b", json!({}))).await;
    let mut from = entry(
        "pw",
        "b",
        "db.password",
        "",
        json!({"valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}),
    );
    from.spec.value = None;
    create(&s.entries, &from).await;
    wait_value(&s.nats, "b", "db.password", Some("first-s3cret")).await;
    secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"password": "second-s3cret"}})),
        )
        .await
        .expect("rotate");
    wait_value(&s.nats, "b", "db.password", Some("second-s3cret")).await;
    assert!(
        marked_sensitive(&s.nats.jetstream().await, "b", "db.password").await,
        "the message says its value came from a Secret, for whoever reads it later"
    );
    let status =
        serde_json::to_string(&s.entries.get("pw").await.expect("entry").status).expect("json");
    assert!(
        !status.contains("s3cret"),
        "status never holds the value: {status}"
    );
    // Not even a digest: an unsalted sha256 of a short secret gives it away.
    let status = s
        .entries
        .get("pw")
        .await
        .expect("entry")
        .status
        .expect("status");
    assert_eq!(status.value_digest, None);
    assert!(status.revision.is_some());
    assert!(
        !operator.logs().contains("s3cret"),
        "logs never hold the value"
    );
}

#[tokio::test]
async fn a_bucket_connects_with_credentials_from_a_secret_and_follows_their_rotation() {
    let s = setup("connection").await;
    let secured = NatsServer::start_with_config(
        "authorization { users: [ { user: app, password: \"first-pw\" } ] }\n",
    );
    let operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let credentials: Secret = serde_json::from_value(json!({"metadata": {"name": "nats-user"}, "stringData": {"user": "app", "password": "first-pw"}})).expect("secret");
    secrets
        .create(&PostParams::default(), &credentials)
        .await
        .expect("secret");
    let connection = json!({"servers": [secured.url()], "userSecretRef": {"name": "nats-user"}});
    create(
        &s.buckets,
        &bucket("private", json!({"connection": connection})),
    )
    .await;
    create(
        &s.entries,
        &entry("token", "private", "api.token", "t1", json!({})),
    )
    .await;
    wait_entry(&s.entries, "token", true, None).await;
    let authed =
        async_nats::ConnectOptions::with_user_and_password("app".into(), "first-pw".into())
            .connect(secured.url())
            .await
            .expect("connect");
    let js = async_nats::jetstream::new(authed);
    assert_eq!(
        kv_get(&js, "private", "api.token").await.as_deref(),
        Some(&b"t1"[..]),
        "written through the bucket's own connection"
    );
    assert!(
        s.nats
            .jetstream()
            .await
            .get_stream("KV_private")
            .await
            .is_err(),
        "not on the default server"
    );

    secrets
        .patch(
            "nats-user",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"password": "rotated-wrong"}})),
        )
        .await
        .expect("rotate");
    wait_bucket(&s.buckets, "private", false, Some("Unauthorized")).await;
    secrets
        .patch(
            "nats-user",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"password": "first-pw"}})),
        )
        .await
        .expect("rotate back");
    wait_bucket(&s.buckets, "private", true, None).await;
    merge(&s.entries, "token", json!({"spec": {"value": "t2"}}))
        .await
        .expect("update");
    wait_until("t2 on the secured server", WAIT, || async {
        (kv_get(&js, "private", "api.token").await.as_deref() == Some(&b"t2"[..])).then_some(())
    })
    .await;
    let logs = operator.logs();
    assert!(
        !logs.contains("first-pw") && !logs.contains("rotated-wrong"),
        "credentials never reach the logs"
    );
}

/// A namespace whose connection Secret goes before its objects (namespace deletion
/// deletes them in any order) must finish terminating: the bucket and entry are let go
/// with a Warning, their data stays, and nothing falls back to the operator's identity.
#[tokio::test]
async fn objects_whose_connection_secret_is_gone_are_let_go_and_their_data_kept() {
    let s = setup("secret-gone").await;
    let secured = NatsServer::start_with_config(
        "authorization { users: [ { user: app, password: \"pw\" } ] }\n",
    );
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let credentials: Secret = serde_json::from_value(
        json!({"metadata": {"name": "nats-user"}, "stringData": {"user": "app", "password": "pw"}}),
    )
    .expect("secret");
    secrets
        .create(&PostParams::default(), &credentials)
        .await
        .expect("secret");
    let connection = json!({"servers": [secured.url()], "userSecretRef": {"name": "nats-user"}});
    create(
        &s.buckets,
        &bucket(
            "kept",
            json!({"connection": connection, "deletionPolicy": "Delete"}),
        ),
    )
    .await;
    create(&s.entries, &entry("k", "kept", "k", "v", json!({}))).await;
    wait_entry(&s.entries, "k", true, None).await;
    secrets
        .delete("nats-user", &Default::default())
        .await
        .expect("delete secret");
    s.entries
        .delete("k", &Default::default())
        .await
        .expect("delete entry");
    s.buckets
        .delete("kept", &Default::default())
        .await
        .expect("delete bucket");
    wait_until("both objects gone", WAIT, || async {
        (s.entries.get_opt("k").await.ok()?.is_none()
            && s.buckets.get_opt("kept").await.ok()?.is_none())
        .then_some(())
    })
    .await;
    let authed = async_nats::ConnectOptions::with_user_and_password("app".into(), "pw".into())
        .connect(secured.url())
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(authed);
    assert_eq!(
        kv_get(&js, "kept", "k").await.as_deref(),
        Some(&b"v"[..]),
        "data kept"
    );
    assert!(
        s.nats
            .jetstream()
            .await
            .get_stream("KV_kept")
            .await
            .is_err(),
        "nothing went to the operator's own server"
    );
    let warnings = event_notes(&s.client, &s.namespace, "k", "KeyRetained").await;
    assert!(
        warnings
            .iter()
            .any(|note| note.contains("connection") && note.contains("does not exist")),
        "{warnings:?}"
    );
}

/// A missing Secret and a Secret without the key are told apart (a deleted Secret used
/// to read "Secret ns/db has no key \"password\"").
#[tokio::test]
async fn a_missing_secret_and_a_missing_key_are_told_apart() {
    let s = setup("secret-missing").await;
    let _operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({}))).await;
    let mut from = entry(
        "pw",
        "b",
        "pw",
        "",
        json!({"valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}),
    );
    from.spec.value = None;
    create(&s.entries, &from).await;
    let message = |entry: kvop::api::KeyValueEntry| {
        condition_of(&entry.status.expect("status").conditions, "Ready")
            .expect("Ready")
            .2
    };
    let missing = wait_entry(&s.entries, "pw", false, Some("ReferenceNotFound")).await;
    let namespace = &s.namespace;
    assert_eq!(
        message(missing),
        format!("Secret {namespace}/db does not exist")
    );
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let other: Secret =
        serde_json::from_value(json!({"metadata": {"name": "db"}, "stringData": {"user": "app"}}))
            .expect("secret");
    secrets
        .create(&PostParams::default(), &other)
        .await
        .expect("secret");
    let no_key = wait_until("the key is named missing", WAIT, || async {
        let text = message(s.entries.get("pw").await.ok()?);
        text.contains("has no key").then_some(text)
    })
    .await;
    assert_eq!(
        no_key,
        format!("Secret {namespace}/db has no key \"password\"")
    );
}
