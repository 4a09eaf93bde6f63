//! Keep-alive connections to one upstream, driven by the request using them.
//!
//! A pooled connection is a hyper HTTP/1.1 `SendRequest` plus its
//! `Connection` future. Nothing is spawned per connection or per request:
//! the request's own task polls the connection while it waits for the
//! response head, and the response body ([`PooledBody`]) keeps polling it
//! while the body streams. When the body has ended, the connection goes
//! back to the idle list; when it is dropped early, the connection closes.
//! An idle connection the upstream closed is noticed at checkout and
//! dropped; a request that found its reused connection closed before any
//! byte was written is retried on the next one.
//!
//! On per-core workers ([`crate::workers`]) a connection is only reused by
//! the worker that opened it, so its socket stays on that worker's reactor.
//!
//! WebSocket upgrades take a fresh connection whose driver is spawned on the
//! shutdown tracker, since the upgraded socket outlives the request.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::poll_fn;
use http::uri::{Authority, Scheme};
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;

pub(crate) use super::dial::UpstreamIo;
use super::dial::{DialError, dial};
use crate::http::body::{Body, BoxError};
use crate::shutdown::Shutdown;
use crate::workers;

type Driver = http1::Connection<TokioIo<UpstreamIo>, Body>;

/// Idle time after which a reused connection may have been closed by the
/// upstream's keep-alive timeout (the shortest common one is PHP's and
/// Apache's 5 s), so a retry copy of the request is kept.
const RETRY_COPY_AFTER: Duration = Duration::from_millis(500);

/// Why a request could not be exchanged with the upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(transparent)]
    Dial(#[from] DialError),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

/// Idle keep-alive connections to one upstream (scheme + authority).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    scheme: Scheme,
    authority: Authority,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
    /// hyper connections, for requests served by hyper.
    idle: IdleList<Box<Conn>>,
    /// Bare connections, for the hand-written HTTP/1.1 path.
    idle_raw: IdleList<UpstreamIo>,
}

/// Idle connections, most recently used last: checkout takes the warmest.
struct IdleList<C> {
    list: Mutex<Vec<Idle<C>>>,
}

struct Idle<C> {
    conn: C,
    since: Instant,
    /// The connection worker whose reactor the socket is registered with
    /// (`None` on a shared runtime); checkout only hands it to that worker.
    home: Option<usize>,
}

impl<C> IdleList<C> {
    fn new() -> Self {
        IdleList {
            list: Mutex::new(Vec::new()),
        }
    }

    /// The warmest connection idle for less than `max_idle_for` that
    /// `usable` accepts, and how long it was idle; others met on the way
    /// are dropped (outside the lock).
    fn take(
        &self,
        max_idle_for: Duration,
        mut usable: impl FnMut(&mut C) -> bool,
    ) -> Option<(C, Duration)> {
        let home = workers::current();
        loop {
            let Idle {
                mut conn, since, ..
            } = {
                let mut list = self.list.lock();
                let i = list.iter().rposition(|i| i.home == home)?;
                list.remove(i)
            };
            let idle_for = since.elapsed();
            if idle_for < max_idle_for && usable(&mut conn) {
                return Some((conn, idle_for));
            }
        }
    }

    /// Parks `conn`, retiring the oldest one once it is stale and refusing
    /// (dropping) `conn` when the list is full.
    fn put(&self, conn: C, max_idle_for: Duration, max_len: usize) {
        let mut list = self.list.lock();
        // The oldest connection is at the front; retire it once stale so a
        // burst's connections do not linger at the upstream.
        let stale = list
            .first()
            .is_some_and(|i| i.since.elapsed() >= max_idle_for);
        let retired = if stale { Some(list.remove(0)) } else { None };
        let refused = if list.len() < max_len {
            list.push(Idle {
                conn,
                since: Instant::now(),
                home: workers::current(),
            });
            None
        } else {
            Some(conn)
        };
        drop(list);
        drop((retired, refused));
    }
}

/// One upstream connection: the request half and the connection driver.
/// `driver` is `None` once the connection has finished.
struct Conn {
    sender: http1::SendRequest<Body>,
    driver: Option<Driver>,
}

impl Conn {
    /// Lets the connection make progress (read, write, notice a close).
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(d) = &mut self.driver
            && let Poll::Ready(r) = Pin::new(d).poll(cx)
        {
            if let Err(e) = r {
                tracing::debug!(error = %e, "upstream connection ended");
            }
            self.driver = None;
        }
    }

    /// Whether an idle connection can take another request.
    fn reusable(&mut self) -> bool {
        self.drive(&mut Context::from_waker(Waker::noop()));
        self.driver.is_some() && !self.sender.is_closed()
    }
}

