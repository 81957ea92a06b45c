//! Multi-tenant test support: tenants as impersonated users holding only a namespace's
//! Role, and a fake NATS server that records what clients send it (the one thing a real
//! server cannot show: the credentials a client offered).

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A plane of the test's own, with kvop's CRDs, for a cluster-wide operator; and an
/// administrator's client.
pub async fn private_plane() -> (super::k8s::PrivatePlane, kube::Client) {
    let plane = super::k8s::PrivatePlane::start();
    let admin = super::k8s::client_for(&plane.kubeconfig).await;
    super::k8s::install_crds(&admin).await;
    (plane, admin)
}

/// The setup of most tenant tests: teams `team-a` and `team-b` on a plane of their own,
/// a nats-server, and a cluster-wide operator. Fields drop in order: the operator first.
pub struct TwoTeams {
    pub operator: super::k8s::Operator,
    pub a: Tenant,
    pub b: Tenant,
    pub nats: super::NatsServer,
    pub admin: kube::Client,
    pub plane: super::k8s::PrivatePlane,
}

pub async fn two_teams() -> TwoTeams {
    let (plane, admin) = private_plane().await;
    let nats = super::NatsServer::start();
    let a = Tenant::create(&plane.kubeconfig, &admin, "team-a").await;
    let b = Tenant::create(&plane.kubeconfig, &admin, "team-b").await;
    let operator = super::k8s::Operator::start_cluster_wide(&plane.kubeconfig, &nats.url(), &[]);
    TwoTeams {
        operator,
        a,
        b,
        nats,
        admin,
        plane,
    }
}

/// A namespace of one tenant, and a client acting as that tenant: an impersonated user
/// whose only rights are a Role in this namespace (buckets, entries, entry sets, Secrets,
/// ConfigMaps), what a platform team hands each team.
pub struct Tenant {
    pub namespace: String,
    pub client: kube::Client,
}

impl Tenant {
    pub async fn create(kubeconfig: &std::path::Path, admin: &kube::Client, name: &str) -> Tenant {
        let namespaces: Api<Namespace> = Api::all(admin.clone());
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create namespace");
        let roles: Api<Role> = Api::namespaced(admin.clone(), name);
        let role: Role = serde_json::from_value(json!({
            "metadata": {"name": "tenant"},
            "rules": [
                {"apiGroups": ["kvop.dev"], "resources": ["keyvaluebuckets", "keyvalueentries", "keyvalueentrysets"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["*"]}
            ]
        }))
        .expect("role");
        roles
            .create(&PostParams::default(), &role)
            .await
            .expect("create role");
        let user = format!("{name}-user");
        let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), name);
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "tenant"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
        }))
        .expect("binding");
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .expect("create binding");
        let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kubeconfig");
        config.auth_info.impersonate = Some(user);
        let client = kube::Client::try_from(config).expect("client");
        Tenant {
            namespace: name.to_string(),
            client,
        }
    }

    /// Its bucket and entry APIs, the two most tests declare with.
    pub fn kinds(
        &self,
    ) -> (
        Api<kvop::api::KeyValueBucket>,
        Api<kvop::api::KeyValueEntry>,
    ) {
        (self.api(), self.api())
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

/// A TCP server that speaks the first line of the NATS protocol: it sends `INFO`
/// (asking for authentication), records every `CONNECT` a client answers with, refuses
/// it and closes.
pub struct FakeNats {
    pub url: String,
    connects: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl FakeNats {
    pub async fn start() -> FakeNats {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("nats://{}", listener.local_addr().expect("address"));
        let connects = Arc::new(Mutex::new(Vec::new()));
        let recorded = connects.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let info = "INFO {\"server_id\":\"FAKE\",\"server_name\":\"fake\",\"version\":\"2.15.1\",\"proto\":1,\"go\":\"go1.24\",\"host\":\"127.0.0.1\",\"port\":4222,\"headers\":true,\"max_payload\":1048576,\"auth_required\":true}\r\n";
                    if write.write_all(info.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(connect) = line.strip_prefix("CONNECT ") {
                            recorded.lock().expect("lock").push(connect.to_string());
                            let _ = write.write_all(b"-ERR 'Authorization Violation'\r\n").await;
                            return;
                        }
                    }
                });
            }
        });
        FakeNats {
            url,
            connects,
            _task: task,
        }
    }

    /// Every `CONNECT` received so far, as JSON.
    pub fn connects(&self) -> Vec<serde_json::Value> {
        self.connects
            .lock()
            .expect("lock")
            .iter()
            .map(|text| serde_json::from_str(text).unwrap_or(serde_json::Value::Null))
            .collect()
    }
}
