//! Malformed and hostile HTTP/1.1 the edge must answer itself, with nothing
//! (or, for a body that breaks mid-way, nothing of the broken chunk)
//! reaching the upstream: both framings, broken chunked bodies, an
//! over-long target, no Host, CONNECT, a garbage TLS record. Each case runs
//! on a fresh connection (the hand-written path sees it first and hands it
//! over) and on a connection hyper already serves, and the two answers must
//! be the same (the differential check).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::BASE;
use crate::inproc;
use crate::support::client::tcp;
use crate::support::within;

/// An upstream that keeps every byte it is sent, answers a request once
/// its body is complete (`Content-Length`, or a chunked body's last
/// chunk), and answers at once when `early` (before reading any body).
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<u8>>>,
    closed: Arc<Mutex<usize>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start(early: bool) -> Recorder {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(0));
        let (s, c) = (seen.clone(), closed.clone());
        let task = tokio::spawn(async move {
            for _ in 0..100 {
                let Ok((mut tcp, _)) = l.accept().await else {
                    return;
                };
                let (s, c) = (s.clone(), c.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    for _ in 0..1000 {
                        let n = match tokio::time::timeout(
                            Duration::from_secs(5),
                            tcp.read(&mut chunk),
                        )
                        .await
                        {
                            Ok(Ok(n)) => n,
                            _ => 0,
                        };
                        if n == 0 {
                            *c.lock() += 1;
                            return;
                        }
                        s.lock().extend_from_slice(&chunk[..n]);
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let body = &buf[end + 4..];
                        let complete = early
                            || if head.contains("transfer-encoding: chunked") {
                                body.ends_with(b"0\r\n\r\n")
                            } else {
                                let len = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length:"))
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                                    .unwrap_or(0);
                                body.len() >= len
                            };
                        if complete {
                            buf.clear();
                            let _ = tcp
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                                .await;
                        }
                    }
                });
            }
        });
        Recorder {
            addr,
            seen,
            closed,
            _task: task,
        }
    }

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock()).into_owned()
    }
}

/// What the client got back: the status of the first response, and
/// whether the connection was closed after it.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    closed: bool,
}

/// A request that makes the hand-written path hand the connection to
/// hyper (a chunked body), answered 200 by the recorder.
const TO_HYPER: &[u8] = b"POST /warm HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";

/// Reads one response head; returns its status and the rest read so far.
async fn read_status(c: &mut TcpStream, buf: &mut Vec<u8>) -> Option<u16> {
    let mut chunk = [0u8; 4096];
    for _ in 0..100 {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status = head.split(' ').nth(1)?.parse().ok();
            let len = head
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            // Wait for the whole body, then drop the response from `buf`.
            while buf.len() < end + 4 + len {
                let n = c.read(&mut chunk).await.ok()?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..(end + 4 + len).min(buf.len()));
            return status;
        }
        let n = c.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    None
}

/// Sends `raw` (after [`TO_HYPER`] when `on_hyper`), returns the answer.
async fn send(edge: SocketAddr, raw: &[u8], on_hyper: bool) -> Answer {
    let mut c = tcp(edge).await;
    let mut buf = Vec::new();
    if on_hyper {
        c.write_all(TO_HYPER).await.unwrap();
        let st = within("the warm-up answer", read_status(&mut c, &mut buf)).await;
        assert_eq!(st, Some(200), "warm-up request");
    }
    c.write_all(raw).await.unwrap();
    let status = within("the answer", read_status(&mut c, &mut buf))
        .await
        .unwrap_or(0);
    // Closed: EOF (or a reset) within a second.
    let mut rest = [0u8; 256];
    let closed = matches!(
        tokio::time::timeout(Duration::from_secs(1), c.read(&mut rest)).await,
        Ok(Ok(0)) | Ok(Err(_))
    );
    Answer { status, closed }
}

async fn start_edge(up: &Recorder) -> inproc::Inproc {
    inproc::start(BASE, &[("UP", format!("http://{}", up.addr))]).await
}

