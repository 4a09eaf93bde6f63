//! A spliced WebSocket tunnel between a client and an upstream after a 101.
//!
//! Bytes are copied as they come (no decoding), but each direction tracks
//! frame boundaries, so when portico drains (SIGTERM) or the tunnel's idle
//! timeout fires, both peers get a proper close frame (1001) at a frame
//! boundary instead of a torn TCP connection. Runs as a task tracked by
//! [`Shutdown`], so draining waits for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::frames::{FrameTracker, close_frame};
use crate::shutdown::Shutdown;

/// How long peers get to answer our close frame before the sockets drop.
const CLOSE_WAIT: Duration = Duration::from_secs(3);
const BUF: usize = 16 * 1024;

/// Which way bytes flow; decides masking of the injected close frame.
#[derive(Clone, Copy, Debug)]
enum Dir {
    /// Client → upstream: frames are masked.
    Up,
    /// Upstream → client: frames are not masked.
    Down,
}

/// Runs the tunnel to completion.
pub(super) async fn run(
    client: OnUpgrade,
    upstream: OnUpgrade,
    idle: Option<Duration>,
    shutdown: Shutdown,
    label: Arc<str>,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(upstream = %label, error = %e, "websocket upgrade did not complete");
            return;
        }
    };
    let (cr, cw) = tokio::io::split(TokioIo::new(client));
    let (ur, uw) = tokio::io::split(TokioIo::new(upstream));
    let stop = CancellationToken::new();
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));

    let watcher = {
        let stop = stop.clone();
        let last = last.clone();
        let shutdown = shutdown.clone();
        async move {
            loop {
                let deadline = match idle {
                    Some(d) => started + Duration::from_millis(last.load(Ordering::Relaxed)) + d,
                    None => Instant::now() + Duration::from_secs(86_400),
                };
                tokio::select! {
                    _ = shutdown.draining() => break,
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep_until(deadline) => {
                        let now_ms = started.elapsed().as_millis() as u64;
                        if let Some(d) = idle
                            && now_ms >= last.load(Ordering::Relaxed) + d.as_millis() as u64 {
                                break;
                            }
                    }
                }
            }
            stop.cancel();
        }
    };

    let up = pump(
        cr,
        uw,
        Dir::Up,
        stop.clone(),
        last.clone(),
        started,
        shutdown.clone(),
    );
    let down = pump(
        ur,
        cw,
        Dir::Down,
        stop.clone(),
        last.clone(),
        started,
        shutdown.clone(),
    );
    let both = async {
        tokio::join!(up, down);
        stop.cancel();
    };
    // The watcher only cancels `stop`; the pumps then finish their close
    // exchange. Abort (end of the grace period) cuts everything.
    tokio::select! {
        _ = async { tokio::join!(both, watcher) } => {}
        _ = shutdown.aborted() => {}
    }
    tracing::debug!(upstream = %label, "websocket tunnel closed");
}

async fn pump<R, W>(
    mut r: R,
    mut w: W,
    dir: Dir,
    stop: CancellationToken,
    last: Arc<AtomicU64>,
    started: Instant,
    shutdown: Shutdown,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    let mut tracker = FrameTracker::new();
    let mut stopping = false;
    loop {
        if stopping && tracker.at_boundary() {
            break;
        }
        let n = tokio::select! {
            biased;
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                continue;
            }
            n = r.read(&mut buf) => n,
        };
        let n = match n {
            Ok(0) | Err(_) => {
                let _ = w.shutdown().await;
                stop.cancel();
                return;
            }
            Ok(n) => n,
        };
        last.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let data = &buf[..n];
        let upto = if stopping {
            tracker.advance_to_boundary(data)
        } else {
            tracker.advance(data);
            n
        };
        if w.write_all(&data[..upto]).await.is_err() {
            stop.cancel();
            return;
        }
    }
    // At a frame boundary with stop requested: send our close, swallow the rest.
    let mask = match dir {
        Dir::Up => Some(rand::random::<[u8; 4]>()),
        Dir::Down => None,
    };
    let why = if shutdown.is_draining() {
        "server shutting down"
    } else {
        "idle timeout"
    };
    let _ = w.write_all(&close_frame(1001, why, mask)).await;
    let _ = w.flush().await;
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    let _ = w.shutdown().await;
}
