//! The GitOps tools' own verdicts on live objects: kstatus (sigs.k8s.io/cli-utils, what
//! Flux's health checks and `wait` use) and Argo CD's health Lua under gopher-lua, both
//! in tests/env/gitops-health.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::Api;

use super::k8s::{Object, live_json, wait_until};

/// The kstatus and Argo CD health checker of tests/env/gitops-health:
/// `KVOP_GITOPS_HEALTH`, or built (once, cached) by tests/env/gitops-health.sh.
pub fn gitops_health_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Ok(path) = std::env::var("KVOP_GITOPS_HEALTH") {
                return PathBuf::from(path);
            }
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env/gitops-health.sh");
            let output = Command::new("bash")
                .arg(&script)
                .stderr(Stdio::inherit())
                .output()
                .expect("run tests/env/gitops-health.sh");
            assert!(
                output.status.success(),
                "tests/env/gitops-health.sh failed: Go is needed to build kstatus and gopher-lua"
            );
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        })
        .clone()
}

/// Runs tests/env/gitops-health with `mode` (`[]`: health; `["--action"]`,
/// `["--discovery"]`) and `script` on `objects`; what it prints, parsed.
pub async fn gitops_health(
    mode: &[&str],
    script: &str,
    objects: &[serde_json::Value],
) -> Vec<serde_json::Value> {
    use tokio::io::AsyncWriteExt;
    let lua = tempfile::NamedTempFile::new().expect("lua file");
    std::fs::write(lua.path(), script).expect("write the Lua");
    let mut child = tokio::process::Command::new(gitops_health_binary())
        .args(mode)
        .arg(lua.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gitops-health");
    let input = serde_json::to_vec(objects).expect("objects as JSON");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&input).await.expect("write the objects");
    drop(stdin);
    let output = child.wait_with_output().await.expect("gitops-health");
    assert!(
        output.status.success(),
        "gitops-health: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("gitops-health's output")
}

/// How soon kstatus must say `Failed` after a stalled object's cause: a Flux `wait` or
/// health check then fails within seconds instead of at its timeout.
pub const STALLED_WITHIN: Duration = Duration::from_secs(15);

/// Waits until the object is `Stalled` with `reason` and kstatus says `Failed` and
/// Argo CD `Degraded`, at most [`STALLED_WITHIN`] from `since` (when its cause was
/// made); returns how long that took.
pub async fn stalled_in_gitops_tools<K: Object>(
    api: &Api<K>,
    name: &str,
    reason: &str,
    since: Instant,
) -> Duration {
    let left = STALLED_WITHIN.saturating_sub(since.elapsed());
    let what = format!("{name}: Stalled ({reason}), kstatus Failed, Argo CD Degraded");
    wait_until(&what, left, || async {
        let object = live_json(api, name).await;
        let conditions = object["status"]["conditions"].as_array()?;
        conditions.iter().find(|condition| {
            condition["type"] == "Stalled"
                && condition["status"] == "True"
                && condition["reason"] == reason
        })?;
        let verdict = gitops_health(&[], &kvop::operator::argocd::health_lua(), &[object])
            .await
            .remove(0);
        (verdict["kstatus"] == "Failed" && verdict["argo"] == "Degraded").then_some(())
    })
    .await;
    let took = since.elapsed();
    eprintln!("{name}: {reason} read as Failed in kstatus after {took:?}");
    took
}
