//! Refused credentials and missing permissions, against real servers: a wrong password
//! (flag or URL), an expired or revoked user JWT (operator mode, `--creds`), a user who may
//! not touch the bucket's JetStream API, one who may read the bucket but not write its
//! keys, and one denied a single key. Each fails without a retry (a refusal is not a
//! transient stall), with one clear line naming the cause and no secret in it, and writes
//! nothing it was not allowed to (the stream's last sequence and the list of streams,
//! checked over a separate admin connection). A valid `.creds` file reconciles end to
//! end, and the operator's long-lived connections report refused credentials as such.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream;
use futures::StreamExt;
use nkeys::KeyPair;
use support::jwt::{self, Operator};
use support::{NatsServer, Run, bucket, entry, manifests, path};

/// Well under the CLI's transient retry budget (7.5 s of delays alone, about a minute
/// with the requests' timeouts): a run this short retried nothing. Loose on purpose,
/// timings here are noisy; the server log's violation count is the exact check.
const NO_RETRY: Duration = Duration::from_secs(5);

/// A run of the kvop binary and how long it took.
struct Timed {
    run: Run,
    elapsed: Duration,
}

/// Runs kvop against `url` with only the given NATS credential variables set, so a
/// developer's own `NATS_*` environment cannot leak into the test.
async fn kvop(url: &str, args: &[&str], env: &[(&str, &str)]) -> Timed {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kvop"));
    command.args(args).env("NATS_URL", url);
    for variable in [
        "KVOP_MANAGER",
        "KVOP_LOG",
        "KVOP_OUTPUT",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_TOKEN",
        "NATS_CREDS",
        "NATS_NKEY",
    ] {
        command.env_remove(variable);
    }
    command
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let output = command.output().await.expect("run kvop");
    Timed {
        elapsed: started.elapsed(),
        run: Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        },
    }
}

/// The first reconcile: bucket `b` with key `k`.
fn seed_manifests() -> tempfile::TempDir {
    manifests(&[(
        "m.yaml",
        &[bucket("b", ""), entry("e", "b", "k", "v1", "")].join("---\n"),
    )])
}

/// A reconcile with something to write everywhere: `k` changes, `k2` is new, and bucket
/// `fresh` does not exist yet.
fn change_manifests() -> tempfile::TempDir {
    manifests(&[(
        "m.yaml",
        &[
            bucket("b", ""),
            entry("e", "b", "k", "v2", ""),
            entry("e2", "b", "k2", "new", ""),
            bucket("fresh", ""),
            entry("f", "fresh", "k", "v", ""),
        ]
        .join("---\n"),
    )])
}

/// What the server holds: every stream's name and bucket `b`'s last sequence. Any write,
/// a created bucket included, changes it.
async fn stored(admin: &jetstream::Context) -> (Vec<String>, u64) {
    let mut names: Vec<String> = admin
        .stream_names()
        .filter_map(|name| async move { name.ok() })
        .collect()
        .await;
    names.sort();
    (names, support::last_sequence(admin, "b").await)
}

/// Fails if any secret shows up in kvop's output.
fn assert_no_secret(run: &Run, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret was printed:\n{run:?}"
        );
    }
}

/// The single `error: ...` line of a failed text-mode run.
fn error_line(run: &Run) -> &str {
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    errors[0]
}

/// Connects with the given options or panics: the test's own admin access.
async fn admin(options: async_nats::ConnectOptions, url: &str) -> jetstream::Context {
    jetstream::new(options.connect(url).await.expect("admin connection"))
}

// ---- user and password ------------------------------------------------------------

const USERS: &str = r#"
authorization {
  users: [
    { user: admin, password: "admin-pw" }
    { user: alice, password: "alice-right-pw" }
    { user: carol, password: "c@rol:right/pw" }
  ]
}
"#;

