//! A real upstream for the proxy tests: a hyper HTTP/1.1 server on
//! `127.0.0.1:0`. What it does depends on the last path segment, so it
//! still works after a route rewrote the prefix:
//!
//! - `.../sse`: a Server-Sent-Events stream; sends `data: first`, then waits
//!   for [`State::sse_release`] (at most 5 s) before `data: last` and the end.
//! - `.../slow?ms=N`: answers 200 `slow done` after N ms; notifies
//!   [`State::slow_started`] on arrival.
//! - `.../count`: streams the request body in, notifies
//!   [`State::body_started`] at the first chunk, answers the byte count.
//! - `.../big?bytes=N`: a body of N bytes of `z`, streamed in 64 KiB chunks.
//! - `.../ws` or `.../websocket`: a WebSocket echo server (text and binary,
//!   echoed whole), answering `Sec-WebSocket-Protocol` with the first offered.
//! - `.../refuse-upgrade`: answers 400 `no upgrade here` even to upgrades.
//! - `.../wrong-101`: answers 101 with `Upgrade: h2c` to anything.
//! - anything else: 200 with a JSON echo of the request (method, URI,
//!   headers, body), plus hop-by-hop response headers that must not reach
//!   the client (`Connection: x-up-hop`, `X-Up-Hop`, `Keep-Alive`,
//!   `Proxy-Authenticate`) and one that must (`X-Up-Kept`).
//!
//! Every request is also recorded in [`State::seen`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use portico::http::body::{Body, full};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::client::ws_config;

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    /// Path and query.
    pub(crate) uri: String,
    pub(crate) headers: HeaderMap,
}

/// What the upstream shares with the test.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) sse_release: Notify,
    pub(crate) slow_started: Notify,
    pub(crate) body_started: Notify,
    pub(crate) seen: parking_lot::Mutex<Vec<Seen>>,
}

impl State {
    /// The last request whose URI contains `needle`.
    pub(crate) fn last_seen(&self, needle: &str) -> Option<Seen> {
        self.seen
            .lock()
            .iter()
            .rev()
            .find(|s| s.uri.contains(needle))
            .cloned()
    }
}

/// A running upstream; stops accepting on drop.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    pub(crate) state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Connections one upstream accepts before it stops (a bound, not a limit
/// any test reaches).
const MAX_CONNS: usize = 500;

pub(crate) async fn start() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    let state = Arc::new(State::default());
    let st = state.clone();
    let task = tokio::spawn(async move {
        for _ in 0..MAX_CONNS {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let st = st.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(st.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Upstream { addr, state, task }
}

/// An upstream that accepts connections and closes them at once, without
/// a response (a crashed or resetting app server).
pub(crate) async fn start_hangup() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        for _ in 0..MAX_CONNS {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            // Read the request head so the close is not a reset-on-unread-data.
            let mut buf = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
            drop(tcp);
        }
    });
    (addr, task)
}

/// An address where nothing listens (bound, then released).
pub(crate) async fn refusing_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body.into()));
    *r.status_mut() = status;
    r
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let uri = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.to_string());
    st.seen.lock().push(Seen {
        method: req.method().to_string(),
        uri: uri.clone(),
        headers: req.headers().clone(),
    });
    let last = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    Ok(match last.as_str() {
        "sse" => sse(st),
        "slow" => {
            st.slow_started.notify_one();
            let ms = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::OK, "slow done")
        }
        "count" => count(st, req.into_body()).await,
        "big" => {
            let n: usize = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("bytes="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            big(n)
        }
        "ws" | "websocket" => websocket(req),
        "refuse-upgrade" => text(StatusCode::BAD_REQUEST, "no upgrade here"),
        "wrong-101" => {
            let mut r = text(StatusCode::SWITCHING_PROTOCOLS, "");
            r.headers_mut().insert("upgrade", "h2c".parse().expect("v"));
            r.headers_mut()
                .insert("connection", "upgrade".parse().expect("v"));
            r
        }
        _ => echo(req).await,
    })
}

fn sse(st: Arc<State>) -> Response<Body> {
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<Frame<Bytes>, portico::http::body::BoxError>>(4);
    tokio::spawn(async move {
        let _ = tx
            .send(Ok(Frame::data(Bytes::from("data: first\n\n"))))
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(5), st.sse_release.notified()).await;
        let _ = tx
            .send(Ok(Frame::data(Bytes::from("data: last\n\n"))))
            .await;
    });
    let stream = tokio_stream_from(rx);
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut()
        .insert("content-type", "text/event-stream".parse().expect("value"));
    r.headers_mut()
        .insert("cache-control", "no-cache".parse().expect("value"));
    r
}

/// An mpsc receiver as a `Stream`.
pub(crate) fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + Sync + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn big(n: usize) -> Response<Body> {
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<Frame<Bytes>, portico::http::body::BoxError>>(4);
    tokio::spawn(async move {
        let chunk = Bytes::from(vec![b'z'; 64 << 10]);
        let mut left = n;
        while left > 0 {
            let take = left.min(chunk.len());
            if tx.send(Ok(Frame::data(chunk.slice(..take)))).await.is_err() {
                return;
            }
            left -= take;
        }
    });
    Response::new(BodyExt::boxed(StreamBody::new(tokio_stream_from(rx))))
}

async fn count(st: Arc<State>, mut body: Incoming) -> Response<Body> {
    let mut n: u64 = 0;
    let mut first = true;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    n += d.len() as u64;
                    if first && !d.is_empty() {
                        first = false;
                        st.body_started.notify_one();
                    }
                }
            }
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("body error: {e}")),
        }
    }
    text(StatusCode::OK, n.to_string())
}

async fn echo(req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &parts.headers {
        headers
            .entry(k.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let json = serde_json::json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut r = Response::new(full(json.to_string()));
    let h = r.headers_mut();
    h.insert("content-type", "application/json".parse().expect("v"));
    h.insert("connection", "x-up-hop".parse().expect("v"));
    h.insert("x-up-hop", "1".parse().expect("v"));
    h.insert("keep-alive", "timeout=9".parse().expect("v"));
    h.insert(
        "proxy-authenticate",
        "Basic realm=\"x\"".parse().expect("v"),
    );
    h.insert("x-up-kept", "yes".parse().expect("v"));
    r
}

fn websocket(mut req: Request<Incoming>) -> Response<Body> {
    let upgrade = req
        .headers()
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return text(StatusCode::UPGRADE_REQUIRED, "websocket only");
    };
    if !upgrade {
        return text(StatusCode::UPGRADE_REQUIRED, "websocket only");
    }
    let protocol = req
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|p| p.trim().to_string());
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(up) = on.await else { return };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, Some(ws_config()))
                .await;
        while let Some(Ok(msg)) = ws.next().await {
            let echo = matches!(msg, Message::Text(_) | Message::Binary(_));
            let sent = if echo {
                ws.send(msg).await
            } else {
                // Pings are answered and a close is replied to by
                // tungstenite itself; flush what it queued.
                ws.flush().await
            };
            if sent.is_err() {
                return;
            }
        }
    });
    let mut r = Response::new(portico::http::body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert("upgrade", "websocket".parse().expect("v"));
    h.insert("connection", "Upgrade".parse().expect("v"));
    h.insert(
        "sec-websocket-accept",
        derive_accept_key(key.as_bytes()).parse().expect("v"),
    );
    if let Some(p) = protocol {
        h.insert("sec-websocket-protocol", p.parse().expect("v"));
    }
    r
}
