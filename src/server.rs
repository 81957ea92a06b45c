//! A minimal HTTP endpoint for `/metrics`, `/healthz` and `/readyz`: probes and scrapes
//! need nothing more, so no web framework is pulled in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// What the endpoints report.
pub struct Health {
    /// Set once the process is connected and running (leading or standing by: a standby
    /// replica is healthy, so rollouts of two replicas complete).
    pub ready: AtomicBool,
    pub metrics: Arc<Metrics>,
}

/// Serves until the task is dropped.
pub async fn serve(address: SocketAddr, health: Arc<Health>) -> std::io::Result<()> {
    serve_on(TcpListener::bind(address).await?, health).await
}

/// Serves on a bound listener until the task is dropped: binding first lets a caller
/// refuse to start when the address is taken.
pub async fn serve_on(listener: TcpListener, health: Arc<Health>) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    }
    loop {
        let (mut socket, _) = listener.accept().await?;
        let health = health.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 2048];
            let Ok(read) = socket.read(&mut request).await else {
                return;
            };
            let line = String::from_utf8_lossy(&request[..read]);
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let (status, content_type, body) = match path {
                "/metrics" => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    health.metrics.encode(),
                ),
                "/healthz" | "/livez" => ("200 OK", "text/plain", "ok\n".to_string()),
                "/readyz" => match (health.ready.load(Ordering::Acquire), health.metrics.stale()) {
                    (true, None) => ("200 OK", "text/plain", "ok\n".to_string()),
                    (true, Some(stale)) => ("503 Service Unavailable", "text/plain", stale + "\n"),
                    (false, _) => (
                        "503 Service Unavailable",
                        "text/plain",
                        "starting\n".to_string(),
                    ),
                },
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}