#[tokio::test]
async fn a_wrong_password_is_refused_at_once_named_and_never_printed() {
    let server = NatsServer::start_with_config(USERS);
    let admin = admin(
        async_nats::ConnectOptions::with_user_and_password("admin".into(), "admin-pw".into()),
        &server.url(),
    )
    .await;
    let seed = seed_manifests();
    let right = kvop(
        &server.url(),
        &["reconcile", "-f", path(&seed), "--user", "alice"],
        &[("NATS_PASSWORD", "alice-right-pw")],
    )
    .await;
    assert_eq!(
        right.run.code, 0,
        "the right password works: {:?}",
        right.run
    );
    let before = stored(&admin).await;

    let changes = change_manifests();
    let wrong = kvop(
        &server.url(),
        &["reconcile", "-f", path(&changes), "--user", "alice"],
        &[("NATS_PASSWORD", "alice-WRONG-pw")],
    )
    .await;
    assert_eq!(wrong.run.code, 1, "{:?}", wrong.run);
    assert_eq!(
        error_line(&wrong.run),
        format!(
            "error: NATS refused the credentials: {} rejected user \"alice\" with its password (authorization violation)",
            server.url()
        )
    );
    assert_no_secret(&wrong.run, &["alice-WRONG-pw", "alice-right-pw"]);
    // Refused in the handshake: nothing to retry, nothing to wait for.
    assert!(wrong.elapsed < NO_RETRY, "{:?}", wrong.elapsed);
    assert_eq!(stored(&admin).await, before, "nothing was written");
}

#[tokio::test]
async fn credentials_in_the_url_are_sent_and_never_printed() {
    let server = NatsServer::start_with_config(USERS);
    let seed = seed_manifests();
    // A password with `@`, `:` and `/` must be percent-encoded in a URL.
    let url = |password: &str| format!("nats://carol:{password}@127.0.0.1:{}", server.port);
    let wrong = kvop(
        &url("c%40rol%3AWRONG%2Fpw"),
        &["reconcile", "-f", path(&seed)],
        &[],
    )
    .await;
    assert_eq!(wrong.run.code, 1, "{:?}", wrong.run);
    assert_eq!(
        error_line(&wrong.run),
        format!(
            "error: NATS refused the credentials: nats://***@127.0.0.1:{} rejected the credentials in the URL (authorization violation)",
            server.port
        )
    );
    // The whole user info is redacted, decoded or not.
    assert_no_secret(&wrong.run, &["c%40rol%3AWRONG", "c@rol:WRONG", "carol:"]);
    // async-nats alone ignores the user info of a URL: this run would be refused too.
    let right = kvop(
        &url("c%40rol%3Aright%2Fpw"),
        &["reconcile", "-f", path(&seed)],
        &[],
    )
    .await;
    assert_eq!(right.run.code, 0, "{:?}", right.run);
    assert_no_secret(&right.run, &["c%40rol%3Aright", "c@rol:right", "carol:"]);
}

// ---- operator mode: user JWTs in .creds files ----------------------------------------

/// A user and its `.creds` file, written into `dir`.
struct User {
    key: KeyPair,
    jwt: String,
    creds: PathBuf,
}

impl User {
    fn new(
        operator: &Operator,
        dir: &Path,
        name: &str,
        issued_at: i64,
        expires: Option<i64>,
    ) -> User {
        let key = KeyPair::new_user();
        Self::with_key(operator, dir, name, key, issued_at, expires)
    }

    fn with_key(
        operator: &Operator,
        dir: &Path,
        name: &str,
        key: KeyPair,
        issued_at: i64,
        expires: Option<i64>,
    ) -> User {
        let jwt = operator.user(&key, issued_at, expires);
        let creds = dir.join(format!("{name}.creds"));
        std::fs::write(&creds, jwt::creds(&jwt, &key)).expect("write creds");
        User { key, jwt, creds }
    }

    fn creds(&self) -> &str {
        self.creds.to_str().expect("utf-8 path")
    }

    /// The secrets of this user: the seed and the JWT (a bearer of both is the user).
    fn secrets(&self) -> Vec<String> {
        vec![self.key.seed().expect("seed"), self.jwt.clone()]
    }

