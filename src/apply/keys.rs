//! Writing a bucket's keys in rounds: the planned writes, pipelined, then the keys whose
//! write conflicted or failed transiently, read again and decided again, until they
//! settle, the rounds run out or riding out the failures takes too long.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream;

use super::{ApplyOptions, EntryOutcome, EntryResult};
use crate::desired::{Desired, DesiredEntry};
use crate::nats::errors::classify;
use crate::nats::reread::{Reread, reread_keys};
use crate::nats::write::{Write, WriteOp, WriteResult, write_all};
use crate::nats::{NatsError, stream_name};
use crate::observed::{ObservedKey, Operation};
use crate::plan::{BucketPlan, EntryAction, decide_entry};

/// Times a key is re-read and re-decided after a revision conflict before giving up.
pub const CONFLICT_RETRIES: usize = 3;

/// Write rounds per bucket: the first, then re-decided keys after conflicts and transient
/// failures.
const ROUNDS: usize = 6;

/// How long a run keeps riding out transient failures of one bucket, counted from the
/// first wait: longer than a stream leader election (4 to 9 s on a 3-node cluster here).
const RIDE_OUT: Duration = Duration::from_secs(15);

/// Writes every key change of a bucket, then re-decides conflicting keys a bounded
/// number of times.
pub(super) async fn apply_entries(
    jetstream: &jetstream::Context,
    plan: &BucketPlan,
    desired: &Desired,
    options: &ApplyOptions,
    on_write: &(dyn Fn() + Sync),
) -> Vec<EntryOutcome> {
    let declared: HashMap<&str, &DesiredEntry> = desired
        .entries_of(&plan.bucket)
        .map(|entry| (entry.key.as_str(), entry))
        .collect();
    let mut outcomes: Vec<EntryOutcome> = Vec::with_capacity(plan.entries.len());
    // (index into outcomes, verb, write) of every key still to write.
    let mut pending: Vec<(usize, &'static str, Write)> = Vec::new();
    for entry in &plan.entries {
        let result = match write_for(&entry.key, &entry.owner, &entry.action) {
            Ok(write) => {
                pending.push((outcomes.len(), entry.action.verb(), write));
                EntryResult::NotAttempted {
                    reason: "interrupted".into(),
                }
            }
            Err(settled) => settled,
        };
        outcomes.push(EntryOutcome {
            key: entry.key.clone(),
            owner: entry.owner.clone(),
            result,
            conflicts: 0,
            retries: 0,
        });
    }
    // Keys to read again and decide again: after a revision conflict (someone wrote in
    // between), or a transient failure (an election, a stall), after which the write may
    // or may not have landed. Re-deciding from the stored state never writes twice.
    let mut reread: Vec<usize> = Vec::new();
    let mut wait = false;
    let mut stream = None;
    // Riding out unavailability ends at a deadline too: against a server that is gone,
    // every round also waits out request timeouts.
    let mut give_up_at: Option<Instant> = None;
    for round in 0..ROUNDS {
        let last_round =
            round + 1 == ROUNDS || give_up_at.is_some_and(|deadline| Instant::now() >= deadline);
        if !reread.is_empty() {
            if wait {
                tokio::time::sleep(retry_delay(round)).await;
                give_up_at.get_or_insert_with(|| Instant::now() + RIDE_OUT);
            }
            // While the client is reconnecting, every request would wait out its timeout.
            if jetstream.client().connection_state() != State::Connected {
                if options.ride_out && !last_round {
                    wait = true;
                    continue;
                }
                let error = NatsError::Unavailable("the connection to NATS was lost".into());
                for index in reread.drain(..) {
                    outcomes[index].result = EntryResult::Failed {
                        error: error.clone(),
                    };
                }
                break;
            }
            if stream.is_none() {
                match jetstream.get_stream(stream_name(&plan.bucket)).await {
                    Ok(found) => stream = Some(found),
                    Err(error) => {
                        let error = classify(&error);
                        if error.is_transient() && !last_round && options.ride_out {
                            wait = true;
                            continue;
                        }
                        for index in reread.drain(..) {
                            outcomes[index].result = EntryResult::Failed {
                                error: error.clone(),
                            };
                        }
                        break;
                    }
                }
            }
            let Some(stream) = stream.as_ref() else { break };
            let keys: Vec<String> = reread
                .iter()
                .map(|&index| outcomes[index].key.clone())
                .collect();
            let reads = reread_keys(stream, &plan.bucket, &keys).await;
            let retry_later = !last_round && options.ride_out;
            let mut again = Vec::new();
            for (index, read) in reread.drain(..).zip(reads) {
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
                        outcomes[index].result = EntryResult::Failed { error };
                        continue;
                    }
                };
                let key = &outcomes[index].key;
                let action = redecide(&declared, key, current, &options.manager);
                match write_for(key, &outcomes[index].owner, &action) {
                    Ok(write) => pending.push((index, action.verb(), write)),
                    Err(settled) => outcomes[index].result = settled,
                }
            }
            wait = !again.is_empty();
            reread = again;
        }
        if pending.is_empty() {
            if reread.is_empty() {
                break;
            }
            continue;
        }
        let writes: Vec<Write> = pending.iter().map(|(_, _, write)| write.clone()).collect();
        let results = write_all(
            jetstream,
            &plan.bucket,
            &options.manager,
            &writes,
            options.window,
            on_write,
        )
        .await;
        for ((index, verb, _), result) in pending.drain(..).zip(results) {
            outcomes[index].result = match result {
                WriteResult::Written { revision } => EntryResult::Written {
                    action: verb,
                    revision,
                },
                WriteResult::Failed(error)
                    if error.is_transient()
                        && !last_round
                        && (options.ride_out || error == NatsError::Conflict) =>
                {
                    if error == NatsError::Conflict {
                        outcomes[index].conflicts += 1;
                    } else {
                        outcomes[index].retries += 1;
                        wait = true;
                    }
                    reread.push(index);
                    // Stays the result if the retries run out.
                    EntryResult::Failed { error }
                }
                WriteResult::Failed(error) => EntryResult::Failed { error },
                // Not sent, so nothing to doubt: the key is read and decided again in the
                // next round like any other, without counting as a retry.
                WriteResult::NotSent(error) => {
                    if !last_round && options.ride_out {
                        wait = true;
                        reread.push(index);
                    }
                    EntryResult::NotAttempted {
                        reason: format!("not sent after an earlier failure: {error}"),
                    }
                }
            };
        }
    }
    outcomes
}

