//! The signals a watch answers: SIGHUP reloads the files; SIGTERM and SIGINT stop it
//! once the writes in flight are done.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

/// How long a stop waits for the pass in flight (its writes) to finish.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A signal, as the watch loop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Reload,
    /// Named for the log (`SIGTERM`, `SIGINT`).
    Stop(&'static str),
}

/// The signals received, in order, and whether a stop was asked for (which work in
/// flight watches, to finish early).
pub struct Signals {
    received: mpsc::UnboundedReceiver<Signal>,
    pub stop: watch::Receiver<Option<&'static str>>,
}

impl Signals {
    pub async fn next(&mut self) -> Signal {
        match self.received.recv().await {
            Some(signal) => signal,
            None => std::future::pending().await,
        }
    }
}

/// Starts listening; fails only if the process cannot install the handlers.
pub fn listen() -> std::io::Result<Signals> {
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let (sender, received) = mpsc::unbounded_channel();
    let (stopping, stop) = watch::channel(None);
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = hangup.recv() => Signal::Reload,
                _ = terminate.recv() => Signal::Stop("SIGTERM"),
                _ = interrupt.recv() => Signal::Stop("SIGINT"),
            };
            if let Signal::Stop(name) = signal {
                stopping.send_replace(Some(name));
            }
            if sender.send(signal).is_err() {
                return;
            }
        }
    });
    Ok(Signals { received, stop })
}

/// Runs `work` to its end, unless a stop comes first: then gives it `STOP_GRACE` to
/// finish its writes and returns `None`.
pub async fn finish_unless_stopped<T>(
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
