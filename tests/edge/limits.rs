//! Connection-level limits: a client trickling its request head is cut at
//! `server.header_timeout` (slowloris), a silent TLS client at
//! `server.handshake_timeout`, and the per-IP and global connection caps
//! refuse extra connections while the admitted ones keep working.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::config::{ConfigText, base, plain};
use crate::inproc;
use crate::support::client::{self, Client};
use crate::support::{poll_until, upstream};

/// Reads until EOF or error; returns what was read and whether it ended
/// within `limit`.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return (got, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The base config with short header and handshake timeouts.
fn slow_toml() -> String {
    base()
        .set("server.header_timeout", "500ms")
        .set("server.handshake_timeout", "500ms")
        .to_string()
}

#[tokio::test]
async fn slowloris_is_cut_at_the_header_timeout() {
    let up = upstream::start().await;
    let e = inproc::start(&slow_toml(), &[("UP", up.url())]).await;

    // A partial head, then silence.
    let started = Instant::now();
    let mut silent = client::tcp(e.plain()).await;
    silent
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // A trickler: one byte every 100 ms must not extend the deadline.
    let trickler = {
        let addr = e.plain();
        tokio::spawn(async move {
            let mut s = client::tcp(addr).await;
            let t = Instant::now();
            for b in b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
                .iter()
                .cycle()
                .take(40)
            {
                if s.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let (_, closed) = read_to_close(&mut s, Duration::from_secs(3)).await;
            (closed, t.elapsed())
        })
    };

    // Meanwhile a normal client on another connection is served.
    let mut c = Client::plain(e.plain()).await;
    assert_eq!(c.get("/normal").await.status, 200);

    let (got, closed) = read_to_close(&mut silent, Duration::from_secs(3)).await;
    let took = started.elapsed();
    assert!(closed, "partial head not cut within 3 s");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(2500),
        "cut after {took:?}, want about 500 ms"
    );
    // Either a bare close or a 408; never a response from the upstream.
    let text = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");

    let (closed, took) = trickler.await.unwrap();
    assert!(closed, "trickling client not cut");
    assert!(
        took < Duration::from_millis(2500),
        "trickler cut after {took:?}"
    );
    assert!(
        up.state
            .seen
            .lock()
            .iter()
            .all(|s| s.uri.starts_with("/normal")),
        "a partial head reached the upstream"
    );

    // The same deadline bounds an idle keep-alive connection (documented on
    // `server.header_timeout`), so the normal client reconnects.
    drop(c);
    let mut c = Client::plain(e.plain()).await;
    assert_eq!(c.get("/normal-again").await.status, 200);
}

#[tokio::test]
async fn silent_tls_client_is_cut_at_the_handshake_timeout() {
    let up = upstream::start().await;
    let e = inproc::start(&slow_toml(), &[("UP", up.url())]).await;
    let started = Instant::now();
    let mut s = client::tcp(e.https()).await;
    let (_, closed) = read_to_close(&mut s, Duration::from_secs(3)).await;
    let took = started.elapsed();
    assert!(closed, "silent TLS client not cut within 3 s");
    assert!(
        took >= Duration::from_millis(400),
        "cut too early: {took:?}"
    );
    let mut c = Client::tls(e.https(), &e.ca(), &[b"h2"]).await;
    assert_eq!(c.get("/").await.status, 200);
}

/// The plain listener with a global cap of 3 and a per-IP cap of 2.
fn caps() -> ConfigText {
    plain()
        .set("server.max_connections", 3)
        .set("server.max_connections_per_ip", 2)
}

/// A TCP connection from `source` (any 127/8 address works on loopback).
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
    crate::support::within("connect", sock.connect(to))
        .await
        .unwrap()
}

/// Whether a request on `s` gets an answer (true) or the socket is closed
/// by portico without one (false).
async fn served(s: &mut TcpStream) -> bool {
    if s.write_all(b"GET /.portico/up HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 256];
    match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => buf[..n].starts_with(b"HTTP/1.1 200"),
        Ok(_) => false,
        Err(_) => panic!("neither served nor closed within 3 s"),
    }
}

