//! Starts the real edge in-process (`crate::inproc`) with a `[supabase]`
//! config built from the shared base, and a small Phoenix client over
//! tokio-tungstenite. Every wait is bounded.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::{ConfigText, plain};
use crate::inproc::{self, Inproc};

pub(crate) const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// The Supabase front's config: the plain base (TLS off) without an
/// upstream, with `[supabase]` and no refusal delays.
pub(crate) fn supabase() -> ConfigText {
    plain()
        .without("upstream")
        .set("server.grace_period", "1s")
        .with(SUPABASE)
}

const SUPABASE: &str = r#"
[log]
access = false
level = "warn"

[supabase]
jwt_secrets = ["super-secret-jwt-token-with-at-least-32-characters-long"]
api_keys = { sb_publishable_test = "anon", sb_secret_test = "service_role" }

[supabase.limits]
join_error_delay = "0s"
handshake_error_delay = "0s"
"#;

/// Starts the edge in-process with `config`; its one listener is
/// [`Inproc::plain`].
pub(crate) async fn start(config: ConfigText) -> Inproc {
    inproc::start(&config.to_string(), &[]).await
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn token(claims: Value) -> String {
    portico::phoenix::jwt::sign_hs(jsonwebtoken::Algorithm::HS256, &claims, SECRET.as_bytes())
}

pub(crate) fn anon() -> String {
    token(json!({"role":"anon","exp": now() + 3600}))
}

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A Phoenix client speaking one vsn.
pub(crate) struct Client {
    pub(crate) ws: Ws,
    pub(crate) v2: bool,
    next: u32,
}

pub(crate) async fn connect(addr: SocketAddr, vsn: &str, key: &str) -> Client {
    let url = format!("ws://{addr}/realtime/v1/websocket?apikey={key}&vsn={vsn}");
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect timeout")
        .expect("connect");
    Client {
        ws,
        v2: vsn.starts_with('2'),
        next: 0,
    }
}

/// One decoded server message: (join_ref, ref, topic, event, payload).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Msg {
    pub(crate) join_ref: Value,
    pub(crate) r#ref: Value,
    pub(crate) topic: String,
    pub(crate) event: String,
    pub(crate) payload: Value,
}

impl Client {
    pub(crate) fn next_ref(&mut self) -> String {
        self.next += 1;
        self.next.to_string()
    }

    pub(crate) async fn send(
        &mut self,
        join_ref: Option<&str>,
        r#ref: &str,
        topic: &str,
        event: &str,
        payload: Value,
    ) {
        let text = if self.v2 {
            json!([join_ref, r#ref, topic, event, payload]).to_string()
        } else {
            json!({"topic": topic, "event": event, "payload": payload, "ref": r#ref, "join_ref": join_ref}).to_string()
        };
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    pub(crate) async fn send_binary(&mut self, b: Vec<u8>) {
        self.ws.send(Message::Binary(b.into())).await.expect("send");
    }

    /// The next message (text decoded; binary returned raw as `Err`).
    pub(crate) async fn recv_any(&mut self) -> Option<Result<Msg, Vec<u8>>> {
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .ok()??
                .ok()?;
            return match m {
                Message::Text(t) => Some(Ok(self.decode(&t))),
                Message::Binary(b) => Some(Err(b.to_vec())),
                Message::Close(_) => None,
                _ => continue,
            };
        }
    }

    pub(crate) fn decode(&self, t: &str) -> Msg {
        let v: Value = serde_json::from_str(t).expect("json");
        if self.v2 {
            Msg {
                join_ref: v[0].clone(),
                r#ref: v[1].clone(),
                topic: v[2].as_str().unwrap().to_string(),
                event: v[3].as_str().unwrap().to_string(),
                payload: v[4].clone(),
            }
        } else {
            assert!(
                v.get("join_ref").is_none(),
                "v1 servers never send join_ref: {t}"
            );
            Msg {
                join_ref: Value::Null,
                r#ref: v["ref"].clone(),
                topic: v["topic"].as_str().unwrap().to_string(),
                event: v["event"].as_str().unwrap().to_string(),
                payload: v["payload"].clone(),
            }
        }
    }

    pub(crate) async fn recv(&mut self) -> Msg {
        match self.recv_any().await {
            Some(Ok(m)) => m,
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Waits for a message with `event`, skipping others (bounded).
    pub(crate) async fn expect_event(&mut self, event: &str) -> Msg {
        for _ in 0..20 {
            let m = self.recv().await;
            if m.event == event {
                return m;
            }
        }
        panic!("no {event}");
    }

    /// Joins `topic` with `config`; returns the join ref and the reply.
    pub(crate) async fn join(&mut self, topic: &str, payload: Value) -> (String, Msg) {
        let r = self.next_ref();
        self.send(Some(&r), &r, topic, "phx_join", payload).await;
        let reply = self.expect_event("phx_reply").await;
        (r, reply)
    }

    /// Asserts nothing arrives for `d`.
    pub(crate) async fn silent(&mut self, d: Duration) {
        if let Ok(Some(Ok(m))) = tokio::time::timeout(d, self.ws.next()).await {
            panic!("unexpected message {m:?}");
        }
    }
}

pub(crate) fn join_payload(self_: bool, ack: bool, private: bool) -> Value {
    json!({"config": {"broadcast": {"self": self_, "ack": ack}, "presence": {"key": "", "enabled": true}, "postgres_changes": [], "private": private}})
}

/// A raw HTTP/1.1 exchange (Connection: close): status line code and body.
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("tcp");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .expect("http timeout")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

/// The WebSocket handshake headers for a raw request.
pub(crate) const WS_HEADERS: [(&str, &str); 4] = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];
