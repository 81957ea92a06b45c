//! `kvop reconcile --watch`: keep NATS equal to the files, without Kubernetes. After the
//! first pass it reloads on every change to the files (and on SIGHUP), repairs drift the
//! live bucket views report, and re-observes everything when NATS comes back. Invalid
//! files write nothing and leave the last valid ones in force.

mod change;
mod files;
mod held;
mod log;
mod memory;
mod pass;
mod signals;
mod state;
mod vcs;
mod views;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

pub use crate::pass::PassError;
pub use files::{Settling, WatchFilesError};
pub use memory::PassSummary;
pub use pass::PassSettings;

use crate::manifest::Input;
use crate::metrics::Metrics;
use crate::nats::{Connection, ConnectionSettings, NatsError, connect, require_jetstream};
use crate::server::{self, Health};
use files::FileWatcher;
use held::HeldDeletions;
use memory::{Conflicts, Memory};
use signals::Signal;
use state::Watch;
use views::Views;

/// Everything `kvop reconcile --watch` was asked to do.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub inputs: Vec<Input>,
    pub connection: ConnectionSettings,
    pub pass: PassSettings,
    /// When changed files are read: the quiet time, the periodic look.
    pub settling: Settling,
    /// How long the files must stay without a key before `--prune` deletes it.
    pub prune_settle: Duration,
    /// How long a change to the files may wait to be put in force before `/readyz`
    /// fails.
    pub stale_after: Duration,
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
    let metrics = Arc::new(Metrics::for_watch(options.stale_after));
    let mut files = FileWatcher::new(&options.inputs, options.settling, metrics.clone())?;
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
        memory: Memory {
            conflicts: Conflicts::new(),
            held: HeldDeletions::new(options.prune_settle),
        },
        failures: 0,
        retry_at: None,
        prune_due: None,
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
        let prune_due = watch.prune_due;
        tokio::select! {
            () = files.changed() => reload = true,
            signal = signals.next() => match signal {
                Signal::Reload => {
                    tracing::info!("SIGHUP: reloading the manifests");
                    // A file someone keeps open is read as it is: the user asked.
                    files.forget_writers();
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
            () = sleep_until(prune_due.map(Into::into)), if prune_due.is_some() => {
                // Read the files again: a key is deleted only if they still lack it.
                watch.prune_due = None;
                reload = true;
            }
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