#[tokio::test]
async fn malformed_heads_are_answered_by_the_edge_and_never_forwarded() {
    let up = Recorder::start(false).await;
    let e = start_edge(&up).await;
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: a.test\r\n\r\n",
        "x".repeat(20_000)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "Content-Length then Transfer-Encoding",
            b"POST /cl-te HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "Transfer-Encoding then Content-Length",
            b"POST /te-cl HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "Transfer-Encoding with a tab",
            b"POST /te-tab HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        ("a 20 KB target", long.into_bytes(), 414),
        (
            "HTTP/1.1 without Host",
            b"GET /no-host HTTP/1.1\r\nAccept: */*\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two Host headers",
            b"GET /two-hosts HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n".to_vec(),
            400,
        ),
        (
            "CONNECT",
            b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n".to_vec(),
            405,
        ),
    ];
    for (what, raw, status) in &cases {
        for _round in 0..3 {
            let fast = send(e.plain(), raw, false).await;
            let slow = send(e.plain(), raw, true).await;
            assert_eq!(fast.status, *status, "{what}: fresh connection");
            assert!(fast.closed, "{what}: connection closed after the answer");
            assert_eq!(fast, slow, "{what}: the same answer on hyper's path");
        }
    }
    let seen = up.seen();
    for marker in [
        "/cl-te",
        "/te-cl",
        "/te-tab",
        "xxxxxxxx",
        "/no-host",
        "/two-hosts",
        "CONNECT",
    ] {
        assert!(
            !seen.contains(marker),
            "{marker} reached the upstream:\n{seen}"
        );
    }
}

