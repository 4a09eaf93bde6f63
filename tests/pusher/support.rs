//! The edge in-process with two Pusher apps, a Pusher protocol 7 client
//! over tokio-tungstenite, and a REST client over hyper that signs its
//! requests the way the Pusher server libraries do. Signatures are computed
//! here from `hmac`/`sha2`/`md-5`, not with portico's own signer, so a bug
//! there cannot cancel out. Every wait is bounded by [`WAIT`].

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::plain;
use crate::inproc::{self, Inproc};

/// Upper bound for any single wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// An app's credentials.
#[derive(Debug, Clone, Copy)]
pub(crate) struct App {
    pub(crate) id: &'static str,
    pub(crate) key: &'static str,
    pub(crate) secret: &'static str,
}

/// The app the tests use: client events enabled.
pub(crate) const APP: App = App {
    id: "app-id",
    key: "app-key",
    secret: "app-secret",
};

/// An app with the defaults: client events off.
pub(crate) const QUIET: App = App {
    id: "quiet-id",
    key: "quiet-key",
    secret: "quiet-secret",
};

const APPS: &str = r#"
[[apps]]
id = "app-id"
key = "app-key"
secret = "app-secret"
client_events = true

[[apps]]
id = "quiet-id"
key = "quiet-key"
secret = "quiet-secret"
"#;

/// The edge on a plain listener (TLS off) with [`APP`] and [`QUIET`];
/// nothing is proxied (the upstream refuses).
pub(crate) async fn start() -> Inproc {
    let config = plain()
        .set("upstream.url", "http://127.0.0.1:9")
        .set("log.access", false)
        .with(APPS);
    inproc::start(&config.to_string(), &[]).await
}

/// Awaits `fut` for at most [`WAIT`], panicking with `what` on timeout.
pub(crate) async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    crate::wait::within(WAIT, what, fut).await
}

