//! The hand-written HTTP/1.1 path (`src/http/h1`), seen from raw sockets on
//! both sides: how it relays each kind of response framing, pipelined
//! requests, the hand-over to hyper in the middle of a connection, errors
//! that keep the connection, and the header timeout between requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::{BASE, base};
use crate::inproc;
use crate::support::client::{Client, tcp};
use crate::support::upstream::refusing_addr;
use crate::support::within;

/// An upstream speaking raw HTTP/1.1 with one scripted answer per path,
/// counting its connections and keeping every request head it read.
struct Scripted {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

/// Reads one head plus a `Content-Length` body, if any.
async fn read_request(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    for _ in 0..1000 {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 4096];
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some((head, body));
        }
        let mut chunk = [0u8; 4096];
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    None
}

async fn start_scripted() -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (accepted.clone(), heads.clone());
    let task = tokio::spawn(async move {
        for _ in 0..100 {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for _ in 0..100 {
                    let Some((head, body)) = read_request(&mut tcp, &mut buf).await else {
                        return;
                    };
                    seen.lock().push(head.clone());
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    let parts: Vec<Vec<u8>> = match path.as_str() {
                        "/chunked" => vec![
                            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec(),
                            b"6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n".to_vec(),
                        ],
                        "/eof" => {
                            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil-close").await;
                            return;
                        }
                        "/hints" => vec![
                            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n".to_vec(),
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                        ],
                        "/split" => vec![
                            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234".to_vec(),
                            b"56789".to_vec(),
                        ],
                        "/hop" => vec![
                            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Private\r\nX-Private: secret\r\n\
                              Keep-Alive: timeout=5\r\nX-App: yes\r\nContent-Length: 2\r\n\r\nok"
                                .to_vec(),
                        ],
                        "/echo" => {
                            let mut a = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                                .into_bytes();
                            a.extend_from_slice(&body);
                            vec![a]
                        }
                        _ => vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()],
                    };
                    for (i, p) in parts.iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                        }
                        if tcp.write_all(p).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Scripted {
        addr,
        accepted,
        heads,
        _task: task,
    }
}

/// Reads from `tcp` until it closes (bounded in time and size).
async fn read_to_close(tcp: &mut TcpStream) -> String {
    let mut all = Vec::new();
    within("read to close", async {
        let mut chunk = [0u8; 8192];
        while all.len() < 1 << 20 {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&all).into_owned()
}

/// Reads until `needle` has been seen `times` times.
async fn read_until(tcp: &mut TcpStream, needle: &str, times: usize) -> String {
    let mut all = Vec::new();
    within("read until", async {
        let mut chunk = [0u8; 8192];
        while String::from_utf8_lossy(&all).matches(needle).count() < times {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn every_body_framing_is_relayed_and_the_connection_kept() {
    let up = start_scripted().await;
    let e = inproc::start(BASE, &[("UP", format!("http://{}", up.addr))]).await;
    let mut c = Client::plain(e.plain()).await;
    let r = c.get("/chunked").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "hello world"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let r = c.get("/split").await;
    assert_eq!(r.text(), "0123456789");
    let r = c.get("/hints").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ok"));
    let r = c.get("/hop").await;
    assert_eq!(r.header("x-app"), Some("yes"));
    for gone in ["x-private", "keep-alive", "connection"] {
        assert_eq!(r.header(gone), None, "{gone} must not reach the client");
    }
    assert!(r.header("date").is_some(), "a date is always sent");
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        1,
        "each of those ended cleanly, so one upstream connection served all"
    );
}

#[tokio::test]
async fn a_body_delimited_by_close_is_rechunked_and_the_client_kept() {
    let up = start_scripted().await;
    let e = inproc::start(BASE, &[("UP", format!("http://{}", up.addr))]).await;
    let mut s = tcp(e.plain()).await;
    s.write_all(b"GET /eof HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .expect("write");
    let got = read_until(&mut s, "\r\n0\r\n\r\n", 1).await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    let lower = got.to_ascii_lowercase();
    assert!(
        lower.contains("\r\ntransfer-encoding: chunked\r\n")
            && !lower.contains("connection: close"),
        "{got}"
    );
    assert!(
        got.ends_with("\r\n\r\nb\r\nuntil-close\r\n0\r\n\r\n"),
        "{got}"
    );
    // The client's connection is still good; the upstream's was not reused.
    s.write_all(b"GET /a HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let next = read_to_close(&mut s).await;
    assert!(
        next.starts_with("HTTP/1.1 200 OK") && next.ends_with("ok"),
        "{next}"
    );
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let up = start_scripted().await;
    let e = inproc::start(BASE, &[("UP", format!("http://{}", up.addr))]).await;
    let mut s = tcp(e.plain()).await;
    s.write_all(
        b"GET /split HTTP/1.1\r\nHost: a.test\r\n\r\n\
          GET /chunked HTTP/1.1\r\nHost: a.test\r\n\r\n\
          GET /a HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let got = read_to_close(&mut s).await;
    let split = got.find("0123456789").expect("first answer");
    let chunked = got
        .find("5\r\nhello\r\n6\r\n world\r\n0\r\n")
        .expect("second answer");
    let last = got.rfind("\r\n\r\nok").expect("third answer");
    assert!(split < chunked && chunked < last, "{got}");
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 3, "{got}");
    let heads = up.heads.lock().clone();
    let paths: Vec<_> = heads
        .iter()
        .map(|h| h.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(paths, ["/split", "/chunked", "/a"]);
}

#[tokio::test]
async fn a_small_body_is_relayed_here_and_a_large_one_hands_over_to_hyper() {
    let up = start_scripted().await;
    let e = inproc::start(BASE, &[("UP", format!("http://{}", up.addr))]).await;
    let mut s = tcp(e.plain()).await;
    s.write_all(b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .expect("write");
    let first = read_until(&mut s, "\r\n\r\nok", 1).await;
    assert!(first.starts_with("HTTP/1.1 200 OK"), "{first}");
    // A small body in two writes: read whole, then sent on the same
    // upstream connection as the GET.
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 11\r\n\r\nhello")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b" world").await.expect("write");
    let second = read_until(&mut s, "hello world", 1).await;
    assert!(second.starts_with("HTTP/1.1 200 OK"), "{second}");
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection"
    );
    let head = up.heads.lock().last().cloned().expect("a head");
    assert!(
        head.starts_with("POST /echo HTTP/1.1\r\n") && head.contains("Content-Length: 11"),
        "{head}"
    );
    // Over 64 KiB: hyper takes the connection over and streams the body
    // on a connection of its own.
    let big = format!("{}tail!", "z".repeat(70_000));
    let req = format!(
        "POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let third = read_until(&mut s, "tail!", 1).await;
    assert!(
        third.starts_with("HTTP/1.1 200 OK") && third.contains(&big),
        "{}",
        &third[..third.len().min(200)]
    );
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        2,
        "hyper's own connection"
    );
    s.write_all(b"GET /a HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let fourth = read_to_close(&mut s).await;
    assert!(
        fourth.starts_with("HTTP/1.1 200 OK") && fourth.ends_with("ok"),
        "{fourth}"
    );
    // And an HTTP/1.0 client is served from its first request.
    let mut s = tcp(e.plain()).await;
    s.write_all(b"GET /a HTTP/1.0\r\nHost: a.test\r\n\r\n")
        .await
        .expect("write");
    let old = read_to_close(&mut s).await;
    assert!(
        old.starts_with("HTTP/1.0 200 OK") && old.ends_with("ok"),
        "{old}"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_gets_a_502_and_the_connection_stays() {
    let dead = refusing_addr().await;
    let e = inproc::start(BASE, &[("UP", format!("http://{dead}"))]).await;
    let mut s = tcp(e.plain()).await;
    for _ in 0..2 {
        s.write_all(b"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n")
            .await
            .expect("write");
        let got = read_until(&mut s, "\n", 3).await;
        assert!(got.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{got}");
        assert!(
            !got.to_ascii_lowercase().contains("connection: close"),
            "{got}"
        );
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_header_timeout() {
    let up = start_scripted().await;
    let toml = base().set("server.header_timeout", "300ms").to_string();
    let e = inproc::start(&toml, &[("UP", format!("http://{}", up.addr))]).await;
    let mut s = tcp(e.plain()).await;
    s.write_all(b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .expect("write");
    let got = read_to_close(&mut s).await;
    assert!(
        got.starts_with("HTTP/1.1 200 OK") && got.ends_with("ok"),
        "{got}"
    );
}
