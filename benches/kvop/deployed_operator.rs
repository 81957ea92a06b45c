//! `kvop run` as deployed: the release binary with its default intervals and log level,
//! for B5. The tests' launcher (tests/support/k8s.rs) refreshes bucket statistics every
//! second and logs at debug level to keep tests short and readable; under a burst those
//! settings cost time a cluster does not spend (BENCHMARKS.md), so B5 runs what a
//! cluster runs.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::free_port;
use crate::support::k8s::scrape_metrics;

/// The operator process, killed when dropped (also when the bench panics).
pub struct DeployedOperator {
    child: Child,
    log: tempfile::TempDir,
    pub metrics_port: u16,
}

impl DeployedOperator {
    /// Starts `kvop run` for one namespace; only what a cluster must set is set.
    pub fn start(kubeconfig: &Path, namespace: &str, nats_url: &str) -> DeployedOperator {
        let log = tempfile::tempdir().expect("operator log dir");
        let metrics_port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_kvop"))
            .args(["run", "--namespace", namespace])
            .args(["--metrics-address", &format!("127.0.0.1:{metrics_port}")])
            .env("KUBECONFIG", kubeconfig)
            .env("NATS_URL", nats_url)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log.path().join("operator.log")).expect("log"))
            .spawn()
            .expect("start kvop run");
        DeployedOperator {
            child,
            log,
            metrics_port,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// The /metrics text, empty while the endpoint does not answer.
    pub async fn metrics(&self) -> String {
        scrape_metrics(self.metrics_port).await
    }
}

impl Drop for DeployedOperator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.log.path().join("operator.log")).unwrap_or_default();
            eprintln!("--- operator log (warnings and errors) ---\n{log}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
