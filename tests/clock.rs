//! A client clock far off: kvop run under libfaketime (tests/env/faketime.sh), its wall
//! clock a year ahead or behind the server's. Expiry is the server's business: keys of a
//! bucket with a TTL are written, kept and expired by the server's clock, and re-runs
//! decide the same as with a true clock.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use support::{NatsServer, bucket, entry, kv_get, kvop_with_env, manifests};

/// libfaketime's path, installed once per test binary.
fn faketime_library() -> &'static str {
    static LIBRARY: OnceLock<String> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        if let Ok(path) = std::env::var("KVOP_FAKETIME_LIB") {
            return path;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/env/faketime.sh");
        let output = Command::new(script)
            .output()
            .expect("run tests/env/faketime.sh");
        assert!(
            output.status.success(),
            "tests/env/faketime.sh failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("path")
            .trim()
            .to_string()
    })
}

/// The environment that shifts kvop's wall clock by `offset` (e.g. `+365d`). The
/// monotonic clock stays true: timers and timeouts are not what is being tested.
fn skewed(offset: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LD_PRELOAD", faketime_library().to_string()),
        ("FAKETIME", offset.to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
    ]
}

async fn reconcile(
    url: &str,
    dir: &tempfile::TempDir,
    offset: &str,
    extra: &[&str],
) -> support::Run {
    let env = skewed(offset);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut args = vec![
        "reconcile",
        "-f",
        dir.path().to_str().expect("path"),
        "--log-format",
        "json",
        "--log-level",
        "warn,kvop=debug",
    ];
    args.extend(extra);
    kvop_with_env(url, &args, &env).await
}

/// The year of kvop's own log timestamps: proof the skew reached the process.
fn logged_year(run: &support::Run) -> i32 {
    let line = run
        .stderr
        .lines()
        .find_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .unwrap_or_else(|| panic!("no JSON log line in:\n{}", run.stderr));
    line["timestamp"].as_str().expect("timestamp")[..4]
        .parse()
        .expect("year")
}

#[tokio::test]
async fn a_client_clock_a_year_off_changes_nothing_about_expiry() {
    let server = NatsServer::start();
    let this_year = time::OffsetDateTime::now_utc().year();
    let dir = manifests(&[(
        "m.yaml",
        &[
            bucket("short", "  ttl: 3s\n"),
            entry("a", "short", "a", "1", ""),
            entry("b", "short", "b", "2", ""),
        ]
        .join("---\n"),
    )]);
    let ahead = reconcile(&server.url(), &dir, "+365d", &["--detailed-exitcode"]).await;
    assert_eq!(ahead.code, 2, "created: {ahead:?}");
    assert_eq!(
        logged_year(&ahead),
        this_year + 1,
        "kvop's clock is a year ahead"
    );
    let js = server.jetstream().await;
    assert_eq!(kv_get(&js, "short", "a").await.as_deref(), Some(&b"1"[..]));

    // A year behind, before the server expires anything: nothing to change.
    let behind = reconcile(&server.url(), &dir, "-365d", &["--detailed-exitcode"]).await;
    assert_eq!(
        logged_year(&behind),
        this_year - 1,
        "kvop's clock is a year behind"
    );
    assert_eq!(behind.code, 0, "no changes: {behind:?}");
    let config = support::stream_config(&js, "short").await;
    assert_eq!(
        config.max_age,
        Duration::from_secs(3),
        "the TTL is the declared one"
    );

    // The server expires the keys by its own clock; kvop, still skewed, sees them gone
    // and writes them again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        kv_get(&js, "short", "a").await,
        None,
        "expired by the server"
    );
    let again = reconcile(&server.url(), &dir, "+365d", &["--detailed-exitcode"]).await;
    assert_eq!(
        again.code, 2,
        "the expired keys are written again: {again:?}"
    );
    assert_eq!(kv_get(&js, "short", "b").await.as_deref(), Some(&b"2"[..]));
}