    async fn jetstream(&self, server: &NatsServer) -> jetstream::Context {
        admin(
            async_nats::ConnectOptions::with_credentials_file(&self.creds)
                .await
                .expect("read creds"),
            &server.url(),
        )
        .await
    }
}

/// Runs `kvop reconcile --creds` on `dir`.
async fn with_creds(server: &NatsServer, user: &User, dir: &tempfile::TempDir) -> Timed {
    kvop(
        &server.url(),
        &["reconcile", "-f", path(dir), "--creds", user.creds()],
        &[],
    )
    .await
}

fn assert_no_user_secret(run: &Run, users: &[&User]) {
    let secrets: Vec<String> = users.iter().flat_map(|user| user.secrets()).collect();
    assert_no_secret(run, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_user_jwt_in_a_creds_file_reconciles_end_to_end() {
    let operator = Operator::new();
    let server = NatsServer::start_with_config(&operator.server_config());
    let keys = tempfile::tempdir().expect("dir");
    let user = User::new(&operator, keys.path(), "user", jwt::now(), None);
    let seed = seed_manifests();

    let first = with_creds(&server, &user, &seed).await;
    assert_eq!(first.run.code, 0, "{:?}", first.run);
    assert_no_user_secret(&first.run, &[&user]);
    // Checked with async-nats' own creds handling, not kvop's.
    let js = user.jetstream(&server).await;
    let stored = support::kv_entry(&js, "b", "k").await.expect("k written");
    assert_eq!(&stored.value[..], b"v1");
    // The same credentials keep working: a second run finds nothing to change.
    let again = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            path(&seed),
            "--creds",
            user.creds(),
            "--detailed-exitcode",
        ],
        &[],
    )
    .await;
    assert_eq!(again.run.code, 0, "{:?}", again.run);
    assert_no_user_secret(&again.run, &[&user]);
    assert_eq!(support::last_sequence(&js, "b").await, stored.revision);
}

#[tokio::test]
async fn an_expired_user_jwt_is_refused_with_its_expiry_time() {
    let operator = Operator::new();
    let server = NatsServer::start_with_config(&operator.server_config());
    let keys = tempfile::tempdir().expect("dir");
    let now = jwt::now();
    let valid = User::new(&operator, keys.path(), "valid", now, None);
    // Issued two minutes ago, valid for one: expired a minute ago.
    let expired = User::new(&operator, keys.path(), "expired", now - 120, Some(now - 60));
    assert_eq!(
        with_creds(&server, &valid, &seed_manifests())
            .await
            .run
            .code,
        0
    );
    let js = valid.jetstream(&server).await;
    let before = stored(&js).await;

    let run = with_creds(&server, &expired, &change_manifests()).await;
    assert_eq!(run.run.code, 1, "{:?}", run.run);
    let expiry = time::OffsetDateTime::from_unix_timestamp(now - 60)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    assert_eq!(
        error_line(&run.run),
        format!(
            "error: NATS refused the credentials: {} rejected the user JWT in {} (authorization violation; the user JWT expired at {expiry})",
            server.url(),
            expired.creds()
        )
    );
    assert_no_user_secret(&run.run, &[&valid, &expired]);
    assert!(run.elapsed < NO_RETRY, "{:?}", run.elapsed);
    assert_eq!(stored(&js).await, before, "nothing was written");
}

