//! `kvop reconcile --watch`: keep NATS equal to the files, without Kubernetes. After the
//! first pass it reloads on every change to the files (and on SIGHUP), repairs drift the
//! live bucket views report, and re-observes everything when NATS comes back. Invalid
//! files write nothing and leave the last valid ones in force.

mod files;
mod pass;
mod signals;
mod views;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

pub use files::WatchFilesError;
pub use pass::{PassError, PassSettings, PassSummary};

use crate::desired::Desired;
use crate::manifest::{self, Input, LoadOptions};
use crate::metrics::Metrics;
use crate::nats::{Connection, ConnectionSettings, NatsError, connect, require_jetstream};
use crate::problem::Problem;
use crate::server::{self, Health};
use files::FileWatcher;
use pass::{Conflicts, PASS_KIND, pass};
use signals::Signal;
use views::{Declared, Views};

/// How long a stop waits for the pass in flight (its writes) to finish.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Reads of the files while they keep changing before going with what was read.
const MAX_UNSTABLE_READS: usize = 5;
/// Longest wait before retrying a pass that NATS failed.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Everything `kvop reconcile --watch` was asked to do.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub inputs: Vec<Input>,
    pub connection: ConnectionSettings,
    pub pass: PassSettings,
    /// Quiet time after a change to the files before reloading them.
    pub debounce: Duration,
    /// Every bucket is re-observed at least this often, behind the live views.
    pub resync_interval: Duration,
    pub metrics_address: Option<SocketAddr>,
}

