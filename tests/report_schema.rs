//! The JSON report (`-o json`) of every kind of run against its published schema,
//! `docs/report.schema.json`: a dry run, a run that writes, one with nothing to write, one
//! with a conflict, invalid input, a refused command line and a server that cannot be
//! reached. Each prints one document of the same shape, where what does not apply is
//! absent, never null.

mod support;

use serde_json::Value;
use support::schema::Schema;
use support::{NatsServer, Run, bucket, entry, free_port, kvop, kvop_with_env, manifests};

/// The run's report, checked against the schema and against the run's exit code.
fn checked(run: &Run) -> Value {
    let report = run.json();
    let errors = Schema::report().errors(&report);
    assert!(errors.is_empty(), "{errors:#?}\n{report:#}");
    assert_eq!(report["exitCode"], run.code, "{report:#}");
    report
}

fn declared() -> tempfile::TempDir {
    manifests(&[(
        "m.yaml",
        &[
            bucket("b", "  history: 3\n"),
            entry("e1", "b", "k1", "v1", ""),
            entry("e2", "b", "k2", "v2", "  updatePolicy: IfUnchanged\n"),
        ]
        .join("---\n"),
    )])
}

async fn reconcile(url: &str, dir: &tempfile::TempDir, extra: &[&str]) -> Run {
    let path = dir.path().to_str().expect("path");
    let mut args = vec!["reconcile", "-f", path, "-o", "json"];
    args.extend_from_slice(extra);
    kvop(url, &args).await
}

#[test]
fn the_schema_states_the_version_the_report_prints() {
    let schema = Schema::report();
    assert_eq!(schema.root()["properties"]["schemaVersion"]["const"], 2);
    // The validator catches the shapes of schema version 1.
    let mut old = serde_json::json!({
        "schemaVersion": 2, "manager": "kvop", "dryRun": true, "skipped": [], "status": [],
        "problems": [], "exitCode": 0, "result": null
    });
    assert!(!schema.errors(&old).is_empty(), "a null result is refused");
    old.as_object_mut().expect("object").remove("result");
    assert_eq!(schema.errors(&old), Vec::<String>::new());
    old["problems"] = serde_json::json!(["m.yaml:3: spec.history: too long"]);
    assert!(!schema.errors(&old).is_empty(), "a problem is not a string");
}

