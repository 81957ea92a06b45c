//! The watch's state between passes and the three things that change it: a reload of
//! the files, a repair of buckets that drifted, and the record of a pass.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::WatchOptions;
use super::files::FileWatcher;
use super::memory::{Memory, PassSummary};
use super::pass::{Declarations, PASS_KIND, pass};
use super::signals::finish_unless_stopped;
use super::views::{Declared, Views};
use crate::desired::Desired;
use crate::manifest::{self, LoadErrors, LoadOptions, Loaded};
use crate::metrics::Metrics;
use crate::nats::Connection;
use crate::pass::PassError;
use crate::problem::Problem;
use crate::server::Health;

/// Longest wait before retrying a pass that NATS failed.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// The watch's state between passes.
pub(super) struct Watch<'a> {
    pub(super) options: &'a WatchOptions,
    pub(super) connection: Connection,
    pub(super) views: Views,
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
    /// The last valid files: what NATS is kept equal to.
    pub(super) in_force: Option<Arc<Desired>>,
    /// Buckets that need a pass.
    pub(super) dirty: BTreeSet<String>,
    pub(super) memory: Memory,
    /// Passes in a row that NATS failed, for the retry delay.
    pub(super) failures: u32,
    pub(super) retry_at: Option<Instant>,
    /// When deletions held back for the settle time are due: the files are read again
    /// then, so that a key whose manifest came back is never deleted.
    pub(super) prune_due: Option<tokio::time::Instant>,
}

/// Whether the watch goes on.
pub(super) type Flow = std::ops::ControlFlow<()>;

impl Watch<'_> {
    /// Reads the files again; if they are valid and the server can hold them, brings
    /// every bucket in line and puts them in force. Otherwise writes nothing and keeps
    /// the last valid files in force.
    pub(super) async fn reload(
        &mut self,
        files: &mut FileWatcher,
        stop: &mut watch::Receiver<Option<&'static str>>,
    ) -> Flow {
        let load_options = LoadOptions {
            manager: self.options.pass.manager.clone(),
        };
        // Waiting for settled files can take long (a file left open, a rebase): a stop
        // ends the wait; nothing was written yet.
        let loaded = tokio::select! {
            loaded = read_settled(files, &self.options.inputs, &load_options) => loaded,
            _ = stop.wait_for(Option::is_some) => return Flow::Break(()),
        };
        if let Err(error) = files.rearm() {
            tracing::warn!("{error}");
        }
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(errors) => {
                self.refused(&errors.0.iter().map(Problem::from).collect::<Vec<_>>());
                return Flow::Continue(());
            }
        };
        for notice in &loaded.skipped {
            tracing::debug!("{notice}");
        }
        let candidate = Arc::new(loaded.desired);
        let started = Instant::now();
        let declarations = Declarations {
            desired: &candidate,
            before: self.in_force.as_deref(),
        };
        let work = pass(
            &self.connection,
            &declarations,
            None,
            &self.options.pass,
            &self.metrics,
            &mut self.memory,
        );
        let Some(result) = finish_unless_stopped(work, stop).await else {
            return Flow::Break(());
        };
        match result {
            Err(error) if error.is_bad_input() => {
                self.refused(&problems_of(&error));
                return Flow::Continue(());
            }
            result => {
                tracing::info!(
                    buckets = candidate.buckets.len(),
                    entries = candidate.entries.len(),
                    "manifests loaded and in force"
                );
                self.metrics.reloaded("applied");
                self.metrics.files_in_force();
                self.in_force = Some(candidate.clone());
                self.views.follow(Declared::new(
                    &candidate,
                    &self.options.pass.manager,
                    self.options.pass.prune,
                ));
                self.dirty.clear();
                self.passed(result, started, None);
            }
        }
        Flow::Continue(())
    }

    /// A pass over the buckets that drifted (or were left behind by a failed pass).
    pub(super) async fn repair(
        &mut self,
        stop: &mut watch::Receiver<Option<&'static str>>,
    ) -> Flow {
        let Some(desired) = self.in_force.clone() else {
            self.dirty.clear();
            return Flow::Continue(());
        };
        let buckets = std::mem::take(&mut self.dirty);
        let started = Instant::now();
        let declarations = Declarations {
            desired: &desired,
            before: Some(&desired),
        };
        let work = pass(
            &self.connection,
            &declarations,
            Some(&buckets),
            &self.options.pass,
            &self.metrics,
            &mut self.memory,
        );
        let Some(result) = finish_unless_stopped(work, stop).await else {
            return Flow::Break(());
        };
        self.passed(result, started, Some(buckets));
        Flow::Continue(())
    }

    /// Records a pass: a failure NATS caused is retried later, with a growing delay.
    fn passed(
        &mut self,
        result: Result<PassSummary, PassError>,
        started: Instant,
        buckets: Option<BTreeSet<String>>,
    ) {
        self.metrics
            .reconciled(PASS_KIND, started.elapsed().as_secs_f64());
        match result {
            Ok(summary) => {
                self.failures = 0;
                if let Some(due) = summary.prune_due {
                    self.prune_due = Some(self.prune_due.map_or(due, |at| at.min(due)));
                }
                if summary.writes > 0 || summary.problems > 0 {
                    tracing::info!(
                        writes = summary.writes,
                        conflicts = summary.conflicts,
                        problems = summary.problems,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "pass done"
                    );
                }
            }
            Err(error) => {
                let reason = match &error {
                    PassError::Nats(nats) => nats.reason(),
                    _ => "InvalidInput",
                };
                self.metrics.failed(PASS_KIND, reason);
                self.failures = self.failures.saturating_add(1);
                let delay = retry_delay(self.failures);
                tracing::warn!(reason, "{error}; trying again in {} ms", delay.as_millis());
                self.retry_at = Some(Instant::now() + delay);
                match buckets {
                    Some(buckets) => self.dirty.extend(buckets),
                    None => self.all_dirty(),
                }
            }
        }
        self.set_ready();
    }

    /// The files on disk are not put in force: says why, line by line.
    fn refused(&mut self, problems: &[Problem]) {
        for problem in problems {
            tracing::error!("{problem}");
        }
        self.metrics.reloaded("invalid");
        self.metrics
            .files_pending("the files are not valid (the last valid ones stay in force)");
        match &self.in_force {
            Some(desired) => tracing::error!(
                problems = problems.len(),
                buckets = desired.buckets.len(),
                entries = desired.entries.len(),
                "the manifests are not valid: nothing was written; the last valid ones stay in force"
            ),
            None => tracing::error!(
                problems = problems.len(),
                "the manifests are not valid: nothing was written; waiting for valid ones"
            ),
        }
    }

    pub(super) fn all_dirty(&mut self) {
        if let Some(desired) = &self.in_force {
            self.dirty
                .extend(desired.buckets.iter().map(|bucket| bucket.name.clone()));
        }
    }

    /// Ready while connected with valid files in force.
    pub(super) fn set_ready(&self) {
        let ready = self.in_force.is_some() && self.connection.is_connected();
        self.health.ready.store(ready, Ordering::Release);
    }
}

