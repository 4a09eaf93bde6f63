//! WebSocket pass-through: upgrades spliced after a matching 101, frames
//! relayed untouched (large, fragmented, text, binary, control frames
//! between fragments), non-101 answers relayed as responses, and routes
//! with `websocket = false` refusing upgrades.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::Method;
use portico::http::body::empty;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::config::base;
use crate::inproc;
use crate::support::client::{self, Client, Ws};
use crate::support::{upstream, within};

/// The base config with a route that refuses upgrades.
fn toml() -> String {
    base().with(ROUTES).to_string()
}

const ROUTES: &str = r#"
[[routes]]
path = "/nows/"
to = "${UP}"
websocket = false

[[routes]]
path = "/"
to = "upstream"
"#;

/// The next data message, skipping pongs.
async fn next_data<S>(ws: &mut Ws<S>) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let m = within("websocket message", ws.next())
            .await
            .expect("socket open")
            .expect("message");
        if !matches!(m, Message::Pong(_) | Message::Ping(_)) {
            return m;
        }
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

async fn echo_all<S>(ws: &mut Ws<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // Small text and binary.
    for m in [
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 255]),
    ] {
        ws.send(m.clone()).await.expect("send");
        assert_eq!(next_data(ws).await, m);
    }
    // 1 MiB binary and 1 MiB text (spans many TCP reads and the tunnel's buffer).
    let big = pattern(1 << 20);
    ws.send(Message::binary(big.clone())).await.expect("send");
    assert_eq!(next_data(ws).await, Message::binary(big));
    let big_text = "portico ".repeat((1 << 20) / 8);
    ws.send(Message::text(big_text.clone()))
        .await
        .expect("send");
    assert_eq!(next_data(ws).await, Message::text(big_text));

    // A fragmented text message: three frames.
    for (part, op, fin) in [
        ("hel", OpCode::Data(Data::Text), false),
        ("lo ", OpCode::Data(Data::Continue), false),
        ("world", OpCode::Data(Data::Continue), true),
    ] {
        ws.send(Message::Frame(Frame::message(Bytes::from(part), op, fin)))
            .await
            .expect("send fragment");
    }
    assert_eq!(next_data(ws).await, Message::text("hello world"));

    // A fragmented 1 MiB binary message with a ping between the fragments
    // (RFC 6455 §5.4 allows control frames there).
    let big = pattern(1 << 20);
    let (a, b) = big.split_at(300_000);
    ws.send(Message::Frame(Frame::message(
        Bytes::copy_from_slice(a),
        OpCode::Data(Data::Binary),
        false,
    )))
    .await
    .expect("send fragment");
    ws.send(Message::Ping(Bytes::from_static(b"between")))
        .await
        .expect("ping");
    ws.send(Message::Frame(Frame::message(
        Bytes::copy_from_slice(b),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .expect("send fragment");
    assert_eq!(next_data(ws).await, Message::binary(big));

    ws.close(None).await.expect("close");
}

#[tokio::test]
async fn echo_through_plain_listener() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut ws = client::ws_plain(e.plain(), "/chat/ws").await;
    echo_all(&mut ws).await;
}

#[tokio::test]
async fn echo_through_tls_listener_with_subprotocol() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let tls = client::tls(e.https(), &e.ca(), &[b"http/1.1"]).await;
    let url = format!("wss://localhost:{}/chat/ws", e.https().port());
    let (mut ws, resp) =
        client::ws_over(tls, &url, &[("sec-websocket-protocol", "chat, superchat")]).await;
    assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
    echo_all(&mut ws).await;
    let seen = up
        .state
        .last_seen("/chat/ws")
        .expect("upstream saw the upgrade");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert_eq!(seen.headers["sec-websocket-protocol"], "chat, superchat");
}

fn upgrade_req(c: &Client, path: &str) -> http::Request<portico::http::body::Body> {
    c.req(Method::GET, path)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(empty())
        .unwrap()
}

#[tokio::test]
async fn non_101_answer_is_relayed() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let r = c.fetch(upgrade_req(&c, "/x/refuse-upgrade")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "no upgrade here");
    // The connection stays a normal HTTP connection.
    assert_eq!(c.get("/after").await.status, 200);
}

#[tokio::test]
async fn websocket_false_refuses_upgrades() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let r = c.fetch(upgrade_req(&c, "/nows/ws")).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(up.state.last_seen("/nows/ws").is_none());
    // Plain requests on the same route still go through.
    let mut c = Client::plain(e.plain()).await;
    assert_eq!(c.get("/nows/page").await.status, 200);
}

/// A 101 for another protocol than the one asked for is not spliced, and
/// the client gets a clean error instead of a half-switched connection.
#[tokio::test]
async fn mismatched_101_is_not_spliced() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let r = c.fetch(upgrade_req(&c, "/x/wrong-101")).await;
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.text().contains("switched protocols"), "{}", r.text());
    assert_eq!(c.get("/after").await.status, 200);
}