#[tokio::test]
async fn broken_chunked_bodies_get_400_and_their_bad_chunk_never_goes_upstream() {
    let up = Recorder::start(false).await;
    let e = start_edge(&up).await;
    let bodies: [(&str, &str); 6] = [
        ("bad hex size", "zz\r\nZZZZ\r\n0\r\n\r\n"),
        (
            "size overflow",
            "fffffffffffffffffffff\r\nZZZZ\r\n0\r\n\r\n",
        ),
        ("negative size", "-4\r\nZZZZ\r\n0\r\n\r\n"),
        ("two sizes", "4 4\r\nZZZZ\r\n0\r\n\r\n"),
        ("no CRLF after the data", "4\r\nZZZZ0\r\n\r\n"),
        ("data longer than its size", "4\r\nZZZZZZZZ\r\n0\r\n\r\n"),
    ];
    for (what, bad) in bodies {
        let raw = format!(
            "POST /chunked HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n{bad}"
        );
        for _round in 0..3 {
            let fast = send(e.plain(), raw.as_bytes(), false).await;
            let slow = send(e.plain(), raw.as_bytes(), true).await;
            assert_eq!(fast.status, 400, "{what}: fresh connection");
            assert!(fast.closed, "{what}: connection closed after the answer");
            assert_eq!(fast, slow, "{what}: the same answer on hyper's path");
        }
    }
    let seen = up.seen();
    assert!(
        !seen.contains('Z'),
        "a byte of a broken chunk reached the upstream:\n{seen}"
    );
    // Each broken request's upstream connection was dropped, never pooled.
    assert!(
        *up.closed.lock() >= 1,
        "the upstream connections were closed"
    );
    // And the edge still serves the next request on a fresh connection.
    let ok = send(
        e.plain(),
        b"GET /after HTTP/1.1\r\nHost: a.test\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn a_body_that_breaks_after_the_upstream_answered_closes_both_sides() {
    let up = Recorder::start(true).await;
    let e = start_edge(&up).await;
    let mut c = tcp(e.plain()).await;
    c.write_all(
        b"POST /early HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let status = within("the early answer", read_status(&mut c, &mut buf)).await;
    assert_eq!(status, Some(200));
    c.write_all(b"zz\r\nZZ\r\n0\r\n\r\n").await.unwrap();
    let mut rest = [0u8; 256];
    let closed = matches!(
        tokio::time::timeout(Duration::from_secs(2), c.read(&mut rest)).await,
        Ok(Ok(0)) | Ok(Err(_))
    );
    assert!(closed, "the client connection closes");
    crate::support::poll_until("the upstream connection closed", || async {
        (*up.closed.lock() >= 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_garbage_tls_record_is_closed_at_once() {
    let up = Recorder::start(false).await;
    let e = start_edge(&up).await;
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5][..],
        &[0xff; 64][..],
    ] {
        let mut c = tcp(e.https()).await;
        c.write_all(garbage).await.unwrap();
        let mut rest = [0u8; 256];
        let started = tokio::time::Instant::now();
        let mut ended = false;
        for _ in 0..10 {
            match tokio::time::timeout(Duration::from_secs(2), c.read(&mut rest)).await {
                // An alert record (0x15) or EOF/reset: both end it.
                Ok(Ok(0)) | Ok(Err(_)) => {
                    ended = true;
                    break;
                }
                Ok(Ok(_)) => continue,
                Err(_) => break,
            }
        }
        assert!(ended, "{garbage:?}: connection left open");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{garbage:?}: closed late"
        );
    }
}

#[tokio::test]
async fn the_request_target_limit_is_configurable() {
    let up = Recorder::start(false).await;
    let toml = crate::config::base()
        .set("server.max_request_target", "1KiB")
        .to_string();
    let e = inproc::start(&toml, &[("UP", format!("http://{}", up.addr))]).await;
    let get = |n: usize| format!("GET /{} HTTP/1.1\r\nHost: a.test\r\n\r\n", "t".repeat(n));
    for on_hyper in [false, true] {
        assert_eq!(
            send(e.plain(), get(2000).as_bytes(), on_hyper).await.status,
            414
        );
        let ok = send(e.plain(), get(1000).as_bytes(), on_hyper).await;
        assert_eq!((ok.status, ok.closed), (200, false), "within the limit");
    }
}

/// The HTTP/2 equivalents, over TLS with ALPN h2: a `content-length` that
/// disagrees with the DATA received is a stream error; `CONNECT` without
/// `:protocol` is 405; a request with neither `:authority` nor `host` is
/// 400. Nothing reaches the upstream.
#[tokio::test]
async fn http2_equivalents() {
    use bytes::Bytes;
    let up = Recorder::start(false).await;
    let e = start_edge(&up).await;
    let io = crate::support::client::tls(e.https(), &e.ca(), &[b"h2"]).await;
    let (mut h2, conn) = h2::client::handshake(io).await.expect("h2 handshake");
    tokio::spawn(conn);

    // DATA shorter than the declared length.
    let req = http::Request::post("https://a.test/h2-short")
        .header("content-length", "10")
        .body(())
        .unwrap();
    let (resp, mut body) = h2.send_request(req, false).expect("send");
    body.send_data(Bytes::from_static(b"abc"), true).unwrap();
    let got = within("the short-body answer", resp).await;
    match got {
        Err(err) => assert!(err.is_reset() || err.is_go_away(), "{err}"),
        // hyper may answer before h2's reset reaches the client.
        Ok(r) => assert_eq!(r.status(), 400, "a short body must not be served"),
    }

    let (mut h2, conn) = {
        let io = crate::support::client::tls(e.https(), &e.ca(), &[b"h2"]).await;
        h2::client::handshake(io).await.expect("h2 handshake")
    };
    tokio::spawn(conn);
    let connect = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri("127.0.0.1:22")
        .body(())
        .unwrap();
    let (resp, _) = h2.send_request(connect, true).expect("send CONNECT");
    let resp = within("the CONNECT answer", resp)
        .await
        .expect("CONNECT answered");
    assert_eq!(resp.status(), 405);

    let no_authority = http::Request::get("/h2-no-authority").body(()).unwrap();
    match h2.send_request(no_authority, true) {
        // The h2 client itself may refuse to send it.
        Err(_) => {}
        Ok((resp, _)) => {
            let resp = within("the no-authority answer", resp).await;
            if let Ok(r) = resp {
                assert_eq!(r.status(), 400);
            }
        }
    }
    let seen = up.seen();
    for marker in ["/h2-no-authority", "CONNECT"] {
        assert!(
            !seen.contains(marker),
            "{marker} reached the upstream:\n{seen}"
        );
    }
}