/// Reads the files once they hold still: read, look again, and read again if anything
/// changed meanwhile (a write the notification of which had not come yet, a git
/// operation that started). Never goes with a read the files changed under.
async fn read_settled(
    files: &mut FileWatcher,
    inputs: &[manifest::Input],
    options: &LoadOptions,
) -> Result<Loaded, LoadErrors> {
    loop {
        let before = files.stamp();
        let loaded = manifest::load(inputs, options);
        let after = files.stamp();
        let moved = before != after;
        let notified = files.take_pending();
        if !moved && !notified && files.vcs_busy().is_none() {
            files.record_read(after);
            return loaded;
        }
        tracing::debug!(
            moved,
            notified,
            "the files changed while being read: reading them again once settled"
        );
        if moved && !notified {
            // No notification to wait for (it may still be on its way): give it time.
            tokio::time::sleep(files.debounce()).await;
        }
        files.settle().await;
    }
}

fn problems_of(error: &PassError) -> Vec<Problem> {
    match error {
        PassError::Invalid(errors) => errors.0.iter().map(Problem::from).collect(),
        other => vec![Problem::general(other.to_string())],
    }
}

fn retry_delay(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(8);
    (Duration::from_millis(500) * 2u32.pow(exponent)).min(MAX_RETRY_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(retry_delay(1), Duration::from_millis(500));
        assert_eq!(retry_delay(2), Duration::from_secs(1));
        assert_eq!(retry_delay(4), Duration::from_secs(4));
        assert_eq!(retry_delay(100), MAX_RETRY_DELAY);
    }
}
