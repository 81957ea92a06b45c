//! Writing a bucket's keys in rounds: a write round sends the writes decided so far,
//! pipelined; the keys whose write conflicted or failed transiently are then read again
//! and decided again in a re-read round, until they settle, the rounds run out or riding
//! out the failures takes too long.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{ApplyOptions, EntryOutcome, EntryResult};
use crate::desired::{Desired, DesiredEntry};
use crate::nats::{BucketWrites, NatsError, Reread, Write, WriteOp, WriteResult};
use crate::observed::ObservedKey;
use crate::plan::{
    BucketPlan, EntryAction, EntryPlan, EntryVerb, Removal, decide_entry, decide_exclusive,
    decide_removal,
};

/// Write rounds per bucket: the first, then re-decided keys after conflicts and transient
/// failures.
const ROUNDS: usize = 6;

/// How long a run keeps riding out transient failures of one bucket, counted from the
/// first wait: longer than a stream leader election (4 to 9 s on a 3-node cluster here).
const RIDE_OUT: Duration = Duration::from_secs(15);

/// Writes every key change of a bucket, then re-decides conflicting keys a bounded
/// number of times.
pub(super) async fn apply_entries(
    bucket: &impl BucketWrites,
    plan: &BucketPlan,
    desired: &Desired,
    options: &ApplyOptions,
    on_write: &(dyn Fn() + Sync),
) -> Vec<EntryOutcome> {
    let mut rounds = Rounds::new(plan, desired, options);
    for round in 0..ROUNDS {
        let last_round = round + 1 == ROUNDS
            || rounds
                .give_up_at
                .is_some_and(|deadline| Instant::now() >= deadline);
        if !rounds.reread.is_empty() {
            if rounds.wait {
                tokio::time::sleep(retry_delay(round)).await;
                rounds
                    .give_up_at
                    .get_or_insert_with(|| Instant::now() + RIDE_OUT);
            }
            match rounds.reread_round(bucket, last_round).await {
                Next::Write => {}
                Next::Wait => continue,
                Next::Stop => break,
            }
        }
        if rounds.pending.is_empty() {
            if rounds.reread.is_empty() {
                break;
            }
            continue;
        }
        rounds.write_round(bucket, last_round, on_write).await;
    }
    rounds.outcomes
}

/// Where a re-read round leaves the bucket.
enum Next {
    /// Send the writes it decided.
    Write,
    /// Nothing could be read (NATS unavailable): wait and read again next round.
    Wait,
    /// Give up: the keys still in doubt keep their failure.
    Stop,
}

/// The state carried from round to round.
struct Rounds<'a> {
    plan: &'a BucketPlan,
    desired: &'a Desired,
    /// The bucket's declarations by key, built when a key is first decided again (most
    /// runs never do: no need to index 100,000 entries for them).
    declared: OnceLock<HashMap<&'a str, &'a DesiredEntry>>,
    options: &'a ApplyOptions,
    /// Every key of the plan, in plan order, with its result so far.
    outcomes: Vec<EntryOutcome>,
    /// The keys (indexes into `outcomes`) the next write round writes. The first round
    /// writes the plan's actions; every later one writes what a re-read decided, kept in
    /// `redecided` beside it. Each write is built as it is sent: a list of writes would
    /// hold about 100 bytes per key for the whole round.
    pending: Vec<usize>,
    redecided: Vec<EntryAction>,
    /// Keys to read again and decide again: after a revision conflict (someone wrote in
    /// between), or a transient failure (an election, a stall), after which the write may
    /// or may not have landed. Re-deciding from the stored state never writes twice.
    reread: Vec<usize>,
    /// Whether the next re-read waits first (after a transient failure, not a conflict).
    wait: bool,
    /// Riding out unavailability ends at a deadline too: against a server that is gone,
    /// every round also waits out request timeouts.
    give_up_at: Option<Instant>,
}

