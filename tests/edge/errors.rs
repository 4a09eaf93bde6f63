//! The errors portico answers itself: 502 when the upstream refuses (naming
//! it; HTML for browsers), 504 when it is too slow, 413 over the body limit.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use portico::http::body::{BoxError, full};

use crate::config::{ConfigText, base, plain};
use crate::inproc;
use crate::support::client::Client;
use crate::support::upstream;
use crate::support::upstream::tokio_stream_from;

/// `c` with the upstream limits these tests hit.
fn limited(c: ConfigText) -> ConfigText {
    c.set("upstream.response_timeout", "300ms")
        .set("upstream.max_body", "1KiB")
}

/// The plain listener only, TLS off, with the limits.
fn toml() -> String {
    limited(plain()).to_string()
}

#[tokio::test]
async fn bad_gateway_names_the_upstream() {
    let dead = format!("http://{}", upstream::refusing_addr().await);
    let e = inproc::start(&toml(), &[("UP", dead.clone())]).await;
    let mut c = Client::plain(e.plain()).await;

    let r = c.get("/").await;
    assert_eq!(r.status, 502);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain")
    );
    assert!(r.text().contains(&dead), "{}", r.text());

    let req = c
        .req(Method::GET, "/dashboard")
        .header("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
        .body(portico::http::body::empty())
        .unwrap();
    let r = c.fetch(req).await;
    assert_eq!(r.status, 502);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    let page = r.text();
    assert!(page.contains("502 Bad Gateway"), "{page}");
    assert!(page.contains(&dead), "{page}");
    assert!(page.contains("php artisan serve"), "{page}");
}

#[tokio::test]
async fn bad_gateway_when_the_upstream_hangs_up() {
    let (addr, _task) = upstream::start_hangup().await;
    let url = format!("http://{addr}");
    let e = inproc::start(&toml(), &[("UP", url.clone())]).await;
    let mut c = Client::plain(e.plain()).await;
    let r = c.get("/crash").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains(&url), "{}", r.text());
    // portico's client connection survives the upstream's failure.
    assert_eq!(c.get("/crash-again").await.status, 502);
}

#[tokio::test]
async fn gateway_timeout_on_a_slow_upstream() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let t = Instant::now();
    let r = c.get("/slow?ms=3000").await;
    let took = t.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.text().contains(&up.url()), "{}", r.text());
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(2500),
        "504 after {took:?}, want about 300 ms"
    );
    // A fast request on the same route is fine.
    assert_eq!(c.get("/slow?ms=10").await.status, 200);
}

#[tokio::test]
async fn payload_too_large_with_content_length() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let req = c
        .req(Method::POST, "/cl/count")
        .header("content-length", "4096")
        .body(full(vec![b'x'; 4096]))
        .unwrap();
    let r = c.fetch(req).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("1024"), "{}", r.text());
    assert!(
        up.state.last_seen("/cl/count").is_none(),
        "refused before the upstream"
    );

    // At the limit is fine.
    let mut c = Client::plain(e.plain()).await;
    let req = c
        .req(Method::POST, "/ok/count")
        .body(full(vec![b'x'; 1024]))
        .unwrap();
    let r = c.fetch(req).await;
    assert_eq!((r.status.as_u16(), r.text()), (200, "1024".to_string()));
}

#[tokio::test]
async fn payload_too_large_chunked() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(8);
    for _ in 0..4 {
        tx.send(Ok(Frame::data(Bytes::from(vec![b'y'; 1024]))))
            .await
            .unwrap();
    }
    drop(tx);
    let body = StreamBody::new(tokio_stream_from(rx)).boxed();
    let req = c.req(Method::POST, "/chunked/count").body(body).unwrap();
    let r = c.fetch(req).await;
    assert_eq!(r.status, 413, "{}", r.text());
}

#[tokio::test]
async fn payload_too_large_over_h2() {
    let up = upstream::start().await;
    let toml = limited(base().without("server.plain")).to_string();
    let e = inproc::start(&toml, &[("UP", up.url())]).await;
    let mut c = Client::tls(e.https(), &e.ca(), &[b"h2"]).await;
    // Declared length.
    let req = c
        .req(Method::POST, "/h2cl/count")
        .header("content-length", "2048")
        .body(full(vec![b'x'; 2048]))
        .unwrap();
    assert_eq!(c.fetch(req).await.status, 413);
    // Streamed without a length.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(8);
    for _ in 0..3 {
        tx.send(Ok(Frame::data(Bytes::from(vec![b'y'; 1000]))))
            .await
            .unwrap();
    }
    drop(tx);
    let body = StreamBody::new(tokio_stream_from(rx)).boxed();
    let req = c.req(Method::POST, "/h2chunked/count").body(body).unwrap();
    assert_eq!(c.fetch(req).await.status, 413);
    // The connection is still usable.
    assert_eq!(c.get("/after").await.status, 200);
}

#[tokio::test]
async fn builtin_hubs_never_reach_the_upstream() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    // The Pusher hub answers itself: a plain GET on the WebSocket path is
    // 426, an unknown app on the REST API is 404, both JSON.
    for (path, status) in [("/app/some-key?protocol=7", 426), ("/apps/1/events", 404)] {
        let r = c.get(path).await;
        assert_eq!(r.status, status, "{path}");
        assert!(r.text().contains("\"error\""), "{path}: {}", r.text());
    }
    // Without a [supabase] section the Supabase front says how to enable it.
    let r = c.get("/realtime/v1/websocket").await;
    assert_eq!(r.status, 503);
    assert!(
        r.text().contains("Supabase Realtime is not configured"),
        "{}",
        r.text()
    );
    assert!(up.state.seen.lock().is_empty());
}

/// An upstream whose accept queue is full drops our SYNs, so the connect
/// hangs: the connect timeout answers 504.
#[tokio::test]
async fn gateway_timeout_on_connect() {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    // Fill the (never accepted) queue; later SYNs are dropped.
    let mut fillers = Vec::new();
    for _ in 0..2 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let url = format!("http://{addr}");
    let toml = limited(plain())
        .without("upstream.response_timeout")
        .set("upstream.connect_timeout", "300ms")
        .to_string();
    let e = inproc::start(&toml, &[("UP", url.clone())]).await;
    let mut c = Client::plain(e.plain()).await;
    let t = Instant::now();
    let r = c.get("/").await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.text().contains("timed out connecting"), "{}", r.text());
    assert!(r.text().contains(&url), "{}", r.text());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    drop(sock);
}