#[tokio::test]
async fn a_dry_run_report_has_a_plan_and_no_result() {
    let server = NatsServer::start();
    let dir = declared();
    let run = reconcile(&server.url(), &dir, &["--dry-run", "--detailed-exitcode"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let report = checked(&run);
    assert_eq!(report["dryRun"], true);
    assert!(report.get("result").is_none(), "{report:#}");
    assert_eq!(report["plan"]["summary"]["keysToCreate"], 2);
    assert!(report["serverVersion"].is_string());
}

#[tokio::test]
async fn every_real_run_has_a_result_also_when_nothing_is_written() {
    let server = NatsServer::start();
    let dir = declared();
    let first = reconcile(&server.url(), &dir, &[]).await;
    assert_eq!(first.code, 0, "{first:?}");
    let report = checked(&first);
    assert_eq!(report["result"]["writes"], 3, "the bucket and two keys");
    assert_eq!(
        report["result"]["buckets"][0]["entries"][0]["result"],
        "create"
    );

    let again = reconcile(&server.url(), &dir, &["--detailed-exitcode"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    let report = checked(&again);
    assert_eq!(report["result"]["writes"], 0, "{report:#}");
    assert_eq!(report["result"]["buckets"][0]["action"], "unchanged");
    assert_eq!(
        report["result"]["buckets"][0]["entries"],
        serde_json::json!([])
    );
    assert_eq!(report["problems"], serde_json::json!([]));
}

#[tokio::test]
async fn a_conflict_is_a_problem_naming_its_bucket_and_key() {
    let server = NatsServer::start();
    let dir = declared();
    assert_eq!(reconcile(&server.url(), &dir, &[]).await.code, 0);
    // Another client takes k2, which is declared IfUnchanged.
    let js = server.jetstream().await;
    js.publish("$KV.b.k2", "theirs".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let run = reconcile(&server.url(), &dir, &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let report = checked(&run);
    assert_eq!(report["result"]["writes"], 0);
    assert_eq!(
        report["result"]["buckets"][0]["entries"][0]["result"],
        "conflict"
    );
    let problem = &report["problems"][0];
    assert_eq!(
        (&problem["bucket"], &problem["key"]),
        (&"b".into(), &"k2".into())
    );
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("updatePolicy IfUnchanged")),
        "{report:#}"
    );
}

#[tokio::test]
async fn invalid_input_is_a_report_with_problems_located_by_file_line_and_field() {
    let server = NatsServer::start();
    let dir = manifests(&[("m.yaml", &bucket("b", "  history: 99\n"))]);
    let run = reconcile(&server.url(), &dir, &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let report = checked(&run);
    assert!(report.get("plan").is_none() && report.get("result").is_none());
    assert!(report.get("serverVersion").is_none(), "it never connected");
    let problem = &report["problems"][0];
    assert!(
        problem["file"]
            .as_str()
            .is_some_and(|file| file.ends_with("m.yaml")),
        "{report:#}"
    );
    assert_eq!(problem["line"], 6, "{report:#}");
    assert_eq!(problem["field"], "spec.history");
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("64")),
        "{report:#}"
    );
    assert_eq!(js_streams(&server).await, 0, "nothing written");
}

#[tokio::test]
async fn a_server_that_cannot_be_reached_is_a_report_with_one_problem() {
    let dir = declared();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let run = reconcile(&url, &dir, &["--dry-run"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let report = checked(&run);
    assert!(report.get("plan").is_none() && report.get("serverVersion").is_none());
    let problems = report["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{report:#}");
    assert!(problems[0].get("file").is_none(), "{report:#}");
    assert!(
        problems[0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn a_command_line_kvop_refuses_is_a_report_with_one_problem() {
    // Nothing listens there: every case is refused before connecting.
    let url = format!("nats://127.0.0.1:{}", free_port());
    let dir = declared();
    let path = dir.path().to_str().expect("path");
    for (args, env, manager, says) in [
        (
            vec!["reconcile", "-f", path, "-o", "json", "--window", "0"],
            vec![],
            "kvop",
            "invalid value '0' for '--window <WINDOW>'",
        ),
        (
            vec!["reconcile", "-f", path, "-o", "json"],
            vec![("KVOP_MANAGER", "")],
            "",
            "the manager name is empty",
        ),
        (
            vec!["reconcile", "-f", path, "--bogus", "-o", "json"],
            vec![],
            "kvop",
            "unexpected argument '--bogus'",
        ),
        (
            vec!["reconcile", "-o", "json", "--manager", "ci"],
            vec![],
            "ci",
            "--filename <PATH>",
        ),
        (
            vec!["reconcile", "-f", path, "--debounce", "soon"],
            vec![("KVOP_OUTPUT", "json")],
            "kvop",
            "invalid value 'soon' for '--debounce <DEBOUNCE>'",
        ),
        (
            vec!["reconcile", "-f", path, "-o", "json", "--watch"],
            vec![],
            "kvop",
            "--watch logs one line per change",
        ),
    ] {
        let run = kvop_with_env(&url, &args, &env).await;
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stderr.contains("error: "), "{args:?}: {run:?}");
        let report = checked(&run);
        assert_eq!(report["manager"], manager, "{report:#}");
        assert!(report.get("plan").is_none() && report.get("serverVersion").is_none());
        let problems = report["problems"].as_array().expect("problems");
        assert_eq!(problems.len(), 1, "{report:#}");
        let message = problems[0]["message"].as_str().expect("a message");
        assert!(
            message.contains(says) && !message.starts_with("error") && !message.contains('\n'),
            "{args:?}: {message:?}"
        );
    }
    // Without `-o json` the refusal stays on stderr; `export -o` is a directory.
    for args in [
        vec!["reconcile", "-f", path, "--window", "0"],
        vec!["export", "-o", "json", "--bogus"],
    ] {
        let run = kvop(&url, &args).await;
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    }
}

async fn js_streams(server: &NatsServer) -> usize {
    use futures::StreamExt;
    server.jetstream().await.stream_names().count().await
}