#[tokio::test]
async fn per_ip_and_global_caps() {
    let up = upstream::start().await;
    let e = inproc::start(&caps().to_string(), &[("UP", up.url())]).await;
    let to = e.plain();

    let mut a1 = connect_from("127.0.0.1", to).await;
    let mut a2 = connect_from("127.0.0.1", to).await;
    assert!(served(&mut a1).await);
    assert!(served(&mut a2).await);
    // Third from the same IP: over max_connections_per_ip = 2.
    let mut a3 = connect_from("127.0.0.1", to).await;
    assert!(
        !served(&mut a3).await,
        "third connection from one IP was served"
    );
    // Another IP still gets in (global 3/3 now).
    let mut b1 = connect_from("127.0.0.2", to).await;
    assert!(served(&mut b1).await);
    // A fourth connection from a third IP: over max_connections = 3.
    let mut c1 = connect_from("127.0.0.3", to).await;
    assert!(
        !served(&mut c1).await,
        "connection over the global cap was served"
    );
    // The admitted ones keep working.
    assert!(served(&mut a1).await);
    assert!(served(&mut a2).await);
    assert!(served(&mut b1).await);

    // Closing one frees its slot (released when its task ends).
    drop(a1);
    poll_until("a slot frees up after a close", || async {
        let mut s = connect_from("127.0.0.1", to).await;
        served(&mut s).await.then_some(())
    })
    .await;
}

/// A client that connects and sends nothing at all (not even the first
/// byte hyper needs to tell HTTP/1.1 from HTTP/2) is cut too, on the plain
/// listener and after a completed TLS handshake.
#[tokio::test]
async fn silent_client_is_cut_at_the_header_timeout() {
    let up = upstream::start().await;
    let e = inproc::start(&slow_toml(), &[("UP", up.url())]).await;
    let started = Instant::now();
    let mut plain = client::tcp(e.plain()).await;
    let mut tls = client::tls(e.https(), &e.ca(), &[b"http/1.1"]).await;
    let (_, closed) = read_to_close(&mut plain, Duration::from_secs(3)).await;
    assert!(closed, "silent plain connection still open after 3 s");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "cut after {took:?}");
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(3), tls.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "silent TLS connection still open after 3 s: {r:?}"
    );
}

#[tokio::test]
async fn websocket_tunnels_keep_their_cap_slots() {
    let up = upstream::start().await;
    let e = inproc::start(&caps().to_string(), &[("UP", up.url())]).await;
    let to = e.plain();
    let ws1 = client::ws_plain(to, "/a/ws").await;
    let _ws2 = client::ws_plain(to, "/b/ws").await;
    let mut third = connect_from("127.0.0.1", to).await;
    assert!(
        !served(&mut third).await,
        "a third connection beside two WebSockets was served"
    );
    drop(ws1);
    poll_until("the closed tunnel frees its slot", || async {
        let mut s = connect_from("127.0.0.1", to).await;
        served(&mut s).await.then_some(())
    })
    .await;
}

/// Limits are part of a reload: a raised per-IP cap admits new
/// connections at once, and the admitted ones are untouched.
#[tokio::test]
async fn reload_applies_the_per_ip_cap_to_new_connections() {
    let up = upstream::start().await;
    let one = caps().set("server.max_connections_per_ip", 1);
    let vars = [("UP", up.url())];
    let e = inproc::start(&one.to_string(), &vars).await;
    let to = e.plain();
    let mut a1 = connect_from("127.0.0.1", to).await;
    assert!(served(&mut a1).await);
    let mut a2 = connect_from("127.0.0.1", to).await;
    assert!(!served(&mut a2).await, "over a per-IP cap of 1");

    e.reload(&caps().set("server.max_connections", 10).to_string(), &vars);
    let mut a3 = connect_from("127.0.0.1", to).await;
    assert!(
        served(&mut a3).await,
        "the raised cap admits a second connection"
    );
    assert!(served(&mut a1).await, "the first connection is untouched");
}