#[tokio::test]
async fn a_revoked_user_jwt_is_refused_and_a_newer_one_for_the_same_key_is_not() {
    let now = jwt::now();
    let revoked_key = KeyPair::new_user();
    let mut operator = Operator::new();
    // Revoking at time T refuses every JWT of that key issued at or before T (the server
    // compares with >=: a JWT issued in the very second of the revocation is refused).
    operator
        .revocations
        .push((revoked_key.public_key(), now - 60));
    let server = NatsServer::start_with_config(&operator.server_config());
    let keys = tempfile::tempdir().expect("dir");
    let seed_key = KeyPair::from_seed(&revoked_key.seed().expect("seed")).expect("key");
    let revoked = User::with_key(
        &operator,
        keys.path(),
        "revoked",
        revoked_key,
        now - 60,
        None,
    );
    // Same key, issued after the revocation: accepted, so the refusal below is the
    // revocation and nothing else about the key or the account.
    let reissued = User::with_key(&operator, keys.path(), "reissued", seed_key, now, None);
    assert_eq!(
        with_creds(&server, &reissued, &seed_manifests())
            .await
            .run
            .code,
        0
    );
    let js = reissued.jetstream(&server).await;
    let before = stored(&js).await;

    let run = with_creds(&server, &revoked, &change_manifests()).await;
    assert_eq!(run.run.code, 1, "{:?}", run.run);
    assert_eq!(
        error_line(&run.run),
        format!(
            "error: NATS refused the credentials: {} rejected the user JWT in {} (authorization violation; the user JWT has not expired: it may be revoked, or its account unknown to this server)",
            server.url(),
            revoked.creds()
        )
    );
    assert_no_user_secret(&run.run, &[&revoked, &reissued]);
    assert!(run.elapsed < NO_RETRY, "{:?}", run.elapsed);
    assert_eq!(stored(&js).await, before, "nothing was written");
}

// ---- permissions ------------------------------------------------------------------

/// `user` may publish anything but `denied` (subscriptions are all allowed).
fn permissions_config(user: &str, denied: &[&str]) -> String {
    let denied: Vec<String> = denied
        .iter()
        .map(|subject| format!("{subject:?}"))
        .collect();
    format!(
        "authorization {{\n  users: [\n    {{ user: admin, password: \"admin-pw\" }}\n    {{ user: {user}, password: \"{user}-pw\", permissions: {{ publish: {{ deny: [{}] }} }} }}\n  ]\n}}\n",
        denied.join(", ")
    )
}

/// The server's log lines for denied publishes to `subject`: one per attempt. The server
/// may log just after it answered, so the first one is waited for (briefly).
async fn violations(server: &NatsServer, subject: &str) -> usize {
    let needle = format!("Publish Violation - Subject \"{subject}\"");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let log = std::fs::read_to_string(server.store.path().join("server.log")).expect("log");
        let count = log.lines().filter(|line| line.contains(&needle)).count();
        if count > 0 || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A server with `user`'s permissions, bucket `b` with key `k` written by the admin, and
/// the admin's JetStream view of it.
async fn seeded(user: &str, denied: &[&str]) -> (NatsServer, jetstream::Context) {
    let server = NatsServer::start_with_config(&permissions_config(user, denied));
    let seed = seed_manifests();
    let run = kvop(
        &server.url(),
        &["reconcile", "-f", path(&seed), "--user", "admin"],
        &[("NATS_PASSWORD", "admin-pw")],
    )
    .await;
    assert_eq!(run.run.code, 0, "{:?}", run.run);
    let admin = admin(
        async_nats::ConnectOptions::with_user_and_password("admin".into(), "admin-pw".into()),
        &server.url(),
    )
    .await;
    (server, admin)
}

#[tokio::test]
async fn a_user_without_jetstream_access_to_the_bucket_is_forbidden_at_once() {
    // Any JetStream API call naming the bucket's stream (info, create, update, consumers,
    // direct gets) and any key write.
    let (server, admin) = seeded(
        "outsider",
        &["$JS.API.*.*.KV_b", "$JS.API.*.*.KV_b.>", "$KV.b.>"],
    )
    .await;
    let before = stored(&admin).await;

    let changes = change_manifests();
    let run = kvop(
        &server.url(),
        &["reconcile", "-f", path(&changes), "--user", "outsider"],
        &[("NATS_PASSWORD", "outsider-pw")],
    )
    .await;
    assert_eq!(run.run.code, 1, "{:?}", run.run);
    assert_eq!(
        error_line(&run.run),
        "error: permission denied: the server refused publish to \"$JS.API.STREAM.INFO.KV_b\" (Permissions Violation)"
    );
    assert_no_secret(&run.run, &["outsider-pw"]);
    // The server drops a denied request: without the denial, kvop would wait for the
    // request timeout (10 s) and retry it four times (about a minute in all).
    assert_eq!(
        violations(&server, "$JS.API.STREAM.INFO.KV_b").await,
        1,
        "no retry"
    );
    assert!(
        run.elapsed < NO_RETRY,
        "did not wait for the request to time out: {:?}",
        run.elapsed
    );
    assert_eq!(stored(&admin).await, before, "nothing was written");
}

/// Runs kvop as `user` (password `<user>-pw`) with JSON output, changing key `k` of
/// bucket `b` and writing one more entry `(name, key)`.
async fn change_as(server: &NatsServer, user: &str, (name, key): (&str, &str)) -> Timed {
    let changes = manifests(&[(
        "m.yaml",
        &[
            bucket("b", ""),
            entry("e", "b", "k", "v2", ""),
            entry(name, "b", key, "new", ""),
        ]
        .join("---\n"),
    )]);
    let password = format!("{user}-pw");
    kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            path(&changes),
            "--user",
            user,
            "-o",
            "json",
        ],
        &[("NATS_PASSWORD", password.as_str())],
    )
    .await
}