/// The decision for a key read again: its declaration, or for a pruned key, delete it
/// only while it is still this manager's and live.
fn redecide(
    declared: &HashMap<&str, &DesiredEntry>,
    key: &str,
    current: Option<ObservedKey>,
    manager: &str,
) -> EntryAction {
    match declared.get(key) {
        Some(entry) => decide_entry(entry, current.as_ref(), manager),
        None => match current {
            Some(current) if current.operation == Operation::Put && current.writer.is(manager) => {
                EntryAction::Prune {
                    expected_revision: current.revision,
                }
            }
            Some(current) => EntryAction::Unchanged {
                revision: current.revision,
            },
            None => EntryAction::Unchanged { revision: 0 },
        },
    }
}

/// How long to wait before reading keys again after a transient failure: 0.5 s, then
/// doubling to 4 s; about 11 s over all rounds, enough to ride out a stream leader
/// election (4 to 9 s on a 3-node cluster here) without a hot loop.
fn retry_delay(round: usize) -> Duration {
    Duration::from_millis(500 * (1 << round.saturating_sub(1).min(3)))
}

/// The write an action needs, or the final result of an action that writes nothing.
fn write_for(key: &str, owner: &str, action: &EntryAction) -> Result<Write, EntryResult> {
    let (op, expected_revision) = match action {
        EntryAction::Create {
            expected_revision,
            value,
        }
        | EntryAction::Update {
            expected_revision,
            value,
            ..
        } => (WriteOp::Put(value.clone()), *expected_revision),
        EntryAction::Prune { expected_revision } => (WriteOp::Delete, *expected_revision),
        EntryAction::Unchanged { revision } => {
            return Err(EntryResult::Unchanged {
                revision: *revision,
            });
        }
        EntryAction::Skip { revision } => {
            return Err(EntryResult::Skipped {
                revision: *revision,
            });
        }
        EntryAction::Conflict { revision, writer } => {
            return Err(EntryResult::Conflict {
                revision: *revision,
                writer: writer.clone(),
            });
        }
        EntryAction::Wait => {
            return Err(EntryResult::NotAttempted {
                reason: "the bucket does not exist".into(),
            });
        }
    };
    Ok(Write {
        key: key.to_string(),
        op,
        expected_revision,
        owner: owner.to_string(),
    })
}