/// Why the watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Files(#[from] WatchFilesError),
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error("cannot serve metrics on {address}: {source}")]
    Metrics {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for signals: {0}")]
    Signals(#[source] std::io::Error),
}

/// Runs until SIGTERM or SIGINT, then returns once the pass in flight is done.
pub async fn run(options: &WatchOptions) -> Result<(), WatchError> {
    let mut signals = signals::listen().map_err(WatchError::Signals)?;
    let mut files = FileWatcher::new(&options.inputs, options.debounce)?;
    let metrics = Arc::new(Metrics::for_watch());
    let health = Arc::new(Health {
        ready: false.into(),
        metrics: metrics.clone(),
    });
    if let Some(address) = options.metrics_address {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| WatchError::Metrics { address, source })?;
        tokio::spawn(server::serve_on(listener, health.clone()));
    }
    let Some(connection) = connect_patiently(&options.connection, &mut signals.stop).await? else {
        return Ok(());
    };
    require_jetstream(&connection, &options.connection).await?;
    let (drift_sender, mut drift) = mpsc::unbounded_channel();
    let mut watch = Watch {
        options,
        views: Views::new(connection.clone(), drift_sender),
        connection,
        metrics,
        health,
        in_force: None,
        dirty: BTreeSet::new(),
        conflicts: Conflicts::new(),
        failures: 0,
        retry_at: None,
    };
    tracing::info!(
        inputs = options.inputs.len(),
        "watching the manifests and their buckets (SIGHUP reloads, SIGTERM stops)"
    );
    let mut connectivity = watch.connection.connectivity();
    let mut resync = tokio::time::interval(options.resync_interval);
    resync.reset();
    let mut reload = true;
    loop {
        if reload {
            reload = false;
            if watch.reload(&mut files, &mut signals.stop).await.is_break() {
                return Ok(());
            }
        } else if !watch.dirty.is_empty()
            && watch.retry_at.is_none()
            && watch.repair(&mut signals.stop).await.is_break()
        {
            return Ok(());
        }
        let retry_at = watch.retry_at;
        tokio::select! {
            () = files.changed() => reload = true,
            signal = signals.next() => match signal {
                Signal::Reload => {
                    tracing::info!("SIGHUP: reloading the manifests");
                    reload = true;
                }
                Signal::Stop(name) => {
                    tracing::info!("{name}: stopping");
                    return Ok(());
                }
            },
            Some(bucket) = drift.recv() => {
                watch.dirty.insert(bucket);
                // A burst of changes is one pass.
                while let Ok(bucket) = drift.try_recv() {
                    watch.dirty.insert(bucket);
                }
            }
            Ok(()) = connectivity.changed() => {
                let up = *connectivity.borrow_and_update();
                watch.set_ready();
                if up {
                    // Whatever happened while it was down was not seen.
                    watch.all_dirty();
                    watch.retry_at = None;
                }
            }
            _ = resync.tick() => watch.all_dirty(),
            () = sleep_until(retry_at), if retry_at.is_some() => watch.retry_at = None,
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Connects, waiting for a server that is not up yet (a host's services start in any
/// order) but failing at once on what waiting cannot fix (credentials, settings).
/// `None` when asked to stop meanwhile.
async fn connect_patiently(
    settings: &ConnectionSettings,
    stop: &mut watch::Receiver<Option<&'static str>>,
) -> Result<Option<Connection>, NatsError> {
    let mut said = false;
    loop {
        match connect(settings).await {
            Ok(connection) => return Ok(Some(connection)),
            Err(error @ (NatsError::Unavailable { .. } | NatsError::Timeout { .. })) => {
                if !said {
                    tracing::warn!("{error}; retrying every 2 s");
                    said = true;
                }
            }
            Err(error) => return Err(error),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.wait_for(Option::is_some) => return Ok(None),
        }
    }
}

/// The watch's state between passes.
struct Watch<'a> {
    options: &'a WatchOptions,
    connection: Connection,
    views: Views,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// The last valid files: what NATS is kept equal to.
    in_force: Option<Arc<Desired>>,
    /// Buckets that need a pass.
    dirty: BTreeSet<String>,
    conflicts: Conflicts,
    /// Passes in a row that NATS failed, for the retry delay.
    failures: u32,
    retry_at: Option<Instant>,
}

/// Whether the watch goes on.
type Flow = std::ops::ControlFlow<()>;

impl Watch<'_> {
    /// Reads the files again; if they are valid and the server can hold them, brings
    /// every bucket in line and puts them in force. Otherwise writes nothing and keeps
    /// the last valid files in force.
    async fn reload(
        &mut self,
        files: &mut FileWatcher,
        stop: &mut watch::Receiver<Option<&'static str>>,
    ) -> Flow {
        let load_options = LoadOptions {
            manager: self.options.pass.manager.clone(),
        };
        // Files still being written read as garbage or, worse, as valid but short: read
        // again until nothing changed while reading.
        let mut loaded = manifest::load(&self.options.inputs, &load_options);
        for _ in 1..MAX_UNSTABLE_READS {
            if !files.take_pending() {
                break;
            }
            files.settle().await;
            loaded = manifest::load(&self.options.inputs, &load_options);
        }
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
        let work = pass(
            &self.connection,
            &candidate,
            None,
            &self.options.pass,
            &self.metrics,
            &mut self.conflicts,
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
    async fn repair(&mut self, stop: &mut watch::Receiver<Option<&'static str>>) -> Flow {
        let Some(desired) = self.in_force.clone() else {
            self.dirty.clear();
            return Flow::Continue(());
        };
        let buckets = std::mem::take(&mut self.dirty);
        let started = Instant::now();
        let work = pass(
            &self.connection,
            &desired,
            Some(&buckets),
            &self.options.pass,
            &self.metrics,
            &mut self.conflicts,
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

    fn all_dirty(&mut self) {
        if let Some(desired) = &self.in_force {
            self.dirty
                .extend(desired.buckets.iter().map(|bucket| bucket.name.clone()));
        }
    }

    /// Ready while connected with valid files in force.
    fn set_ready(&self) {
        let ready = self.in_force.is_some() && self.connection.is_connected();
        self.health.ready.store(ready, Ordering::Release);
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

/// Runs `work` to its end, unless a stop comes first: then gives it `STOP_GRACE` to
/// finish its writes and returns `None`.
async fn finish_unless_stopped<T>(
    work: impl Future<Output = T>,
    stop: &mut watch::Receiver<Option<&'static str>>,
) -> Option<T> {
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => Some(done),
        _ = stop.wait_for(Option::is_some) => {
            tracing::info!("stopping once the writes in flight are done");
            if tokio::time::timeout(STOP_GRACE, work).await.is_err() {
                tracing::warn!("stopping with writes still in flight after {} s", STOP_GRACE.as_secs());
            }
            None
        }
    }
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