#[tokio::test]
async fn a_read_only_user_is_forbidden_per_key_and_writes_nothing() {
    // Everything but key writes: kvop observes and plans, and every write is denied.
    let (server, admin) = seeded("reader", &["$KV.b.>"]).await;
    let before = stored(&admin).await;
    let run = change_as(&server, "reader", ("e2", "k2")).await;
    assert_eq!(run.run.code, 1, "{:?}", run.run);
    let report = run.run.json();
    assert_eq!(report["result"]["retries"], 0, "{report:#}");
    assert_eq!(report["result"]["writes"], 0, "{report:#}");
    let message = "permission denied: the server refused publish to \"$KV.b.k\", \"$KV.b.k2\" (Permissions Violation)";
    for (index, key) in ["k", "k2"].into_iter().enumerate() {
        let result = &report["result"]["buckets"][0]["entries"][index];
        assert_eq!(result["key"], key, "{report:#}");
        assert_eq!(result["result"], "failed", "{report:#}");
        assert_eq!(result["error"]["reason"], "Forbidden", "{report:#}");
        assert_eq!(result["error"]["message"], message, "{report:#}");
        assert_eq!(
            report["problems"][index],
            serde_json::json!({"bucket": "b", "key": key, "message": message}),
            "{report:#}"
        );
        assert_eq!(
            violations(&server, &format!("$KV.b.{key}")).await,
            1,
            "no retry"
        );
    }
    assert_no_secret(&run.run, &["reader-pw"]);
    // Each publish ack waits its 5 s: the write path cannot see the denial earlier. A
    // transient classification would add five rounds of backoff and acks (about 40 s).
    assert!(run.elapsed < Duration::from_secs(11), "{:?}", run.elapsed);
    // The server checks publish permissions before the message reaches any stream: a
    // denied write is never stored, so there is nothing partial to undo.
    assert_eq!(stored(&admin).await, before, "nothing was written");
}

