//! Connections to one FastCGI responder (php-fpm), TCP or unix socket,
//! kept open with FCGI_KEEP_CONN and bounded.
//!
//! php-fpm ties a worker to each kept-alive connection until it closes, so
//! the bound counts idle connections too: at most `max_connections` are
//! open at once, a request that finds none free waits for one to come back
//! (or to close), and idle ones are closed after [`IDLE_TTL`].
//!
//! Owns: dialing, the idle list, the slot count. Receives: the address and
//! limits from [`FastCgiTarget`]. Hands on: [`Conn`]s to the exchange,
//! which returns them with [`Pool::put`] after a clean END_REQUEST.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::{FastCgiAddress, FastCgiTarget};

/// How long a connection may sit idle before it is closed (and its
/// php-fpm worker freed).
const IDLE_TTL: Duration = Duration::from_secs(15);

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("connecting timed out")]
    Timeout,
    #[error("{0}")]
    Connect(io::Error),
}

/// A TCP or unix-socket stream.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Whether the peer has closed this idle stream (or it has data it
    /// should not have): then it must not be reused.
    fn is_stale(&self) -> bool {
        let mut probe = [0u8; 1];
        let r = match self {
            Stream::Tcp(s) => s.try_read(&mut probe),
            Stream::Unix(s) => s.try_read(&mut probe),
        };
        !matches!(r, Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One of the pool's slots; freeing it wakes a waiting request.
pub(crate) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.permit.take();
        self.freed.notify_one();
    }
}

/// An open connection, holding its slot until dropped or put back.
pub(crate) struct Conn {
    pub(crate) io: Stream,
    /// Whether it served a request before (a stale reuse may be retried).
    pub(crate) reused: bool,
    /// Held while the connection is open (idle included).
    pub(crate) slot: Slot,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

struct Inner {
    address: FastCgiAddress,
    connect_timeout: Duration,
    max: usize,
    slots: Arc<Semaphore>,
    freed: Arc<Notify>,
    idle: parking_lot::Mutex<Vec<Idle>>,
}

/// The connections to one responder; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    pub fn new(t: &FastCgiTarget) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                address: t.address.clone(),
                connect_timeout: t.connect_timeout,
                max: t.max_connections,
                slots: Arc::new(Semaphore::new(t.max_connections)),
                freed: Arc::new(Notify::new()),
                idle: parking_lot::Mutex::new(Vec::new()),
            }),
        }
    }

    /// Whether this pool can serve `t` (same address and limits), so a
    /// reload keeps it.
    pub fn serves(&self, t: &FastCgiTarget) -> bool {
        self.inner.address == t.address
            && self.inner.connect_timeout == t.connect_timeout
            && self.inner.max == t.max_connections
    }

    /// An idle connection, or a new one when a slot is free; otherwise
    /// waits for one (the caller bounds the wait).
    pub(crate) async fn get(&self) -> Result<Conn, DialError> {
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(c) = self.take_idle() {
                return Ok(c);
            }
            if let Ok(permit) = self.inner.slots.clone().try_acquire_owned() {
                let slot = Slot {
                    permit: Some(permit),
                    freed: self.inner.freed.clone(),
                };
                let io = self.dial().await?;
                return Ok(Conn {
                    io,
                    reused: false,
                    slot,
                });
            }
            freed.await;
        }
    }

    /// A fresh connection, never an idle one (the retry after a stale
    /// reuse); waits for a slot like [`Self::get`].
    pub(crate) async fn get_fresh(&self) -> Result<Conn, DialError> {
        let mut c = self.get().await?;
        if c.reused {
            c.io = self.dial().await?;
            c.reused = false;
        }
        Ok(c)
    }

    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.inner.idle.lock();
        while let Some(i) = idle.pop() {
            if i.since.elapsed() < IDLE_TTL && !i.conn.io.is_stale() {
                return Some(i.conn);
            }
            // Dropped: its slot is freed.
        }
        None
    }

    /// Returns a connection that finished a request cleanly.
    pub(crate) fn put(&self, mut conn: Conn) {
        conn.reused = true;
        let now = Instant::now();
        {
            let mut idle = self.inner.idle.lock();
            idle.retain(|i| now.duration_since(i.since) < IDLE_TTL);
            idle.push(Idle { conn, since: now });
        }
        self.inner.freed.notify_one();
    }

    async fn dial(&self) -> Result<Stream, DialError> {
        let t = self.inner.connect_timeout;
        let r =
            match &self.inner.address {
                FastCgiAddress::Tcp(a) => tokio::time::timeout(t, TcpStream::connect(&**a))
                    .await
                    .map(|r| {
                        r.map(|s| {
                            let _ = s.set_nodelay(true);
                            Stream::Tcp(s)
                        })
                    }),
                FastCgiAddress::Unix(p) => tokio::time::timeout(t, UnixStream::connect(p))
                    .await
                    .map(|r| r.map(Stream::Unix)),
            };
        match r {
            Err(_) => Err(DialError::Timeout),
            Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => Err(DialError::Timeout),
            Ok(Err(e)) => Err(DialError::Connect(e)),
            Ok(Ok(s)) => Ok(s),
        }
    }
}
