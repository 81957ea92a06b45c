//! M1: peak RSS of `kvop reconcile -f` at 100,000 and 200,000 entries, dry, real (every
//! key created) and real again (every key read back, nothing written), next to the
//! manifest bytes (issue 16, defect 13). The allowance is 3× the manifest bytes plus
//! 50 MB.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::NatsServer;

pub struct Peak {
    pub manifest_bytes: u64,
    pub dry_kib: u64,
    pub real_kib: u64,
    pub real_time: Duration,
    /// The same real run again: nothing to write, every declared key observed.
    pub rerun_kib: u64,
    pub rerun_time: Duration,
}

impl Peak {
    pub fn allowance_kib(&self) -> u64 {
        (3 * self.manifest_bytes + 50_000_000) / 1024
    }
}

/// Writes `entries` entries in 10 buckets, one file per bucket; returns their bytes.
fn write(dir: &Path, entries: usize) -> u64 {
    let per_bucket = entries / 10;
    let mut bytes = 0;
    for b in 0..10 {
        let mut text = format!(
            "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueBucket\nmetadata:\n  name: mem{b}\nspec:\n  history: 1\n"
        );
        for k in 0..per_bucket {
            text.push_str(&format!(
                "---\napiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e-{b}-{k}\nspec:\n  bucketRef:\n    name: mem{b}\n  key: config.k{k}\n  value: \"value-{k}-{}\"\n",
                "x".repeat(100)
            ));
        }
        bytes += text.len() as u64;
        std::fs::write(dir.join(format!("bucket{b}.yaml")), text).expect("write manifests");
    }
    bytes
}

/// Runs kvop to its end, sampling its peak RSS (VmHWM, which only grows) every 2 ms:
/// the last sample before exit misses at most the last 2 ms, when memory is freed.
fn peak_of(url: &str, dir: &Path, extra: &[&str]) -> (u64, Duration) {
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kvop"))
        .args(["reconcile", "-f"])
        .arg(dir)
        .args(extra)
        .env("NATS_URL", url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run kvop");
    let mut peak = 0;
    loop {
        if let Some(kib) = crate::operator_burst::peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(
                status.code().is_some_and(|code| code == 0 || code == 2),
                "kvop failed: {status}"
            );
            return (peak, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn measure(entries: usize) -> Peak {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let manifest_bytes = write(dir.path(), entries);
    let (dry_kib, _) = peak_of(&nats.url(), dir.path(), &["--dry-run"]);
    let (real_kib, real_time) = peak_of(&nats.url(), dir.path(), &[]);
    let (rerun_kib, rerun_time) = peak_of(&nats.url(), dir.path(), &[]);
    Peak {
        manifest_bytes,
        dry_kib,
        real_kib,
        real_time,
        rerun_kib,
        rerun_time,
    }
}