/// Lowercase hex HMAC-SHA256 of `message` keyed with `secret`.
pub(crate) fn hmac_hex(secret: &str, message: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(message.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// A channel `auth` value: `key:HMAC(secret, "socket_id:channel[:channel_data]")`.
pub(crate) fn channel_auth(
    app: App,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    let mut signed = format!("{socket_id}:{channel}");
    if let Some(d) = channel_data {
        signed.push(':');
        signed.push_str(d);
    }
    format!("{}:{}", app.key, hmac_hex(app.secret, &signed))
}

/// `path?query` signed as the Pusher REST API wants: `auth_key`,
/// `auth_timestamp`, `auth_version`, `body_md5` (for a body) and `extra`,
/// sorted by key, and `auth_signature` = HMAC(secret, "METHOD\npath\nquery").
pub(crate) fn signed(
    app: App,
    method: &Method,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> String {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let md5 = hex::encode(Md5::digest(body.as_bytes()));
    let mut params: Vec<(&str, &str)> = vec![
        ("auth_key", app.key),
        ("auth_timestamp", &ts),
        ("auth_version", "1.0"),
    ];
    if !body.is_empty() {
        params.push(("body_md5", &md5));
    }
    params.extend_from_slice(extra);
    params.sort();
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let query = query.join("&");
    let sig = hmac_hex(app.secret, &format!("{method}\n{path}\n{query}"));
    format!("{path}?{query}&auth_signature={sig}")
}

/// One HTTP/1.1 request; the status and the body as JSON.
pub(crate) async fn rest(
    addr: SocketAddr,
    method: Method,
    path_and_query: &str,
    body: &str,
) -> (StatusCode, Value) {
    let tcp = within("REST connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let (mut send, conn) = within(
        "REST handshake",
        hyper::client::conn::http1::handshake(TokioIo::new(tcp)),
    )
    .await
    .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let resp = within("REST response", send.send_request(req))
        .await
        .expect("response");
    let status = resp.status();
    let bytes = within("REST body", resp.into_body().collect())
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "REST answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

/// A signed `POST /apps/{id}/events` of `body`; the status and answer.
pub(crate) async fn publish(addr: SocketAddr, app: App, body: &Value) -> (StatusCode, Value) {
    let body = body.to_string();
    let path = format!("/apps/{}/events", app.id);
    let uri = signed(app, &Method::POST, &path, &[], &body);
    rest(addr, Method::POST, &uri, &body).await
}

/// A signed `GET /apps/{id}{path}` with `extra` query parameters.
pub(crate) async fn query(
    addr: SocketAddr,
    app: App,
    path: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let path = format!("/apps/{}{path}", app.id);
    let uri = signed(app, &Method::GET, &path, extra, "");
    rest(addr, Method::GET, &uri, "").await
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A Pusher protocol 7 connection.
pub(crate) struct Socket {
    ws: Ws,
    /// The `socket_id` from `pusher:connection_established`.
    pub(crate) socket_id: String,
    /// `pusher:connection_established`'s `data`, decoded.
    pub(crate) established: Value,
}

/// Opens `/app/{key}` on `addr` (the WebSocket handshake only).
pub(crate) async fn open(addr: SocketAddr, key: &str) -> Ws {
    let url = format!("ws://{addr}/app/{key}?protocol=7&client=rust&version=1.0");
    let (ws, resp) = within("WebSocket handshake", tokio_tungstenite::connect_async(url))
        .await
        .expect("WebSocket handshake");
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws
}

/// The next text frame as JSON (skipping control frames); `Err` with the
/// close frame if the socket closes instead.
pub(crate) async fn next_json(ws: &mut Ws) -> Result<Value, Option<CloseFrame>> {
    // Bounded: a handful of control frames at most between messages.
    for _ in 0..16 {
        match within("a message", ws.next()).await {
            Some(Ok(Message::Text(t))) => {
                return Ok(
                    serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
                );
            }
            Some(Ok(Message::Close(frame))) => return Err(frame),
            Some(Ok(Message::Binary(b))) => panic!("unexpected binary frame {b:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error: {e}"),
            None => return Err(None),
        }
    }
    panic!("only control frames arrived");
}

/// A message's `data`, decoded if it is a JSON string (as pusher-js does).
pub(crate) fn data(msg: &Value) -> Value {
    match &msg["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        other => other.clone(),
    }
}

impl Socket {
    /// Connects with `key` and reads `pusher:connection_established`.
    pub(crate) async fn connect(addr: SocketAddr, key: &str) -> Socket {
        let mut ws = open(addr, key).await;
        let hello = next_json(&mut ws)
            .await
            .unwrap_or_else(|c| panic!("closed before connection_established: {c:?}"));
        assert_eq!(hello["event"], "pusher:connection_established", "{hello}");
        assert!(
            hello["data"].is_string(),
            "connection_established data is a JSON-encoded string: {hello}"
        );
        let established = data(&hello);
        let socket_id = established["socket_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no socket_id: {hello}"))
            .to_string();
        Socket {
            ws,
            socket_id,
            established,
        }
    }

    pub(crate) async fn send(&mut self, msg: Value) {
        within("send", self.ws.send(Message::text(msg.to_string())))
            .await
            .expect("send");
    }

    /// The next message (panics if the socket closes).
    pub(crate) async fn next(&mut self) -> Value {
        next_json(&mut self.ws)
            .await
            .unwrap_or_else(|c| panic!("socket closed: {c:?}"))
    }

    /// The next message, which must be `event` (on `channel`, if given).
    pub(crate) async fn expect(&mut self, event: &str, channel: Option<&str>) -> Value {
        let m = self.next().await;
        assert_eq!(m["event"], event, "{m}");
        if let Some(c) = channel {
            assert_eq!(m["channel"], c, "{m}");
        }
        m
    }

    /// `pusher:ping`, answered by `pusher:pong` as the very next message:
    /// proof that nothing else was queued for this socket before it.
    pub(crate) async fn ping_pong(&mut self) {
        self.send(json!({"event": "pusher:ping", "data": {}})).await;
        let m = self.next().await;
        assert_eq!(
            m["event"], "pusher:pong",
            "expected nothing before the pong, got {m}"
        );
    }

    /// Subscribes with `data` (channel, auth, channel_data) and returns the
    /// answer, whatever it is.
    pub(crate) async fn subscribe_with(&mut self, data: Value) -> Value {
        self.send(json!({"event": "pusher:subscribe", "data": data}))
            .await;
        self.next().await
    }

    /// Subscribes to a public channel; asserts it succeeded.
    pub(crate) async fn subscribe(&mut self, channel: &str) {
        let m = self.subscribe_with(json!({"channel": channel})).await;
        assert_eq!(m["event"], "pusher_internal:subscription_succeeded", "{m}");
        assert_eq!(m["channel"], channel, "{m}");
    }

    /// Subscribes to a private channel with a valid auth; asserts it
    /// succeeded.
    pub(crate) async fn subscribe_private(&mut self, app: App, channel: &str) {
        let auth = channel_auth(app, &self.socket_id, channel, None);
        let m = self
            .subscribe_with(json!({"channel": channel, "auth": auth}))
            .await;
        assert_eq!(m["event"], "pusher_internal:subscription_succeeded", "{m}");
        assert_eq!(m["channel"], channel, "{m}");
    }

    /// Reads until the server closes the socket (bounded); the close
    /// code, if a close frame came.
    #[allow(dead_code, reason = "only the cluster tests use it")]
    pub(crate) async fn close_code(&mut self) -> Option<u16> {
        for _ in 0..32 {
            if let Err(frame) = next_json(&mut self.ws).await {
                return frame.map(|f| u16::from(f.code));
            }
        }
        panic!("the socket never closed");
    }

    /// Closes the WebSocket (a client leaving).
    pub(crate) async fn close(mut self) {
        let _ = within("close", self.ws.close(None)).await;
    }
}
