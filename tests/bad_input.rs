//! Bad input: every case exits 1, names file, line and field, and writes nothing (the
//! stream's last sequence and the list of buckets are unchanged).

mod support;

use futures::StreamExt;
use support::{NatsServer, bucket, entry, kvop, kvop_with_env, manifests};

/// A valid bucket and key that every case carries along: it must not be touched.
fn valid() -> String {
    [
        bucket("good", "  history: 2\n"),
        entry("good-key", "good", "k", "changed-value", ""),
    ]
    .join("---\n")
}

/// Eleven levels of ten aliases each: 10¹¹ nodes if expanded.
fn alias_bomb() -> String {
    let mut text = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..11 {
        let items = vec![format!("*l{}", level - 1); 10].join(", ");
        text.push_str(&format!("l{level}: &l{level} [{items}]\n"));
    }
    text
}

struct Case {
    name: &'static str,
    files: Vec<(&'static str, String)>,
    /// Substrings stderr must contain (file:line and field, message).
    expect: Vec<&'static str>,
}

fn cases() -> Vec<Case> {
    let e = |name: &str, key: &str, extra: &str| entry(name, "b", key, "v", extra);
    let b = || bucket("b", "  history: 1\n");
    vec![
        Case { name: "malformed yaml", files: vec![("bad.yaml", "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueBucket\nmetadata: {name: x\n".into())], expect: vec!["bad.yaml:3: invalid YAML"] },
        Case { name: "unknown field", files: vec![("bad.yaml", bucket("b", "  history: 1\n  histroy: 2\n"))], expect: vec!["bad.yaml:7: spec.histroy: unknown field `histroy`"] },
        Case { name: "unknown top-level field", files: vec![("bad.yaml", format!("{}extra: 1\n", bucket("b", "  history: 1\n")))], expect: vec!["bad.yaml:7: extra: unknown field"] },
        Case { name: "unknown kind in our group", files: vec![("bad.yaml", "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueStore\nmetadata:\n  name: x\n".into())], expect: vec!["bad.yaml:2: kind: unknown kind \"KeyValueStore\""] },
        Case { name: "wrong version", files: vec![("bad.yaml", bucket("b", "  history: 1\n").replace("v1alpha1", "v1"))], expect: vec!["bad.yaml:1: apiVersion: unsupported apiVersion \"kvop.dev/v1\""] },
        Case { name: "invalid bucket name", files: vec![("bad.yaml", bucket("b", "  bucket: a.b\n"))], expect: vec!["bad.yaml:6: spec.bucket: bucket name \"a.b\" contains '.'"] },
        Case { name: "bucket name too long", files: vec![("bad.yaml", bucket("b", &format!("  bucket: {}\n", "x".repeat(253))))], expect: vec!["spec.bucket: bucket name is 253 characters long"] },
        Case { name: "key with ..", files: vec![("bad.yaml", [b(), e("e", "a..b", "")].join("---\n"))], expect: vec!["bad.yaml:15: spec.key: key \"a..b\" may not contain '..'"] },
        Case { name: "key with a space", files: vec![("bad.yaml", [b(), e("e", "a b", "")].join("---\n"))], expect: vec!["spec.key: key \"a b\" contains ' '"] },
        Case { name: "key with leading dot", files: vec![("bad.yaml", [b(), e("e", ".a", "")].join("---\n"))], expect: vec!["spec.key: key \".a\" may not start or end with '.'"] },
        Case { name: "history 0", files: vec![("bad.yaml", bucket("b", "  history: 0\n"))], expect: vec!["bad.yaml:6: spec.history: history must be between 1 and 64, got 0"] },
        Case { name: "history 65", files: vec![("bad.yaml", bucket("b", "  history: 65\n"))], expect: vec!["spec.history: history must be between 1 and 64, got 65"] },
        Case { name: "bad duration", files: vec![("bad.yaml", bucket("b", "  ttl: 10x\n"))], expect: vec!["bad.yaml:6: spec.ttl: invalid duration \"10x\""] },
        Case { name: "name kubectl refuses", files: vec![("bad.yaml", bucket("\"Bad_Name!\"", "  bucket: b\n"))], expect: vec!["bad.yaml:4: metadata.name: name \"Bad_Name!\" is not valid in Kubernetes"] },
        Case { name: "name with a slash", files: vec![("bad.yaml", bucket("x/y", "  bucket: b\n"))], expect: vec!["metadata.name: name \"x/y\" is not valid in Kubernetes: it contains '/'"] },
        Case { name: "namespace kubectl refuses", files: vec![("bad.yaml", bucket("b", "  history: 1\n").replace("  name: b\n", "  name: b\n  namespace: \"Bad NS!\"\n"))], expect: vec!["metadata.namespace: namespace \"Bad NS!\" is not valid in Kubernetes"] },
        Case { name: "entry of an invalid bucket", files: vec![("bad.yaml", [bucket("b", "  history: 0\n"), e("e", "k", "")].join("---\n"))], expect: vec!["spec.history: history must be between 1 and 64", "spec.bucketRef.name: the KeyValueBucket \"b\" in namespace \"default\" is declared at", "bad.yaml:1 but invalid"] },
        Case { name: "entry of a bucket of the wrong type", files: vec![("bad.yaml", [bucket("b", "  storage: disk\n"), e("e", "k", "")].join("---\n"))], expect: vec!["spec.storage", "the KeyValueBucket \"b\" in namespace \"default\" is declared at", "bad.yaml:1 but invalid"] },
        Case { name: "ttl past what NATS stores", files: vec![("bad.yaml", bucket("b", "  ttl: 106752d\n"))], expect: vec!["bad.yaml:6: spec.ttl: invalid duration \"106752d\": longer than NATS can store"] },
        Case { name: "ttl that would wrap", files: vec![("bad.yaml", bucket("b", "  ttl: 99999999999d\n"))], expect: vec!["spec.ttl: invalid duration \"99999999999d\": longer than NATS can store"] },
        Case { name: "size past 64 bits", files: vec![("bad.yaml", bucket("b", "  maxBytes: 8Ei\n"))], expect: vec!["spec.maxBytes: invalid size \"8Ei\": more than the largest size NATS stores"] },
        Case { name: "ttl under 100ms", files: vec![("bad.yaml", bucket("b", "  ttl: 50ms\n"))], expect: vec!["spec.ttl: \"50ms\" is shorter than the minimum of 100ms"] },
        Case { name: "limit marker ttl under 1s", files: vec![("bad.yaml", bucket("b", "  limitMarkerTtl: 500ms\n"))], expect: vec!["spec.limitMarkerTtl: \"500ms\" is shorter than the minimum of 1s"] },
        Case { name: "bad size", files: vec![("bad.yaml", bucket("b", "  maxValueSize: 1.5Mi\n"))], expect: vec!["bad.yaml:6: spec.maxValueSize: invalid size \"1.5Mi\""] },
        Case { name: "no value source", files: vec![("bad.yaml", [b(), "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e\nspec:\n  bucketRef:\n    name: b\n".to_string()].join("---\n"))], expect: vec!["bad.yaml:12: spec: exactly one of spec.value, spec.binaryValue, spec.jsonValue, spec.valueFrom must be set, found none"] },
        Case { name: "two value sources", files: vec![("bad.yaml", [b(), e("e", "k", "  jsonValue: 1\n")].join("---\n"))], expect: vec!["found spec.value, spec.jsonValue"] },
        Case { name: "unknown YAML tag", files: vec![("bad.yaml", [b(), "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e\nspec:\n  bucketRef:\n    name: b\n  jsonValue: !foo {a: 1}\n".to_string()].join("---\n"))], expect: vec!["bad.yaml:15: invalid YAML: unsupported tag `!foo`"] },
        Case { name: "invalid base64", files: vec![("bad.yaml", [b(), "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e\nspec:\n  bucketRef:\n    name: b\n  binaryValue: \"!!!\"\n".to_string()].join("---\n"))], expect: vec!["spec.binaryValue: invalid base64"] },
        // Standalone valueFrom reads the ConfigMaps and Secrets of the same files.
        Case { name: "valueFrom a Secret not in the files", files: vec![("bad.yaml", [b(), "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e\nspec:\n  bucketRef:\n    name: b\n  valueFrom:\n    secretKeyRef: {name: s, key: k}\n".to_string()].join("---\n"))], expect: vec!["bad.yaml:15: spec.valueFrom.secretKeyRef: Secret default/s is not in the files"] },
        Case { name: "valueFrom a key the ConfigMap lacks", files: vec![("bad.yaml", [b(), "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e\nspec:\n  bucketRef:\n    name: b\n  valueFrom:\n    configMapKeyRef: {name: c, key: k}\n".to_string(), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {other: x}\n".to_string()].join("---\n"))], expect: vec!["bad.yaml:15: spec.valueFrom.configMapKeyRef: ConfigMap default/c has no key \"k\" (it has: other)"] },
        Case { name: "valueFrom a Secret whose data is not base64", files: vec![("bad.yaml", [b(), "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e\nspec:\n  bucketRef:\n    name: b\n  valueFrom:\n    secretKeyRef: {name: s, key: k}\n".to_string(), "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: \"not base64!\"}\n".to_string()].join("---\n"))], expect: vec!["bad.yaml:15: spec.valueFrom.secretKeyRef: data.k of Secret default/s is not valid base64"] },
        Case { name: "a Secret declared twice", files: vec![("one.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: a}\n".to_string()), ("two.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: b}\n".to_string())], expect: vec!["two.yaml:1: Secret default/s is declared twice: first declared at"] },
        Case { name: "connection in standalone mode", files: vec![("bad.yaml", bucket("b", "  connection:\n    servers: [\"nats://x:4222\"]\n"))], expect: vec!["spec.connection: per-bucket connections"] },
        Case { name: "duplicate key across files", files: vec![("one.yaml", [b(), e("e1", "k", "")].join("---\n")), ("two.yaml", e("e2", "k", ""))], expect: vec!["two.yaml:1: key \"k\" of bucket \"b\" is declared twice: first declared at", "one.yaml:"] },
        Case { name: "duplicate bucket", files: vec![("one.yaml", b()), ("two.yaml", bucket("other", "  bucket: b\n"))], expect: vec!["two.yaml:1: bucket \"b\" is declared twice"] },
        Case { name: "undeclared bucket", files: vec![("bad.yaml", entry("e", "nope", "k", "v", ""))], expect: vec!["bad.yaml:7: spec.bucketRef.name: no KeyValueBucket named \"nope\" in namespace \"default\""] },
        Case { name: "entry in another namespace than its bucket", files: vec![("bad.yaml", [b(), e("e", "k", "").replace("  name: \"e\"\n", "  name: \"e\"\n  namespace: other\n")].join("---\n"))], expect: vec!["no KeyValueBucket named \"b\" in namespace \"other\""] },
        Case { name: "entry targets a mirror", files: vec![("bad.yaml", [bucket("b", "  mirror:\n    name: good\n"), e("e", "k", "")].join("---\n"))], expect: vec!["spec.bucketRef.name: bucket \"b\" is a read-only mirror"] },
        Case { name: "value over maxValueSize by one byte", files: vec![("bad.yaml", [bucket("b", "  maxValueSize: 200\n"), entry("e", "b", "k", &"x".repeat(87), "")].join("---\n"))], expect: vec!["the value is 87 bytes, plus 114 bytes of headers, over the maxValueSize of bucket \"b\" (200 bytes)"] },
        Case { name: "a string field given a number", files: vec![("bad.yaml", [b(), "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e\nspec:\n  bucketRef:\n    name: b\n  value: 100\n".to_string()].join("---\n"))], expect: vec!["bad.yaml:15: spec.value: invalid type: integer `100`, expected a string (quote the value"] },
        Case { name: "per-message TTL off with limit markers", files: vec![("bad.yaml", bucket("b", "  allowMsgTtl: false\n  limitMarkerTtl: 5s\n"))], expect: vec!["bad.yaml:6: spec.allowMsgTtl: cannot be false with limitMarkerTtl: limit markers need per-message TTL"] },
        Case { name: "mirror with limit markers", files: vec![("bad.yaml", bucket("b", "  limitMarkerTtl: 5s\n  mirror:\n    name: good\n"))], expect: vec!["spec.limitMarkerTtl: a mirror cannot have limit markers"] },
        Case { name: "republish into itself", files: vec![("bad.yaml", bucket("b", "  republish:\n    source: \">\"\n    destination: $KV.b.copy.>\n"))], expect: vec!["spec.republish.destination: republishing into the bucket's own subjects would form a cycle"] },
        Case { name: "bad start time", files: vec![("bad.yaml", bucket("b", "  sources:\n    - name: good\n      startTime: yesterday\n"))], expect: vec!["spec.sources[0].startTime: \"yesterday\" is not an RFC 3339 time"] },
        Case { name: "source filter outside the origin", files: vec![("bad.yaml", bucket("b", "  sources:\n    - name: good\n      filterSubject: $KV.other.>\n"))], expect: vec!["spec.sources[0].filterSubject"] },
        Case { name: "domain and external", files: vec![("bad.yaml", bucket("b", "  sources:\n    - name: good\n      domain: hub\n      external:\n        apiPrefix: $JS.hub.API\n"))], expect: vec!["spec.sources[0].domain: set either domain or external"] },
        Case { name: "missing metadata.name", files: vec![("bad.yaml", "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueBucket\nmetadata: {}\nspec: {}\n".into())], expect: vec!["bad.yaml:3: metadata.name: metadata.name is required"] },
        // Issue 16, defect 7: every problem of every document at once.
        Case { name: "every wrong field of a document", files: vec![("bad.yaml", bucket("b", "  storage: disk\n  history: 100\n  ttl: 10ms\n  replicas: three\n  maxBytes: lots\n"))], expect: vec!["bad.yaml:6: spec.storage: unknown variant `disk`", "bad.yaml:7: spec.history: history must be between 1 and 64", "bad.yaml:8: spec.ttl:", "bad.yaml:9: spec.replicas: invalid type: string \"three\", expected an integer", "bad.yaml:10: spec.maxBytes: invalid size"] },
        Case { name: "an entry without a value is still told its bucket is missing", files: vec![("bad.yaml", "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e\nspec:\n  bucketRef:\n    name: nope\n  key: k\n".into())], expect: vec!["bad.yaml:5: spec: exactly one of", "bad.yaml:7: spec.bucketRef.name: no KeyValueBucket named \"nope\""] },
        Case { name: "a syntax error ends only its document", files: vec![("bad.yaml", [bucket("b", "  history: [1\n"), bucket("c", "  history: 100\n")].join("---\n"))], expect: vec!["bad.yaml:6: invalid YAML: ", "bad.yaml:13: spec.history: history must be between 1 and 64"] },
        // Issue 16, defect 10: the author's words, the file's lines.
        Case { name: "a duplicate key in a later document", files: vec![("bad.yaml", [b(), "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueBucket\nmetadata:\n  name: c\n  name: d\n".to_string()].join("---\n"))], expect: vec!["bad.yaml:12: invalid YAML: duplicate key \"name\" (column 3)"] },
        Case { name: "an alias bomb", files: vec![("bad.yaml", [b(), alias_bomb()].join("---\n"))], expect: vec!["bad.yaml:", "refused as a possible alias bomb"] },
        Case { name: "empty directory", files: vec![("README.txt", "no manifests here".into())], expect: vec!["no manifest files found"] },
    ]
}

#[tokio::test]
async fn every_bad_input_exits_1_names_file_line_and_field_and_writes_nothing() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let good = manifests(&[("good.yaml", &valid().replace("changed-value", "original"))]);
    assert_eq!(
        kvop(
            &server.url(),
            &["reconcile", "-f", good.path().to_str().expect("path")]
        )
        .await
        .code,
        0
    );
    let sequence = support::last_sequence(&js, "good").await;
    let mut failures = Vec::new();
    for case in cases() {
        let mut files: Vec<(&str, &str)> = case
            .files
            .iter()
            .map(|(name, text)| (*name, text.as_str()))
            .collect();
        let carried = valid();
        if case.name != "empty directory" {
            files.push(("valid.yaml", &carried));
        }
        let dir = manifests(&files);
        let run = kvop(
            &server.url(),
            &["reconcile", "-f", dir.path().to_str().expect("path")],
        )
        .await;
        let missing: Vec<&&str> = case
            .expect
            .iter()
            .filter(|text| !run.stderr.contains(**text))
            .collect();
        // Issue 16, defect 10: no Rust internals, and only the file's own lines.
        let internals: Vec<&&str> = [
            "budget breached",
            "DuplicateKeyPolicy",
            "Option<",
            " at line ",
            "expected i32",
            "expected u32",
        ]
        .iter()
        .filter(|text| run.stderr.contains(**text))
        .collect();
        if run.code != 1 || !missing.is_empty() || !internals.is_empty() {
            failures.push(format!(
                "{}: exit {}, missing {missing:?}, internals {internals:?} in stderr:\n{}",
                case.name, run.code, run.stderr
            ));
        }
        let streams: Vec<String> = js
            .stream_names()
            .filter_map(|name| async move { name.ok() })
            .collect()
            .await;
        if support::last_sequence(&js, "good").await != sequence || streams != ["KV_good"] {
            failures.push(format!(
                "{}: something was written (streams {streams:?})",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_value_exactly_at_max_value_size_with_headers_is_accepted_by_the_server() {
    // 86 bytes + 114 bytes of headers = 200: kvop's estimate must not be below what the
    // server counts, or "valid" values would fail with 10054 mid-apply.
    let server = NatsServer::start();
    let dir = manifests(&[(
        "m.yaml",
        &[
            bucket("b", "  maxValueSize: 200\n"),
            entry("e", "b", "k", &"x".repeat(86), ""),
        ]
        .join("---\n"),
    )]);
    let run = kvop(
        &server.url(),
        &["reconcile", "-f", dir.path().to_str().expect("path")],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        support::kv_get(&server.jetstream().await, "b", "k")
            .await
            .map(|value| value.len()),
        Some(86)
    );
}

#[tokio::test]
async fn a_value_over_the_servers_max_payload_is_refused_before_any_write() {
    let server = NatsServer::start_with_config("max_payload: 1024\n");
    let js = server.jetstream().await;
    let dir = manifests(&[(
        "m.yaml",
        &[
            bucket("b", ""),
            entry("small", "b", "small", "v", ""),
            entry("big", "b", "big", &"x".repeat(1000), ""),
        ]
        .join("---\n"),
    )]);
    let run = kvop(
        &server.url(),
        &["reconcile", "-f", dir.path().to_str().expect("path")],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("m.yaml:")
            && run
                .stderr
                .contains("over the server's max_payload (1024 bytes)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        js.stream_names().count().await,
        0,
        "not even the bucket was created"
    );
}

#[tokio::test]
async fn a_directory_linking_to_itself_is_read_once_and_applied() {
    // `ln -s . d/l1` five times used to be walked forever; `sub/loop -> ..` loaded each
    // file once per path and reported every declaration as a duplicate.
    let server = NatsServer::start();
    let dir = manifests(&[(
        "m.yaml",
        &[bucket("loops", ""), entry("e", "loops", "k", "v", "")].join("---\n"),
    )]);
    for link in ["l1", "l2", "l3", "l4", "l5"] {
        std::os::unix::fs::symlink(".", dir.path().join(link)).expect("symlink");
    }
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    std::os::unix::fs::symlink("..", dir.path().join("sub/loop")).expect("symlink");
    let run = kvop(
        &server.url(),
        &["reconcile", "-f", dir.path().to_str().expect("path")],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("skipped: the same directory as")
            || run.stdout.contains("skipped: the same directory as"),
        "the loops are noticed: {run:?}"
    );
    assert_eq!(
        support::kv_get(&server.jetstream().await, "loops", "k").await,
        Some(b"v".to_vec())
    );
}

#[tokio::test]
async fn a_bad_manager_name_is_refused_before_connecting() {
    // CR/LF panicked after connecting; an empty name (an unset CI variable) wrote an empty
    // header, after which this manager's own keys looked foreign; non-ASCII was written raw.
    let dir = manifests(&[("m.yaml", &bucket("managed", ""))]);
    let path = dir.path().to_str().expect("path");
    // Nothing listens here: a refusal must come before any connection attempt.
    let unreachable = format!("nats://127.0.0.1:{}", support::free_port());
    for manager in ["", "ci\r\nX-Evil: 1", "team a", "équipe"] {
        let run = kvop(
            &unreachable,
            &["reconcile", "-f", path, "--manager", manager],
        )
        .await;
        assert_eq!(run.code, 1, "invalid input for {manager:?}: {run:?}");
        assert!(run.stderr.contains("--manager"), "names the flag: {run:?}");
        let run = kvop_with_env(
            &unreachable,
            &["reconcile", "-f", path],
            &[("KVOP_MANAGER", manager)],
        )
        .await;
        assert_ne!(run.code, 0, "KVOP_MANAGER={manager:?}: {run:?}");
        assert!(
            run.stderr.contains("--manager") && !run.stderr.contains("cannot reach NATS"),
            "refused before connecting: {run:?}"
        );
    }
}

#[tokio::test]
async fn a_missing_or_non_pem_tls_file_is_named_before_connecting() {
    // A missing --tls-ca was not named; a CA file that is not PEM was accepted and failed
    // later as an unknown issuer.
    let dir = manifests(&[("m.yaml", &bucket("tls", ""))]);
    let path = dir.path().to_str().expect("path");
    let not_pem = dir.path().join("ca.txt");
    std::fs::write(&not_pem, "just some text\n").expect("write");
    let missing = dir.path().join("missing-ca.pem");
    let url = format!("tls://127.0.0.1:{}", support::free_port());
    for (file, says) in [
        (&missing, "cannot read the TLS CA (--tls-ca, NATS_CA)"),
        (&not_pem, "is not PEM"),
    ] {
        let ca = file.to_str().expect("path");
        let run = kvop(&url, &["reconcile", "-f", path, "--tls-ca", ca]).await;
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains(says), "{run:?}");
        assert!(run.stderr.contains(ca), "names the file: {run:?}");
        assert!(
            run.stderr.contains("invalid NATS connection settings"),
            "not a refusal by the server: {run:?}"
        );
    }
}
