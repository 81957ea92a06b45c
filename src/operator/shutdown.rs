//! How the operator's run ends: on SIGTERM or SIGINT, with its background tasks.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

/// Resolves on SIGTERM or SIGINT. The listeners are registered by this call, not by the
/// first poll; clones share them.
pub(super) fn shutdown_signal() -> Shared<BoxFuture<'static, ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = received(signal(SignalKind::terminate()));
    let interrupt = received(signal(SignalKind::interrupt()));
    async move {
        tokio::select! {
            () = terminate => {},
            () = interrupt => {},
        }
        tracing::info!("shutting down: finishing running reconciles");
    }
    .boxed()
    .shared()
}

async fn received(signal: std::io::Result<tokio::signal::unix::Signal>) {
    match signal {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => futures::future::pending::<()>().await,
    }
}

/// Stops a background task when the operator's run ends.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