#[tokio::test]
async fn a_user_denied_one_key_writes_the_others_and_is_forbidden_that_one() {
    // Permissions are checked per published message, before any stream sees it: the
    // allowed write is stored, the denied one never is. kvop cannot see permissions
    // before writing, so this is a partial apply, reported as such.
    let (server, admin) = seeded("writer", &["$KV.b.locked"]).await;
    let (_, before) = stored(&admin).await;
    let run = change_as(&server, "writer", ("l", "locked")).await;
    assert_eq!(run.run.code, 1, "{:?}", run.run);
    let report = run.run.json();
    let entries = &report["result"]["buckets"][0]["entries"];
    assert_eq!(entries[0]["key"], "k", "{report:#}");
    assert_eq!(entries[0]["result"], "update", "{report:#}");
    assert_eq!(entries[1]["key"], "locked", "{report:#}");
    assert_eq!(entries[1]["error"]["reason"], "Forbidden", "{report:#}");
    // Only the denied subject is named: the allowed write was acknowledged.
    assert_eq!(
        entries[1]["error"]["message"],
        "permission denied: the server refused publish to \"$KV.b.locked\" (Permissions Violation)",
        "{report:#}"
    );
    assert_eq!(report["result"]["retries"], 0, "{report:#}");
    assert_eq!(
        report["problems"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    assert_eq!(violations(&server, "$KV.b.locked").await, 1, "no retry");
    assert_eq!(
        support::last_sequence(&admin, "b").await,
        before + 1,
        "one write"
    );
    assert_eq!(
        support::kv_get(&admin, "b", "k").await.as_deref(),
        Some(&b"v2"[..])
    );
    assert_eq!(support::kv_get(&admin, "b", "locked").await, None);
}

// ---- the operator's long-lived connections ------------------------------------------

/// `kvop run` connects like this: it must start, and report, while NATS refuses it, so
/// its connection retries in the background and never fails the connect itself.
fn background_settings(url: &str) -> kvop::nats::ConnectionSettings {
    kvop::nats::ConnectionSettings {
        url: url.to_string(),
        client_name: "kvop-credentials-test".into(),
        retry_initial_connect: true,
        ..Default::default()
    }
}

/// A request with a short timeout (the JetStream API waits 10 s), classified by kvop.
async fn classified_request(connection: &kvop::nats::Connection) -> kvop::nats::NatsError {
    let request = async_nats::Request::new().timeout(Some(Duration::from_secs(1)));
    let error = connection
        .raw_client()
        .send_request("$JS.API.INFO", request)
        .await
        .expect_err("no answer");
    connection.classify(error)
}

/// Refused credentials, not a transient timeout: the operator then reports `Unauthorized`
/// and retries slowly instead of backing off fast against a server that will not change
/// its mind.
fn assert_refused_credentials(error: &kvop::nats::NatsError) {
    assert_eq!(error.reason(), "Unauthorized", "{error}");
    assert!(!error.is_transient(), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("NATS refused the credentials: ")
            && error
                .to_string()
                .ends_with(", so the request got no answer"),
        "{error}"
    );
}

#[tokio::test]
async fn a_background_connection_with_a_wrong_password_reports_refused_credentials() {
    let server = NatsServer::start_with_config(USERS);
    let settings = kvop::nats::ConnectionSettings {
        user: Some("alice".into()),
        password: Some("alice-WRONG-pw".into()),
        ..background_settings(&server.url())
    };
    let connection = kvop::nats::connect(&settings)
        .await
        .expect("connects in the background");
    let error = classified_request(&connection).await;
    assert_refused_credentials(&error);
    assert!(!error.to_string().contains("alice-WRONG-pw"), "{error}");
}

#[tokio::test]
async fn a_user_jwt_that_expires_while_connected_reports_refused_credentials() {
    let operator = Operator::new();
    let server = NatsServer::start_with_config(&operator.server_config());
    let keys = tempfile::tempdir().expect("dir");
    let now = jwt::now();
    let expires = now + 3;
    let user = User::new(&operator, keys.path(), "short", now, Some(expires));
    let settings = kvop::nats::ConnectionSettings {
        creds: Some(kvop::nats::Material::File(user.creds.clone())),
        ..background_settings(&server.url())
    };
    let connection = kvop::nats::connect(&settings).await.expect("connects");
    let info = async_nats::Request::new().timeout(Some(Duration::from_secs(1)));
    connection
        .raw_client()
        .send_request("$JS.API.INFO", info)
        .await
        .expect("answered while the JWT is valid");
    // The server closes the connection when the JWT expires ("User Authentication
    // Expired"), and refuses every reconnect.
    let after_expiry = UNIX_EPOCH + Duration::from_secs(expires as u64 + 1);
    tokio::time::sleep(
        after_expiry
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    )
    .await;
    let error = classified_request(&connection).await;
    assert_refused_credentials(&error);
}
