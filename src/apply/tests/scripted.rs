//! A scripted bucket behind [`BucketWrites`]: a test queues NATS's answer to each call in
//! order, and the bucket records every call apply made, so the test states what the
//! server answers and checks what apply sent. A call the script has no answer for fails
//! the test: apply did something the test did not expect.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::desired::{BucketClaim, BucketConfig};
use crate::nats::{BucketWrites, Deleted, NatsError, Reread, Write, WriteOp, WriteResult};
use crate::observed::ObservedStream;

/// One call apply made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Call {
    Create,
    Update,
    /// The stream read again.
    State,
    Release,
    Delete,
    /// The keys read again, in the order asked.
    Reread(Vec<String>),
    /// One write round: every write handed to the bucket at once, with the window that
    /// pipelines them.
    Write {
        manager: String,
        window: usize,
        writes: Vec<Sent>,
    },
}

/// One write as sent: key, operation, the revision it expects, and its owner header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sent {
    pub key: String,
    pub op: WriteOp,
    pub expected_revision: u64,
    pub owner: String,
}

/// Answers, each queue in call order.
#[derive(Default)]
struct Script {
    /// Whether the connection is up, asked before each re-read; up once these run out.
    connected: VecDeque<bool>,
    creates: VecDeque<Result<(), NatsError>>,
    updates: VecDeque<Result<(), NatsError>>,
    states: VecDeque<Result<Option<ObservedStream>, NatsError>>,
    releases: VecDeque<Result<(), NatsError>>,
    deletes: VecDeque<Result<Deleted, NatsError>>,
    rereads: VecDeque<Result<Vec<Reread>, NatsError>>,
    /// One result per write of a round, in the order of the writes.
    writes: VecDeque<Vec<WriteResult>>,
}

#[derive(Default)]
pub(super) struct Scripted {
    script: Mutex<Script>,
    calls: Mutex<Vec<Call>>,
    /// The claim of each create, update and release, in order.
    claims: Mutex<Vec<BucketClaim>>,
    /// What apply rode out (the name it gave), in order.
    ridden_out: Mutex<Vec<String>>,
}

impl Scripted {
    pub(super) fn new() -> Scripted {
        Scripted::default()
    }

    /// The connection is down at the next re-read.
    pub(super) fn disconnected(self) -> Scripted {
        self.script().connected.push_back(false);
        self
    }

    pub(super) fn create(self, answer: Result<(), NatsError>) -> Scripted {
        self.script().creates.push_back(answer);
        self
    }

    pub(super) fn update(self, answer: Result<(), NatsError>) -> Scripted {
        self.script().updates.push_back(answer);
        self
    }

    pub(super) fn state(self, answer: Result<Option<ObservedStream>, NatsError>) -> Scripted {
        self.script().states.push_back(answer);
        self
    }

    pub(super) fn release(self, answer: Result<(), NatsError>) -> Scripted {
        self.script().releases.push_back(answer);
        self
    }

    pub(super) fn delete(self, answer: Result<Deleted, NatsError>) -> Scripted {
        self.script().deletes.push_back(answer);
        self
    }

    pub(super) fn reread(self, answer: Result<Vec<Reread>, NatsError>) -> Scripted {
        self.script().rereads.push_back(answer);
        self
    }

    /// The results of the next write round, one per write.
    pub(super) fn writes(self, results: Vec<WriteResult>) -> Scripted {
        self.script().writes.push_back(results);
        self
    }

    /// Every call apply made, in order.
    pub(super) fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    /// The claim each create, update and release carried, in order.
    pub(super) fn claims(&self) -> Vec<BucketClaim> {
        self.claims.lock().expect("claims").clone()
    }

    /// What apply asked to ride out through transient failures, by the name it gave.
    pub(super) fn ridden_out(&self) -> Vec<String> {
        self.ridden_out.lock().expect("ridden out").clone()
    }

    /// Checks that apply asked for every answer the test scripted.
    pub(super) fn assert_script_used(&self) {
        let script = self.script();
        assert!(
            script.creates.is_empty()
                && script.updates.is_empty()
                && script.states.is_empty()
                && script.releases.is_empty()
                && script.deletes.is_empty()
                && script.rereads.is_empty()
                && script.writes.is_empty(),
            "apply left scripted answers unused; its calls: {:#?}",
            self.calls()
        );
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("script")
    }

