//! Test support for kvop running as pods on the test node (tests/env/node-test.sh): the
//! release it installed, its pods and Lease, the containers as the node runs them, and a
//! report of what the tests measured.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::k8s::{client_for, wait_until};

/// The release node-test.sh installed and how to reach everything around it.
pub struct Node {
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    /// NATS as the tests' own user (not kvop's credentials).
    pub nats_url: String,
    pub release: String,
    pub namespace: String,
    /// The node's containerd socket, for what the kubelet does not report (PIDs).
    pub containerd: PathBuf,
    pub report: Option<PathBuf>,
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests run against the test node, through tests/env/node-test.sh")
    })
}

/// The node from node-test.sh's environment.
pub async fn node() -> Node {
    let kubeconfig = PathBuf::from(required("KVOP_NODE_KUBECONFIG"));
    Node {
        client: client_for(&kubeconfig).await,
        kubeconfig,
        nats_url: required("KVOP_NODE_NATS_URL"),
        release: required("KVOP_NODE_RELEASE"),
        namespace: required("KVOP_NODE_RELEASE_NAMESPACE"),
        containerd: PathBuf::from(required("KVOP_NODE_CONTAINERD")),
        report: std::env::var("KVOP_NODE_REPORT").ok().map(PathBuf::from),
    }
}

/// The chart's full name for a release whose name contains `kvop` (node-test.sh's).
pub fn fullname(node: &Node) -> &str {
    &node.release
}

impl Node {
    pub fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The release's pods (the chart's selector labels), running or not.
    pub async fn pods(&self) -> Vec<Pod> {
        let selector = format!(
            "app.kubernetes.io/name=kvop,app.kubernetes.io/instance={}",
            self.release
        );
        self.pods_api()
            .list(&ListParams::default().labels(&selector))
            .await
            .expect("list the release's pods")
            .items
    }

    /// The Lease's holder identity (`<pod name>-<pid>`), empty when released.
    pub async fn lease_holder(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        leases
            .get_opt(&format!("{}-leader", fullname(self)))
            .await
            .ok()??
            .spec?
            .holder_identity
    }

    /// The name of the pod holding the Lease, once one does.
    pub async fn leader_pod(&self) -> String {
        wait_until("a leader", Duration::from_secs(60), || async {
            let holder = self.lease_holder().await?;
            self.pods()
                .await
                .into_iter()
                .filter_map(|pod| pod.metadata.name)
                .find(|name| holder_is_pod(&holder, name))
        })
        .await
    }

    /// Waits until the Deployment has `replicas` pods, all Running and Ready, none
    /// terminating, and returns them.
    pub async fn wait_settled(&self, replicas: usize) -> Vec<Pod> {
        wait_until(
            &format!("{replicas} ready pods of the release, none terminating"),
            Duration::from_secs(120),
            || async {
                let pods = self.pods().await;
                (pods.len() == replicas && pods.iter().all(is_running_and_ready)).then_some(pods)
            },
        )
        .await
    }

    /// `kubectl` against the node, as a user would type it; panics on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let kubectl = std::env::var("KVOP_KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let output = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl");
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The host PID of a container, from the node's containerd (`ctr tasks ls`).
    pub fn container_pid(&self, container_id: &str) -> u32 {
        let output = Command::new("ctr")
            .arg("--address")
            .arg(&self.containerd)
            .args(["-n", "k8s.io", "tasks", "ls"])
            .output()
            .expect("run ctr");
        assert!(output.status.success(), "ctr tasks ls failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next() == Some(container_id)).then(|| fields.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no running task {container_id} in the node's containerd"))
    }

    /// Appends a line to the node report (printed by node-test.sh) and to stderr.
    pub fn report(&self, line: &str) {
        eprintln!("report: {line}");
        if let Some(path) = &self.report {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open the node report");
            writeln!(file, "{line}").expect("write the node report");
        }
    }
}

/// A Lease holder identity is `<pod name>-<pid>` (kvop's default with POD_NAME set).
pub fn holder_is_pod(holder: &str, pod: &str) -> bool {
    holder
        .strip_prefix(pod)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|pid| !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()))
}

pub fn is_running_and_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    pod.metadata.deletion_timestamp.is_none()
        && status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The containerd ID of the pod's kvop container.
pub fn container_id(pod: &Pod) -> String {
    let status = pod
        .status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .and_then(|statuses| statuses.iter().find(|s| s.name == "kvop"))
        .expect("the kvop container's status");
    status
        .container_id
        .as_deref()
        .and_then(|id| id.strip_prefix("containerd://"))
        .expect("a containerd container ID")
        .to_string()
}

pub fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|status| status.pod_ip.clone())
        .expect("pod IP")
}

/// GET `path` over plain HTTP/1.1; the whole response, empty while nothing answers.
pub async fn http_get(address: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut socket)) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(address),
    )
    .await
    else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    let _ = socket.write_all(request.as_bytes()).await;
    let mut response = String::new();
    let _ =
        tokio::time::timeout(Duration::from_secs(5), socket.read_to_string(&mut response)).await;
    response
}

/// The value of an unlabelled gauge or counter in Prometheus text, if present.
pub fn metric_value(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let value = rest.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}
