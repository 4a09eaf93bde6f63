//! The real binary with per-core workers (`PORTICO_WORKERS=per-core`):
//! proxied traffic stays on the workers, while Pusher sockets and REST
//! calls, over TLS and plain, move to the shared runtime mid-connection and
//! keep working there, through a broadcast and a drain.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::Method;
use md5::Digest;
use portico::http::body::full;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::config::base;
use crate::support::binary::{self, Proc};
use crate::support::client::{self, Client, Ws};
use crate::support::{TempDir, upstream, within};

const KEY: &str = "w-key";
const SECRET: &str = "w-secret";

/// The base for the real binary: it binds `127.0.0.1:0` itself, logs
/// JSON at debug (the tests read the "moved" lines), and serves one
/// Pusher app.
fn config(up: &str, certs: &std::path::Path) -> String {
    base()
        .set("server.https", "127.0.0.1:0")
        .set("server.plain", "127.0.0.1:0")
        .set("server.grace_period", "5s")
        .set("tls.dir", certs.display().to_string())
        .set("log.format", "json")
        .set("log.level", "debug")
        .set("upstream.url", up)
        .with(&format!(
            "[[apps]]\nid = \"w-app\"\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\n"
        ))
        .to_string()
}

/// The next text frame as JSON, skipping pings.
async fn next_json<S>(ws: &mut Ws<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match within("a pusher message", ws.next()).await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("json frame"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Connects, checks `connection_established`, subscribes to `news`.
async fn subscribe<S>(ws: &mut Ws<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let hello = next_json(ws).await;
    assert_eq!(hello["event"], "pusher:connection_established", "{hello}");
    let sub = json!({"event": "pusher:subscribe", "data": {"channel": "news"}});
    ws.send(Message::text(sub.to_string())).await.expect("send");
    let ok = next_json(ws).await;
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
}

/// Pusher's REST signature for `POST /apps/w-app/events` with `body`.
fn signed_events_path(body: &[u8]) -> String {
    let path = "/apps/w-app/events";
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let md5 = hex::encode(md5::Md5::digest(body));
    let q = format!("auth_key={KEY}&auth_timestamp={ts}&auth_version=1.0&body_md5={md5}");
    let sig = portico::pusher::auth::sign_parts(SECRET, &[format!("POST\n{path}\n{q}").as_bytes()]);
    format!("{path}?{q}&auth_signature={sig}")
}

/// Waits for `n` "moved to the shared runtime" debug lines.
async fn moved(p: &mut Proc, n: usize) {
    for _ in 0..n {
        p.wait_log("a hub connection moving to the shared runtime", |v| {
            v["fields"]["message"] == "hub connection moved to the shared runtime"
        })
        .await;
    }
}

#[tokio::test]
async fn hub_connections_move_off_per_core_workers_and_keep_working() {
    let up = upstream::start().await;
    let certs = TempDir::new("certs");
    let mut p = binary::start_with_env(
        &config(&up.url(), certs.path()),
        &["plain", "https"],
        &[("PORTICO_WORKERS", "per-core")],
    )
    .await;
    assert!(
        p.log().contains("connections run on per-core runtimes"),
        "{}",
        p.log()
    );
    let (plain, https) = (p.plain.expect("plain"), p.https.expect("https"));
    let ca = certs.path().join(portico::tls::dev::CA_CERT_FILE);
    let path = format!("/app/{KEY}?protocol=7&client=rust&version=1");

    // A proxied request first: the connection stays on its worker.
    let mut c = Client::plain(plain).await;
    assert_eq!(c.get("/before").await.json()["uri"], "/before");

    let tls = client::tls(https, &ca, &[b"http/1.1"]).await;
    let url = format!("wss://localhost:{}{path}", https.port());
    let (mut over_tls, _) = client::ws_over(tls, &url, &[]).await;
    subscribe(&mut over_tls).await;
    let mut over_plain = client::ws_plain(plain, &path).await;
    subscribe(&mut over_plain).await;
    moved(&mut p, 2).await;

    // A REST publish on the connection that served the proxied request:
    // it moves too, and the broadcast reaches both moved sockets.
    let body = json!({"name": "tick", "channel": "news", "data": "{\"n\":1}"}).to_string();
    let req = c
        .req(Method::POST, &signed_events_path(body.as_bytes()))
        .header("content-type", "application/json")
        .body(full(body.clone()))
        .expect("request");
    let r = c.fetch(req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    moved(&mut p, 1).await;
    for ws in [&mut over_tls as &mut dyn Receive, &mut over_plain] {
        let m = ws.next_event().await;
        assert_eq!(
            (m["event"].as_str(), m["channel"].as_str()),
            (Some("tick"), Some("news"))
        );
        assert_eq!(m["data"], "{\"n\":1}");
    }
    // The same connection, now on the shared runtime, still proxies.
    assert_eq!(c.get("/after").await.json()["uri"], "/after");

    // A proxied WebSocket is not a hub socket: it stays on its worker.
    let mut echo = client::ws_plain(plain, "/live/ws").await;
    echo.send(Message::text("hello")).await.expect("send");
    let back = within("proxied echo", echo.next()).await;
    assert_eq!(back.expect("open").expect("frame"), Message::text("hello"));

    // SIGTERM: the drain reaches the moved sockets, and the process exits.
    p.signal("TERM");
    for ws in [&mut over_tls as &mut dyn Receive, &mut over_plain] {
        ws.until_closed().await;
    }
    let status = p.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}; log:\n{}", p.log());
    assert!(
        !p.log().contains("cannot move a hub connection"),
        "{}",
        p.log()
    );
}

/// The two sockets' stream types differ; the checks read them alike.
trait Receive {
    fn next_event(&mut self) -> futures_util::future::BoxFuture<'_, Value>;
    fn until_closed(&mut self) -> futures_util::future::BoxFuture<'_, ()>;
}

impl<S> Receive for Ws<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    fn next_event(&mut self) -> futures_util::future::BoxFuture<'_, Value> {
        Box::pin(next_json(self))
    }

    fn until_closed(&mut self) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            // Bounded: a drained socket ends well within the grace period.
            for _ in 0..16 {
                match within("the drain closing a hub socket", self.next()).await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                }
            }
            panic!("the hub socket stayed open through the drain");
        })
    }
}