impl<'a> Rounds<'a> {
    fn new(plan: &'a BucketPlan, desired: &'a Desired, options: &'a ApplyOptions) -> Rounds<'a> {
        // Sized once: a list that doubles as it grows holds up to three times its writes.
        let writes = plan
            .entries
            .iter()
            .filter(|entry| entry.action.writes())
            .count();
        let mut rounds = Rounds {
            plan,
            desired,
            declared: OnceLock::new(),
            options,
            outcomes: Vec::with_capacity(plan.entries.len()),
            pending: Vec::with_capacity(writes),
            redecided: Vec::new(),
            reread: Vec::new(),
            wait: false,
            give_up_at: None,
        };
        for entry in &plan.entries {
            let result = match settled(&entry.action) {
                None => {
                    rounds.pending.push(rounds.outcomes.len());
                    EntryResult::NotAttempted {
                        reason: "interrupted".into(),
                    }
                }
                Some(settled) => settled,
            };
            rounds.outcomes.push(EntryOutcome {
                key: entry.key.clone(),
                owner: entry.owner.clone(),
                result,
                conflicts: 0,
                retries: 0,
            });
        }
        rounds
    }

    /// Whether a key that failed transiently may be tried again in a later round.
    fn may_retry(&self, last_round: bool) -> bool {
        !last_round && self.options.ride_out
    }

    /// Reads the keys in doubt again and decides each one again from what is stored.
    async fn reread_round(&mut self, bucket: &impl BucketWrites, last_round: bool) -> Next {
        // While the client is reconnecting, every request would wait out its timeout.
        if !bucket.is_connected() {
            if self.may_retry(last_round) {
                self.wait = true;
                return Next::Wait;
            }
            self.fail_rereads(NatsError::unavailable("the connection to NATS was lost"));
            return Next::Stop;
        }
        let keys: Vec<Arc<str>> = self
            .reread
            .iter()
            .map(|&index| self.outcomes[index].key.clone())
            .collect();
        let reads = match bucket.reread(&keys).await {
            Ok(reads) => reads,
            Err(error) => {
                if error.is_transient() && self.may_retry(last_round) {
                    self.wait = true;
                    return Next::Wait;
                }
                self.fail_rereads(error);
                return Next::Stop;
            }
        };
        let retry_later = self.may_retry(last_round);
        let mut again = Vec::new();
        for (index, read) in std::mem::take(&mut self.reread).into_iter().zip(reads) {
            let current = match read {
                Reread::Read(current) => current,
                // The result stays the failure that brought the key here.
                Reread::Postponed => {
                    if retry_later {
                        again.push(index);
                    }
                    continue;
                }
                Reread::Failed(error) => {
                    if error.is_transient() && retry_later {
                        again.push(index);
                    }
                    self.outcomes[index].result = EntryResult::Failed { error };
                    continue;
                }
            };
            let action = self.redecide(index, current.as_ref());
            match settled(&action) {
                None => {
                    self.pending.push(index);
                    self.redecided.push(action);
                }
                Some(settled) => self.outcomes[index].result = settled,
            }
        }
        self.wait = !again.is_empty();
        self.reread = again;
        Next::Write
    }

    /// Sends the pending writes and sorts their results: settled, or to read again.
    async fn write_round(
        &mut self,
        bucket: &impl BucketWrites,
        last_round: bool,
        on_write: &(dyn Fn() + Sync),
    ) {
        let retry = Retry {
            conflicts: !last_round,
            failures: !last_round && self.options.ride_out,
        };
        let plan = self.plan;
        let pending = std::mem::take(&mut self.pending);
        let redecided = std::mem::take(&mut self.redecided);
        // A later round writes what its re-read decided; the first, what the plan did.
        let action_of = |write: usize| {
            redecided
                .get(write)
                .unwrap_or(&plan.entries[pending[write]].action)
        };
        let outcomes = &mut self.outcomes;
        let reread = &mut self.reread;
        let wait = &mut self.wait;
        bucket
            .write_all(
                &self.options.manager,
                pending.len(),
                |write| {
                    let planned = &plan.entries[pending[write]];
                    write_for(planned, action_of(write))
                },
                self.options.window,
                |write, result| {
                    let index = pending[write];
                    let sent = !matches!(result, WriteResult::NotSent(_));
                    let verb = action_of(write).verb();
                    if let Some(wait_first) = sort(&mut outcomes[index], result, verb, retry) {
                        reread.push(index);
                        *wait |= wait_first;
                    }
                    if sent {
                        on_write();
                    }
                },
            )
            .await;
        // Results come in acknowledgement order: read again in plan order.
        self.reread.sort_unstable();
    }

    fn fail_rereads(&mut self, error: NatsError) {
        for index in std::mem::take(&mut self.reread) {
            self.outcomes[index].result = EntryResult::Failed {
                error: error.clone(),
            };
        }
    }

    /// The decision for a key read again, by the same rules as the plan: its
    /// declaration, or for a key being removed, the rule for removals.
    fn redecide(&self, index: usize, current: Option<&ObservedKey>) -> EntryAction {
        let planned = &self.plan.entries[index];
        let declared = self.declared.get_or_init(|| {
            self.desired
                .entries_of(&self.plan.bucket)
                .map(|entry| (&*entry.key, entry))
                .collect()
        });
        if let Some(entry) = declared.get(&*planned.key) {
            return decide_entry(entry, current, &self.options.manager, self.options.scope);
        }
        let removal = match planned.action {
            EntryAction::Remove { removal, .. } => removal,
            _ => Removal::Prune,
        };
        if removal == Removal::Exclusive {
            return decide_exclusive(current, &self.options.manager, self.options.scope);
        }
        // A pruned key may have been written for any resource; a deleted resource's key
        // is removed only while it holds that resource's write.
        let owner = (removal != Removal::Prune).then_some(&*planned.owner);
        decide_removal(current, &self.options.manager, owner, removal)
    }
}

/// How long to wait before reading keys again after a transient failure: 0.5 s, then
/// doubling to 4 s; about 11 s over all rounds, enough to ride out a stream leader
/// election (4 to 9 s on a 3-node cluster here) without a hot loop.
fn retry_delay(round: usize) -> Duration {
    Duration::from_millis(500 * (1 << round.saturating_sub(1).min(3)))
}

/// Which failed writes a round reads again and decides again.
#[derive(Clone, Copy)]
struct Retry {
    /// Revision conflicts (someone wrote in between): not in the last round.
    conflicts: bool,
    /// Transient failures and writes not sent: only while riding out failures.
    failures: bool,
}

/// Records one write's result in its key's outcome. Returns `Some(wait first)` when the
/// key is to be read again: right away after a conflict, after a pause after a failure.
fn sort(
    outcome: &mut EntryOutcome,
    result: WriteResult,
    verb: EntryVerb,
    retry: Retry,
) -> Option<bool> {
    let (result, again) = match result {
        WriteResult::Written { revision } => (
            EntryResult::Written {
                action: verb,
                revision,
            },
            None,
        ),
        WriteResult::Failed(error) if error.is_conflict() && retry.conflicts => {
            outcome.conflicts += 1;
            // Stays the result if the rounds run out.
            (EntryResult::Failed { error: *error }, Some(false))
        }
        WriteResult::Failed(error) if error.is_transient() && retry.failures => {
            outcome.retries += 1;
            (EntryResult::Failed { error: *error }, Some(true))
        }
        WriteResult::Failed(error) => (EntryResult::Failed { error: *error }, None),
        // Not sent, so nothing to doubt: the key is read and decided again in the next
        // round like any other, without counting as a retry.
        WriteResult::NotSent(error) => (
            EntryResult::NotAttempted {
                reason: format!("not sent after an earlier failure: {error}").into(),
            },
            retry.failures.then_some(true),
        ),
    };
    outcome.result = result;
    again
}

/// The final result of an action that writes nothing; `None` for one that writes.
fn settled(action: &EntryAction) -> Option<EntryResult> {
    match action {
        EntryAction::Create { .. } | EntryAction::Update { .. } | EntryAction::Remove { .. } => {
            None
        }
        EntryAction::Wait => Some(EntryResult::NotAttempted {
            reason: "the bucket does not exist".into(),
        }),
        EntryAction::Unchanged { .. }
        | EntryAction::Skip { .. }
        | EntryAction::Conflict { .. }
        | EntryAction::Retain { .. } => Some(EntryResult::Settled(action.clone())),
    }
}

/// The write of an action that writes (see [`settled`]): a conditional put or marker.
fn write_for<'a>(planned: &'a EntryPlan, action: &EntryAction) -> Write<'a> {
    let (op, expected_revision) = match action {
        EntryAction::Create {
            expected_revision,
            value,
            ..
        }
        | EntryAction::Update {
            expected_revision,
            value,
            ..
        } => (WriteOp::Put(value.clone()), *expected_revision),
        EntryAction::Remove {
            expected_revision,
            removal,
        } => {
            let op = match removal {
                Removal::Prune | Removal::Delete | Removal::Exclusive => WriteOp::Delete,
                Removal::Purge => WriteOp::Purge,
            };
            (op, *expected_revision)
        }
        // Never pending: `settled` ends them without a write.
        EntryAction::Wait
        | EntryAction::Unchanged { .. }
        | EntryAction::Skip { .. }
        | EntryAction::Conflict { .. }
        | EntryAction::Retain { .. } => unreachable!("{} does not write", action.verb()),
    };
    Write {
        key: &planned.key,
        op,
        expected_revision,
        owner: &planned.owner,
        sensitive: planned.sensitive,
    }
}
