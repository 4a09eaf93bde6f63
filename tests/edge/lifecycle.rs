//! Lifecycle in-process: draining lets in-flight requests finish and then
//! refuses new connections; a reload swaps routes and options for new
//! requests while established WebSockets stay open; the tunnel's idle
//! timeout closes quiet sockets with 1001 and spares busy ones.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::Method;
use portico::http::body::empty;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::config::{ConfigText, base, plain};
use crate::inproc;
use crate::support::client::{self, Client};
use crate::support::{poll_until, upstream, within};

/// The base config with a 5 s grace period.
fn graceful() -> ConfigText {
    base().set("server.grace_period", "5s")
}

#[tokio::test]
async fn drain_finishes_in_flight_requests_then_refuses() {
    let up = upstream::start().await;
    let mut e = inproc::start(&graceful().to_string(), &[("UP", up.url())]).await;
    let (plain, https) = (e.plain(), e.https());
    // One slow request per protocol: h1 plain and h2 over TLS.
    let mut h1 = Client::plain(plain).await;
    let mut h2 = Client::tls(https, &e.ca(), &[b"h2"]).await;
    let a = tokio::spawn(async move { h1.get("/slow?ms=800").await });
    within(
        "first slow request arrives",
        up.state.slow_started.notified(),
    )
    .await;
    let b = tokio::spawn(async move { h2.get("/slow?ms=800").await });
    within(
        "second slow request arrives",
        up.state.slow_started.notified(),
    )
    .await;

    let t = Instant::now();
    e.begin_shutdown();
    poll_until("listeners closed", || async {
        let refused = tokio::net::TcpStream::connect(plain).await.is_err()
            && tokio::net::TcpStream::connect(https).await.is_err();
        refused.then_some(())
    })
    .await;
    for r in [a, b] {
        let r = within("in-flight request", r).await.expect("task");
        assert_eq!(
            (r.status.as_u16(), r.text()),
            (200, "slow done".to_string())
        );
    }
    e.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "drain took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn reload_applies_to_new_requests_and_keeps_websockets() {
    let up = upstream::start().await;
    let up2 = upstream::start().await;
    let vars = [("UP", up.url()), ("UP2", up2.url())];
    let e = inproc::start(&graceful().to_string(), &vars).await;
    let mut ws = client::ws_plain(e.plain(), "/live/ws").await;

    let reloaded = graceful().with(
        r#"
[[routes]]
path = "/live/"
to = "${UP}"
websocket = false

[[routes]]
path = "/two/"
to = "${UP2}"
"#,
    );
    e.reload(&reloaded.to_string(), &vars);
    assert_eq!(e.edge.config().routes.len(), 3);

    // New requests see the new routes.
    let mut c = Client::plain(e.plain()).await;
    c.get("/two/x").await;
    assert!(up2.state.last_seen("/two/x").is_some());
    let req = c
        .req(Method::GET, "/live/ws")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(empty())
        .unwrap();
    assert_eq!(c.fetch(req).await.status, 403);
    let seen = up.state.last_seen("/live/ws").expect("the first upgrade");
    assert_eq!(seen.method, "GET");

    // The socket opened before the reload is untouched.
    ws.send(Message::text("still here")).await.unwrap();
    let m = within("echo", ws.next()).await.unwrap().unwrap();
    assert_eq!(m, Message::text("still here"));
}

#[tokio::test]
async fn websocket_idle_timeout_closes_quiet_tunnels_only() {
    let up = upstream::start().await;
    let toml = graceful()
        .set("upstream.websocket_idle_timeout", "400ms")
        .to_string();
    let e = inproc::start(&toml, &[("UP", up.url())]).await;
    let mut quiet = client::ws_plain(e.plain(), "/q/ws").await;
    let mut busy = client::ws_plain(e.plain(), "/b/ws").await;
    let t = Instant::now();
    // The busy one talks every 100 ms for 1.2 s: three idle periods.
    for i in 0..12 {
        let m = Message::text(format!("tick {i}"));
        busy.send(m.clone()).await.unwrap();
        assert_eq!(within("echo", busy.next()).await.unwrap().unwrap(), m);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The quiet one got a 1001 close after about 400 ms.
    let close = match within("close frame", quiet.next()).await {
        Some(Ok(Message::Close(Some(f)))) => f,
        other => panic!("expected a close frame, got {other:?}"),
    };
    assert_eq!(close.code, CloseCode::Away);
    assert_eq!(close.reason.as_str(), "idle timeout");
    assert!(t.elapsed() >= Duration::from_millis(400));
}

/// A response that outlives the grace period (an SSE stream) is cut when
/// it ends, and shutdown completes.
#[tokio::test]
async fn grace_period_cuts_what_is_still_running() {
    use http_body_util::BodyExt;
    let up = upstream::start().await;
    let toml = base().set("server.grace_period", "500ms").to_string();
    let mut e = inproc::start(&toml, &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let resp = c.get_streaming("/events/sse").await;
    let mut body = resp.into_body();
    let first = within("first event", body.frame()).await.unwrap().unwrap();
    assert_eq!(
        first.data_ref().map(|d| &d[..]),
        Some(&b"data: first\n\n"[..])
    );
    let t = Instant::now();
    e.begin_shutdown();
    // The stream is cut (error or early end), not completed with `last`.
    let rest = within("the stream is cut", body.collect()).await;
    if let Ok(rest) = rest {
        assert!(!rest.to_bytes().ends_with(b"data: last\n\n"));
    }
    e.shutdown().await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "shutdown took {took:?} with a 500 ms grace period"
    );
}

#[tokio::test]
async fn shutdown_delay_turns_health_unready_while_still_serving() {
    let up = upstream::start().await;
    let toml = plain().set("server.shutdown_delay", "1500ms").to_string();
    let mut e = inproc::start(&toml, &[("UP", up.url())]).await;
    let plain = e.plain();
    let mut c = Client::plain(plain).await;
    assert_eq!(c.get("/.portico/up").await.status, 200);
    e.begin_shutdown();
    // During the delay: health says 503, new connections and the app still work.
    poll_until("health unready", || async {
        let mut c = Client::plain(plain).await;
        (c.get("/.portico/up").await.status == 503).then_some(())
    })
    .await;
    let mut fresh = Client::plain(plain).await;
    assert_eq!(fresh.get("/").await.status, 200);
    // After it: listeners close.
    poll_until("listeners closed", || async {
        tokio::net::TcpStream::connect(plain)
            .await
            .is_err()
            .then_some(())
    })
    .await;
}
