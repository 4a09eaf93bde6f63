//! Serves one accepted connection with hyper: HTTP/1.1 (with upgrades) and
//! HTTP/2, a header-read deadline, and a graceful stop when draining starts.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};

use super::service::{ConnInfo, handle};
use crate::edge::EdgeInner;

/// Per-connection protocol settings, taken from the config at accept time.
#[derive(Debug, Clone, Copy)]
pub struct ConnSettings {
    pub header_timeout: Duration,
    /// Allow HTTP/2 (only offered over TLS via ALPN; h2c prior knowledge too).
    pub http2: bool,
}

/// Runs the connection until the client leaves, it upgrades, or shutdown
/// cuts it.
pub async fn serve<I>(io: I, conn: ConnInfo, settings: ConnSettings, edge: Arc<EdgeInner>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = edge.shutdown().clone();
    let conn = Arc::new(conn);
    let peer = conn.peer;
    let svc = service_fn(move |req| handle(edge.clone(), conn.clone(), req));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_pending_accept_reset_streams(64)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = if settings.http2 {
        builder
    } else {
        builder.http1_only()
    };
    let conn_fut = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn_fut);
    let result = tokio::select! {
        r = conn_fut.as_mut() => r,
        _ = shutdown.draining() => {
            conn_fut.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn_fut.as_mut() => r,
                _ = shutdown.aborted() => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        // Client resets and timeouts are routine: debug, not warn.
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}
