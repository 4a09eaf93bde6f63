//! Serves a connection with hyper (after the hand-written HTTP/1.1 path,
//! [`super::h1`], hands it over): HTTP/1.1 (with upgrades) and
//! HTTP/2, a header-read deadline, and a graceful stop when draining starts.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use http::Request;
use hyper::body::Incoming;

use super::router::Decision;
use super::service::handle;
use super::sniff::{Sniff, Sniffed};
use super::{ConnInfo, ConnSettings};
use crate::server::Stack;

/// Runs the connection on hyper: HTTP/1.1 with upgrades, and HTTP/2.
/// `first` is the routing decision the hand-written path already made for
/// the request it hands over; hyper's first request uses it instead of
/// routing again.
pub async fn serve_hyper<I>(
    io: I,
    conn: ConnInfo,
    settings: ConnSettings,
    edge: Arc<Stack>,
    first: Option<Decision>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = edge.shutdown().clone();
    let conn = Arc::new(conn);
    let peer = conn.peer;
    let first = HandedOver::new(first);
    let handed = first.clone();
    // Every HTTP/1.1 head hyper reads is also seen raw, for the rules
    // hyper's parsed request hides.
    let sniffed = Sniffed::new();
    let io = Sniff::new(io, sniffed.clone());
    let svc = service_fn(move |req: Request<Incoming>| {
        let decided = first.take(&req);
        let both_framings = req.version() < http::Version::HTTP_2 && sniffed.next_request();
        handle(edge.clone(), conn.clone(), req, decided, both_framings)
    });
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
    // hyper's header-read timeout only starts once the protocol is known,
    // which takes the first bytes: a client that sends nothing at all would
    // hold its connection (and its cap slots) forever. Cut it at the same
    // deadline.
    let (io, heard) = FirstByte::new(io);
    let silent = async {
        tokio::time::sleep(settings.header_timeout).await;
        if heard.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    };
    let conn_fut = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn_fut);
    let result = tokio::select! {
        r = conn_fut.as_mut() => r,
        _ = silent => {
            tracing::debug!(peer = %peer, failure = "timeout", "no request within the header timeout");
            Ok(())
        }
        _ = shutdown.draining() => 'drain: {
            // In a hand-over (binary upgrade) the request the hand-written
            // path read for hyper is served before the graceful stop, which
            // would otherwise drop a request hyper has not parsed yet.
            if shutdown.is_handover() {
                let parsed = async {
                    while !handed.is_taken() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                tokio::select! {
                    r = conn_fut.as_mut() => break 'drain r,
                    _ = parsed => {}
                    _ = shutdown.aborted() => break 'drain Ok(()),
                }
            }
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

/// The hand-written path's decision for the one request it handed over:
/// hyper's first HTTP/1.1 request on the connection is that request (it is
/// parsed from the same bytes), so it gets the decision, once.
struct HandedOver {
    decision: Option<Decision>,
    taken: AtomicBool,
}

impl HandedOver {
    fn new(decision: Option<Decision>) -> Arc<HandedOver> {
        Arc::new(HandedOver {
            taken: AtomicBool::new(decision.is_none()),
            decision,
        })
    }

    /// Whether hyper has parsed the handed-over request (or there was none).
    fn is_taken(&self) -> bool {
        self.taken.load(Ordering::Acquire)
    }

    fn take(&self, req: &Request<Incoming>) -> Option<Decision> {
        // h2c prior knowledge never went through the hand-written parser.
        if req.version() >= http::Version::HTTP_2 || self.taken.load(Ordering::Relaxed) {
            return None;
        }
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.decision.clone()
    }
}

/// Passes I/O through and records whether the client sent any byte yet.
struct FirstByte<I> {
    io: I,
    heard: Arc<AtomicBool>,
}

impl<I> FirstByte<I> {
    fn new(io: I) -> (Self, Arc<AtomicBool>) {
        let heard = Arc::new(AtomicBool::new(false));
        (
            FirstByte {
                io,
                heard: heard.clone(),
            },
            heard,
        )
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstByte<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.heard.store(true, Ordering::Relaxed);
        }
        r
    }
}

crate::io::write_through::write_through!(FirstByte);