impl Pool {
    pub fn new(scheme: Scheme, authority: Authority, connect_timeout: Duration) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                scheme,
                authority,
                connect_timeout,
                idle_timeout: Duration::from_secs(90),
                max_idle: 256,
                idle: IdleList::new(),
                idle_raw: IdleList::new(),
            }),
        }
    }

    /// Whether this pool reaches the same upstream the same way.
    pub fn serves(
        &self,
        scheme: &Scheme,
        authority: &Authority,
        connect_timeout: Duration,
    ) -> bool {
        self.inner.scheme == *scheme
            && self.inner.authority == *authority
            && self.inner.connect_timeout == connect_timeout
    }

    /// Sends `req` (origin-form URI) and returns the response; its body
    /// returns the connection to the pool when it ends.
    pub async fn send(&self, mut req: Request<Body>) -> Result<Response<Body>, UpstreamError> {
        // Bounded: each pass either consumes an idle connection or opens a
        // new one, and a new one is never retried.
        loop {
            let (mut conn, idle_for) = match self.checkout() {
                Some((c, idle_for)) => (c, Some(idle_for)),
                None => (self.connect().await?, None),
            };
            let reused = idle_for.is_some();
            // A connection that sat idle can be closed by the upstream just
            // as the request goes out (its keep-alive timeout): the request
            // is then lost in flight. Bodiless idempotent requests keep a
            // copy so they can be repeated on another connection, as nginx
            // does. A connection in steady use skips the copy.
            let spare = (idle_for.is_some_and(|d| d >= RETRY_COPY_AFTER)
                && req.method().is_idempotent()
                && HttpBody::is_end_stream(req.body()))
            .then(|| copy_head(&req));
            match exchange(&mut conn, req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = PooledBody {
                        body,
                        conn: Some(conn),
                        pool: self.inner.clone(),
                    };
                    return Ok(Response::from_parts(parts, Body::new(body)));
                }
                Err(mut e) => match (e.take_message(), spare) {
                    (Some(back), _) if reused => {
                        tracing::debug!(error = %e.error(), "pooled upstream connection was closed; retrying");
                        req = back;
                    }
                    (_, Some(copy)) if e.error().is_incomplete_message() => {
                        tracing::debug!(error = %e.error(), "pooled upstream connection closed mid-request; repeating it");
                        req = copy;
                    }
                    _ => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
    }

    /// Sends a WebSocket upgrade request on a fresh connection whose driver
    /// runs on the shutdown tracker, so `hyper::upgrade::on` works on the
    /// response.
    pub async fn send_upgrade(
        &self,
        req: Request<Body>,
        shutdown: &Shutdown,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let io = dial(
            &self.inner.scheme,
            &self.inner.authority,
            self.inner.connect_timeout,
        )
        .await?;
        let (mut sender, driver) = http1::Builder::new()
            .handshake::<_, Body>(TokioIo::new(io))
            .await?;
        shutdown.spawn(async move {
            if let Err(e) = driver.with_upgrades().await {
                tracing::debug!(error = %e, "upstream upgrade connection ended");
            }
        });
        Ok(sender.send_request(req).await?)
    }

    async fn connect(&self) -> Result<Box<Conn>, UpstreamError> {
        let io = dial(
            &self.inner.scheme,
            &self.inner.authority,
            self.inner.connect_timeout,
        )
        .await?;
        let (sender, driver) = http1::Builder::new()
            .max_buf_size(64 * 1024)
            .handshake(TokioIo::new(io))
            .await?;
        Ok(Box::new(Conn {
            sender,
            driver: Some(driver),
        }))
    }

    /// The warmest idle connection that is still open, and how long it
    /// was idle.
    fn checkout(&self) -> Option<(Box<Conn>, Duration)> {
        self.inner
            .idle
            .take(self.inner.idle_timeout, |c| c.reusable())
    }

    /// A bare connection for the hand-written HTTP/1.1 path: the warmest
    /// idle one still open (and whether it was reused), or a new one.
    pub(crate) async fn checkout_raw(&self) -> Result<(UpstreamIo, bool), DialError> {
        if let Some((io, _)) = self
            .inner
            .idle_raw
            .take(self.inner.idle_timeout, UpstreamIo::is_quiet)
        {
            return Ok((io, true));
        }
        let io = dial(
            &self.inner.scheme,
            &self.inner.authority,
            self.inner.connect_timeout,
        )
        .await?;
        Ok((io, false))
    }

    /// Returns a bare connection whose last exchange ended cleanly.
    pub(crate) fn checkin_raw(&self, io: UpstreamIo) {
        self.inner
            .idle_raw
            .put(io, self.inner.idle_timeout, self.inner.max_idle);
    }
}

impl Inner {
    fn put_back(&self, conn: Box<Conn>) {
        // Checkout polls the connection before use; here only what is
        // already known is checked.
        if conn.driver.is_none() || conn.sender.is_closed() {
            return;
        }
        self.idle.put(conn, self.idle_timeout, self.max_idle);
    }
}

/// A bodiless copy of `req`'s head.
fn copy_head(req: &Request<Body>) -> Request<Body> {
    let mut copy = Request::new(crate::http::body::empty());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// Waits for the connection to take a request, sends it, and waits for the
/// response head, driving the connection all along from this task.
async fn exchange(
    conn: &mut Conn,
    req: Request<Body>,
) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<Body>>> {
    let ready = poll_fn(|cx| {
        conn.drive(cx);
        conn.sender.poll_ready(cx)
    })
    .await;
    if ready.is_err() {
        // Closed before anything was sent: hand the request back.
        let mut fut = std::pin::pin!(conn.sender.try_send_request(req));
        return poll_fn(|cx| fut.as_mut().poll(cx)).await;
    }
    let mut fut = std::pin::pin!(conn.sender.try_send_request(req));
    poll_fn(|cx| {
        conn.drive(cx);
        fut.as_mut().poll(cx)
    })
    .await
}

/// An upstream response body that drives its connection while it streams
/// and returns it to the pool once it has ended.
struct PooledBody {
    body: Incoming,
    conn: Option<Box<Conn>>,
    pool: Arc<Inner>,
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(conn) = &mut this.conn {
            conn.drive(cx);
        }
        let r = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = r
            && let Some(conn) = this.conn.take()
        {
            this.pool.put_back(conn);
        }
        r.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // hyper may drop a body without polling it to the end when it knows
        // the end (Content-Length reached, empty body): that still counts.
        if let Some(conn) = self.conn.take()
            && self.body.is_end_stream()
        {
            self.pool.put_back(conn);
        }
    }
}