    fn record(&self, call: Call) {
        self.calls.lock().expect("calls").push(call);
    }

    fn record_claim(&self, claim: &BucketClaim) {
        self.claims.lock().expect("claims").push(claim.clone());
    }

    fn unscripted(&self, what: &str) -> ! {
        panic!(
            "apply called {what}, which the script does not answer; its calls: {:#?}",
            self.calls()
        )
    }
}

impl BucketWrites for &Scripted {
    fn is_connected(&self) -> bool {
        self.script().connected.pop_front().unwrap_or(true)
    }

    fn create(
        &self,
        _config: &BucketConfig,
        claim: &BucketClaim,
    ) -> impl Future<Output = Result<(), NatsError>> + Send {
        self.record(Call::Create);
        self.record_claim(claim);
        let answer = self.script().creates.pop_front();
        let answer = answer.unwrap_or_else(|| self.unscripted("create"));
        async move { answer }
    }

    fn update(
        &self,
        _config: &BucketConfig,
        claim: &BucketClaim,
    ) -> impl Future<Output = Result<(), NatsError>> + Send {
        self.record(Call::Update);
        self.record_claim(claim);
        let answer = self.script().updates.pop_front();
        let answer = answer.unwrap_or_else(|| self.unscripted("update"));
        async move { answer }
    }

    fn state(&self) -> impl Future<Output = Result<Option<ObservedStream>, NatsError>> + Send {
        self.record(Call::State);
        let answer = self.script().states.pop_front();
        let answer = answer.unwrap_or_else(|| self.unscripted("state"));
        async move { answer }
    }

    fn release(&self, claim: &BucketClaim) -> impl Future<Output = Result<(), NatsError>> + Send {
        self.record(Call::Release);
        self.record_claim(claim);
        let answer = self.script().releases.pop_front();
        let answer = answer.unwrap_or_else(|| self.unscripted("release"));
        async move { answer }
    }

    fn delete(&self) -> impl Future<Output = Result<Deleted, NatsError>> + Send {
        self.record(Call::Delete);
        let answer = self.script().deletes.pop_front();
        let answer = answer.unwrap_or_else(|| self.unscripted("delete"));
        async move { answer }
    }

    /// One attempt: how often to retry is the connection's policy (`nats::retry`), and
    /// apply sees only its final result.
    fn ride_out<'f, T, F, Fut>(
        &'f self,
        what: &'f str,
        mut attempt: F,
    ) -> BoxFuture<'f, Result<T, NatsError>>
    where
        T: Send + 'f,
        F: FnMut() -> Fut + Send + 'f,
        Fut: Future<Output = Result<T, NatsError>> + Send + 'f,
    {
        self.ridden_out
            .lock()
            .expect("ridden out")
            .push(what.to_string());
        attempt().boxed()
    }

    fn reread(
        &self,
        keys: &[Arc<str>],
    ) -> impl Future<Output = Result<Vec<Reread>, NatsError>> + Send {
        self.record(Call::Reread(
            keys.iter().map(|key| key.to_string()).collect(),
        ));
        let answer = self.script().rereads.pop_front();
        let answer = answer.unwrap_or_else(|| self.unscripted("reread"));
        if let Ok(reads) = &answer {
            assert_eq!(
                reads.len(),
                keys.len(),
                "one scripted read per key: {keys:?}"
            );
        }
        async move { answer }
    }

    fn write_all<'f, 'a: 'f>(
        &'f self,
        manager: &'f str,
        count: usize,
        write_at: impl Fn(usize) -> Write<'a> + Send + 'f,
        window: usize,
        mut on_result: impl FnMut(usize, WriteResult) + Send + 'f,
    ) -> BoxFuture<'f, ()> {
        let writes = (0..count)
            .map(|index| {
                let write = write_at(index);
                Sent {
                    key: write.key.to_string(),
                    op: write.op,
                    expected_revision: write.expected_revision,
                    owner: write.owner.to_string(),
                }
            })
            .collect();
        self.record(Call::Write {
            manager: manager.to_string(),
            window,
            writes,
        });
        let results = self.script().writes.pop_front();
        let results = results.unwrap_or_else(|| self.unscripted("write_all"));
        assert_eq!(results.len(), count, "one scripted result per write");
        async move {
            for (index, result) in results.into_iter().enumerate() {
                on_result(index, result);
            }
        }
        .boxed()
    }
}
