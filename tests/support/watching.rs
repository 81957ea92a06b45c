//! `kvop reconcile --watch` as a child process: its JSON log lines collected as they come,
//! signals, and waiting for what it should do (never for a fixed time).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long anything a watch should do may take before a test fails. Generous: the
/// machine is shared and slow; a test never asserts a time.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running `kvop reconcile -f DIR --watch`, stopped (SIGKILL) when dropped.
pub struct Watching {
    child: Child,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Watching {
    /// Starts watching `inputs` against `url`, logging JSON at info.
    pub fn start(url: &str, inputs: &[&Path], extra: &[&str]) -> Watching {
        Watching::start_in(&[], url, inputs, extra)
    }

    /// [`Watching::start`] run by `wrapper` (e.g. `unshare ...`), which must exec kvop
    /// in its own process so that [`Watching::pid`] is kvop's.
    pub fn start_in(wrapper: &[&str], url: &str, inputs: &[&Path], extra: &[&str]) -> Watching {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(env!("CARGO_BIN_EXE_kvop"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_kvop")),
        };
        command.arg("reconcile");
        for input in inputs {
            command.arg("-f").arg(input);
        }
        command
            .args(["--watch", "--log-format", "json"])
            .args(["--log-level", "info,async_nats=off"])
            .args(extra)
            .env("NATS_URL", url)
            .env_remove("KVOP_MANAGER")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start kvop --watch");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let collected = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"fields": {"message": line}}));
                collected.lock().unwrap().push(value);
            }
        });
        Watching { child, lines }
    }

    /// The messages logged so far, with their fields, as `message key=value ...`.
    pub fn log(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|line| {
                let fields = &line["fields"];
                let mut text = fields["message"].as_str().unwrap_or_default().to_string();
                if let Some(fields) = fields.as_object() {
                    for (name, value) in fields {
                        if name != "message" {
                            let value = value.as_str().map_or(value.to_string(), str::to_string);
                            text.push_str(&format!(" {name}={value}"));
                        }
                    }
                }
                text
            })
            .collect()
    }

    /// Lines logged so far that contain every one of `parts`.
    pub fn lines_with(&self, parts: &[&str]) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|line| parts.iter().all(|part| line.contains(part)))
            .collect()
    }

    /// Waits until `count` lines contain every one of `parts`.
    pub async fn wait_for_lines(&self, parts: &[&str], count: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.lines_with(parts).len() < count {
            assert!(
                Instant::now() < deadline,
                "no {count} log lines with {parts:?} within {PATIENCE:?}; the log:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Whether `check` comes to hold within [`PATIENCE`], polling.
    pub async fn within<F, Fut>(&self, mut check: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + PATIENCE;
        while !check().await {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        true
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("kvop is running")
    }

    /// Sends a signal (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("kvop is running");
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Sends SIGTERM and returns the exit code.
    pub async fn stop(mut self) -> i32 {
        self.signal("TERM");
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("kvop --watch stops after SIGTERM")
            .expect("wait");
        status.code().unwrap_or(-1)
    }
}

/// Waits until `check` holds, polling; panics with `what` after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Replaces `path` as editors do: write a temporary file beside it, rename it over.
pub fn save_atomically(path: &Path, text: &str) {
    let name = path.file_name().unwrap().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temporary, text).expect("write the temporary file");
    std::fs::rename(&temporary, path).expect("rename over the file");
}

/// Manifests as one multi-document file.
pub fn docs(docs: &[String]) -> String {
    docs.join("---\n")
}

/// Whether the key's live value is `want`; a bucket that does not exist (yet, or any
/// more) holds no value.
pub async fn value_is(
    js: &jetstream::Context,
    bucket: &str,
    key: &str,
    want: Option<&str>,
) -> bool {
    let Ok(store) = js.get_key_value(bucket).await else {
        return want.is_none();
    };
    match store.get(key).await {
        Ok(value) => value.as_deref() == want.map(str::as_bytes),
        Err(_) => false,
    }
}

pub async fn wait_value(
    watch: &Watching,
    js: &jetstream::Context,
    bucket: &str,
    key: &str,
    want: Option<&str>,
) {
    let what = format!("{bucket}/{key} == {want:?}");
    if !watch.within(|| value_is(js, bucket, key, want)).await {
        panic!(
            "{what}: not within {PATIENCE:?}; the log:\n{}",
            watch.log().join("\n")
        );
    }
}

pub async fn kv(js: &jetstream::Context, bucket: &str) -> jetstream::kv::Store {
    js.get_key_value(bucket).await.expect("open the bucket")
}

/// The whole response to `GET path` on the metrics endpoint.
pub async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the endpoint");
    socket
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: kvop\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    response
}
