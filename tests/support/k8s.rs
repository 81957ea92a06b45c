//! Kubernetes test support: a real kube-apiserver (from tests/env), the CRDs, a fresh
//! namespace per test, and `kvop run` as a process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A control plane: admin and unprivileged kubeconfigs.
pub struct Plane {
    pub kubeconfig: PathBuf,
    pub limited_kubeconfig: PathBuf,
}

/// The plane of this test process: `KVOP_TEST_KUBECONFIG` (set by tests/run), or one
/// started for this process and stopped by a watchdog when it exits.
pub fn plane() -> &'static Plane {
    static PLANE: OnceLock<Plane> = OnceLock::new();
    PLANE.get_or_init(|| {
        if let Ok(path) = std::env::var("KVOP_TEST_KUBECONFIG") {
            let kubeconfig = PathBuf::from(path);
            let limited = std::env::var("KVOP_TEST_LIMITED_KUBECONFIG").map(PathBuf::from).unwrap_or_else(|_| kubeconfig.with_file_name("kubeconfig-limited"));
            return Plane { kubeconfig, limited_kubeconfig: limited };
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env/k8s-for-process.sh");
        let dir = std::env::temp_dir().join(format!("kvop-plane-{}", std::process::id()));
        let output = Command::new("bash")
            .arg(&script)
            .arg(std::process::id().to_string())
            .arg(&dir)
            .stderr(Stdio::inherit())
            .output()
            .expect("run tests/env/k8s-for-process.sh");
        assert!(
            output.status.success(),
            "could not start a Kubernetes control plane for the operator tests (needs Go to build kube-apiserver once; see tests/env/README.md), or set KVOP_TEST_KUBECONFIG"
        );
        let kubeconfig = PathBuf::from(String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().trim());
        Plane { limited_kubeconfig: dir.join("kubeconfig-limited"), kubeconfig }
    })
}

/// A client for `kubeconfig`.
pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    kube::Client::try_from(config).expect("client")
}

/// An admin client with the CRDs installed and established.
pub async fn admin() -> kube::Client {
    let client = client_for(&plane().kubeconfig).await;
    install_crds(&client).await;
    client
}

/// Server-side applies kvop's CRDs and waits until they are established.
pub async fn install_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in kvop::crds::all() {
        let name = crd.metadata.name.clone().expect("crd name");
        crds.patch(
            &name,
            &PatchParams::apply("kvop-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply CRD");
        wait_until(
            &format!("CRD {name} established"),
            Duration::from_secs(30),
            || async {
                let crd = crds.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            },
        )
        .await;
    }
}

/// A fresh namespace (namespaces are never deleted here: no controller-manager).
pub async fn namespace(client: &kube::Client, prefix: &str) -> String {
    let name = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    name
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Polls `check` until it yields a value, or panics after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `kvop run` as a process, killed when dropped.
pub struct Operator {
    child: Option<Child>,
    pub log: PathBuf,
    pub metrics_port: u16,
    _dir: tempfile::TempDir,
}

impl Operator {
    /// Starts the operator for one namespace with short intervals.
    pub fn start(kubeconfig: &Path, namespace: &str, nats_url: &str, extra: &[&str]) -> Operator {
        Self::launch(kubeconfig, Some(namespace), nats_url, extra)
    }

    /// Starts the operator for every namespace, as a cluster-wide install runs: only on
    /// a plane of the test's own ([`PrivatePlane`]), where no other test's objects are.
    pub fn start_cluster_wide(kubeconfig: &Path, nats_url: &str, extra: &[&str]) -> Operator {
        Self::launch(kubeconfig, None, nats_url, extra)
    }

    fn launch(
        kubeconfig: &Path,
        namespace: Option<&str>,
        nats_url: &str,
        extra: &[&str],
    ) -> Operator {
        let dir = tempfile::tempdir().expect("operator dir");
        let log = dir.path().join("operator.log");
        let metrics_port = super::free_port();
        // Short intervals unless the test sets its own.
        let mut defaults = vec!["run"];
        if let Some(namespace) = namespace {
            defaults.extend(["--namespace", namespace]);
        }
        if !extra.contains(&"--status-interval") {
            defaults.extend(["--status-interval", "1s"]);
        }
        if !extra.contains(&"--resync-interval") {
            defaults.extend(["--resync-interval", "1m"]);
        }
        if !extra.contains(&"--secret-refresh-interval") {
            defaults.extend(["--secret-refresh-interval", "1s"]);
        }
        if !extra.contains(&"--log-level") {
            defaults.extend(["--log-level", "info,kvop=debug"]);
        }
        let child = Command::new(env!("CARGO_BIN_EXE_kvop"))
            .args(defaults)
            .args(["--metrics-address", &format!("127.0.0.1:{metrics_port}")])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("NATS_URL", nats_url)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start kvop run");
        Operator {
            child: Some(child),
            log,
            metrics_port,
            _dir: dir,
        }
    }

    /// The operator's log so far (for failure messages).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().ok().flatten().is_none())
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The /metrics text.
    pub async fn metrics(&self) -> String {
        scrape_metrics(self.metrics_port).await
    }

    /// Its `kvop_reconciles_total` for `kind` (0 before the kind's first reconcile).
    pub async fn reconciles(&self, kind: &str) -> u64 {
        let prefix = format!("kvop_reconciles_total{{kind=\"{kind}\"}} ");
        self.metrics()
            .await
            .lines()
            .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits for the process to exit by itself, and returns how it did.
    pub async fn exited(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("the operator was killed");
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {timeout:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then [`Operator::exited`].
    pub async fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let pid = self.pid().expect("the operator was killed");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM {pid}");
        self.exited(timeout).await
    }
}

/// The /metrics text of an operator listening on `port`, empty while it does not answer.
pub async fn scrape_metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut socket) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let _ = socket
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await;
    let mut body = String::new();
    let _ = socket.read_to_string(&mut body).await;
    body
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- operator log ---\n{}", self.logs());
        }
        self.kill();
    }
}

/// A control plane of one test's own, for faults that would break other tests (a frozen
/// apiserver): started with tests/env/k8s-up.sh, stopped (and thawed) when dropped.
pub struct PrivatePlane {
    dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl PrivatePlane {
    pub fn start() -> PrivatePlane {
        let dir = tempfile::tempdir().expect("plane dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env/k8s-up.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()
            .expect("run tests/env/k8s-up.sh");
        assert!(output.status.success(), "tests/env/k8s-up.sh failed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let kubeconfig = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        PrivatePlane { dir, kubeconfig }
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the plane's kube-apiserver.
    pub fn signal_apiserver(&self, signal: &str) {
        let pid = std::fs::read_to_string(self.dir.path().join("kube-apiserver.pid"))
            .expect("kube-apiserver.pid");
        let status = Command::new("kill")
            .args([&format!("-{signal}"), pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} kube-apiserver");
    }
}

impl Drop for PrivatePlane {
    fn drop(&mut self) {
        self.signal_apiserver("CONT");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env/k8s-down.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .status();
    }
}

/// A kind these tests fetch as JSON and patch.
pub trait Object:
    kube::Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
{
}

impl<K> Object for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
{
}

/// The object as the apiserver returns it now, as JSON.
pub async fn live_json<K: Object>(api: &Api<K>, name: &str) -> serde_json::Value {
    serde_json::to_value(api.get(name).await.expect("get")).expect("as JSON")
}
