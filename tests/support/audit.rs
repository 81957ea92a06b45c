//! The operation audit of the fault tests: kvop runs with its operation log on (one
//! `kvop::write` event per write attempt: key, expected revision, outcome), and the log is
//! checked against what the server really stored.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;

use super::{Run, kvop};

/// One write kvop attempted, from its operation log.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub bucket: String,
    pub key: String,
    pub expected_revision: u64,
    /// `written`, or the error reason (`Conflict`, `Timeout`, ...).
    pub outcome: String,
    /// The revision the server acknowledged, for `written`.
    pub revision: Option<u64>,
}

/// A kvop run with its operation log.
#[derive(Debug)]
pub struct AuditedRun {
    pub run: Run,
    pub attempts: Vec<Attempt>,
}

/// Runs kvop with the operation log on and the JSON report on stdout.
pub async fn kvop_audited(url: &str, args: &[&str]) -> AuditedRun {
    let mut all = args.to_vec();
    all.extend([
        "-o",
        "json",
        "--log-format",
        "json",
        "--log-level",
        "warn,async_nats=off,kvop::write=debug",
    ]);
    let run = kvop(url, &all).await;
    let attempts = run.stderr.lines().filter_map(parse_attempt).collect();
    AuditedRun { run, attempts }
}

fn parse_attempt(line: &str) -> Option<Attempt> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event["target"] != "kvop::write" {
        return None;
    }
    let fields = &event["fields"];
    Some(Attempt {
        bucket: fields["bucket"].as_str()?.to_string(),
        key: fields["key"].as_str()?.to_string(),
        expected_revision: fields["expected_revision"].as_u64()?,
        outcome: fields["outcome"].as_str()?.to_string(),
        revision: fields["revision"].as_u64(),
    })
}

impl AuditedRun {
    /// Key writes the report claims (entries whose result is a write).
    pub fn claimed_key_writes(&self) -> usize {
        let report = self.run.json();
        report["result"]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|bucket| bucket["entries"].as_array().into_iter().flatten())
            .filter(|entry| {
                matches!(
                    entry["result"].as_str(),
                    Some("create" | "update" | "delete")
                )
            })
            .count()
    }

    pub fn written(&self) -> impl Iterator<Item = &Attempt> {
        self.attempts.iter().filter(|a| a.outcome == "written")
    }

    /// The checks every fault test makes on every run, against the stored stream:
    /// - every acknowledged write is stored under its key, or superseded by a later
    ///   message of that key;
    /// - per key, acknowledged revisions only increase and each is above the revision
    ///   it expected;
    /// - a key is written at most once per run (a write that landed is never repeated),
    ///   and the writes in the log are exactly the writes the report claims.
    pub async fn check(&self, js: &jetstream::Context) {
        let mut last_per_key: HashMap<(&str, &str), u64> = HashMap::new();
        for attempt in self.written() {
            let revision = attempt.revision.expect("a written attempt has a revision");
            assert!(
                revision > attempt.expected_revision,
                "{attempt:?}: stored above the revision it expected"
            );
            let previous = last_per_key.insert((&attempt.bucket, &attempt.key), revision);
            assert!(
                previous.is_none(),
                "{attempt:?}: the key was already written in this run at {previous:?}"
            );
            assert_stored_or_superseded(js, attempt, revision).await;
        }
        if self.run.stdout.trim_start().starts_with('{') {
            assert_eq!(
                self.written().count(),
                self.claimed_key_writes(),
                "the operation log and the report agree on the writes"
            );
        }
    }
}

async fn assert_stored_or_superseded(js: &jetstream::Context, attempt: &Attempt, revision: u64) {
    let subject = format!("$KV.{}.{}", attempt.bucket, attempt.key);
    // Right after a fault the cluster may still be electing the stream's leader and
    // answer 503 (JetStream temporarily unavailable) to the audit's own reads: ask again
    // until it answers, and judge only what it answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = async {
            let stream = js
                .get_stream(format!("KV_{}", attempt.bucket))
                .await
                .map_err(|error| error.to_string())?;
            if let Ok(message) = stream.get_raw_message(revision).await {
                return Ok(Found::Revision(message.subject.to_string()));
            }
            stream
                .get_last_raw_message_by_subject(&subject)
                .await
                .map(|latest| Found::Latest(latest.sequence))
                .map_err(|error| error.to_string())
        }
        .await;
        match found {
            Ok(Found::Revision(stored)) => {
                assert_eq!(
                    stored, subject,
                    "{attempt:?}: the acknowledged revision holds that key"
                );
                return;
            }
            Ok(Found::Latest(latest)) => {
                assert!(
                    latest > revision,
                    "{attempt:?}: acknowledged but neither stored nor superseded (latest {latest})"
                );
                return;
            }
            Err(error) if is_unavailable(&error) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => panic!("{attempt:?}: acknowledged but lost ({error})"),
        }
    }
}

/// What the audit found for an acknowledged write.
enum Found {
    /// The subject stored at the acknowledged revision.
    Revision(String),
    /// The key's latest revision (the acknowledged one is gone: superseded, or lost).
    Latest(u64),
}

/// The server's "try again" answers while a stream has no leader.
fn is_unavailable(error: &str) -> bool {
    error.contains("code 503") || error.contains("timed out") || error.contains("no responders")
}
