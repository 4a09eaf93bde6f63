//! The upstream keep-alive pool, seen from a raw upstream that counts its
//! connections: sequential requests share one connection (also after an
//! empty body and a HEAD), concurrent ones open no more than they need, a
//! connection the upstream closed while idle is replaced without an error,
//! a GET lost on a connection closed under it is repeated on a new one,
//! and a response the client abandons does not poison the next request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Method;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::BASE;
use crate::inproc;
use crate::support::client::Client;
use crate::support::within;

/// How the raw upstream treats a connection after each answer.
#[derive(Clone, Copy)]
enum AfterAnswer {
    KeepOpen,
    /// Close the socket (without `Connection: close`), as an app server
    /// whose keep-alive timeout expired does.
    Close,
    /// Answer the first request, then read the second and close without an
    /// answer: the keep-alive timeout firing just as a request arrives.
    LoseSecond,
}

struct RawUpstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

/// Reads one request head (and no body: the tests send none).
async fn read_head(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Some(head);
        }
        let mut chunk = [0u8; 4096];
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Answers `/empty` with 204, `/big` with 1 MiB, anything else with `ok`
/// (HEAD gets the length and no body).
async fn start_raw(after: AfterAnswer) -> RawUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        for _ in 0..200 {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for n in 0..1000 {
                    let Some(head) = read_head(&mut tcp, &mut buf).await else {
                        return;
                    };
                    if n == 1 && matches!(after, AfterAnswer::LoseSecond) {
                        return;
                    }
                    let head_req = head.starts_with("HEAD ");
                    let answer: Vec<u8> = if head.contains(" /empty ") {
                        b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()
                    } else if head.contains(" /big ") {
                        let mut a = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".to_vec();
                        a.resize(a.len() + 1_048_576, b'z');
                        a
                    } else if head_req {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n".to_vec()
                    } else {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
                    };
                    if tcp.write_all(&answer).await.is_err() {
                        return;
                    }
                    if let AfterAnswer::Close = after {
                        return;
                    }
                }
            });
        }
    });
    RawUpstream {
        addr,
        accepted,
        _task: task,
    }
}

async fn get_ok(c: &mut Client, path: &str) {
    let r = c.get(path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    assert_eq!(r.text(), "ok");
}

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let up = start_raw(AfterAnswer::KeepOpen).await;
    let e = inproc::start(BASE, &[("UP", format!("http://{}", up.addr))]).await;
    let mut c = Client::plain(e.plain()).await;
    for _ in 0..10 {
        get_ok(&mut c, "/a").await;
    }
    let r = c.get("/empty").await;
    assert_eq!(r.status, 204);
    let r = c
        .fetch(
            c.req(Method::HEAD, "/a")
                .body(portico::http::body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("2"));
    for _ in 0..10 {
        get_ok(&mut c, "/a").await;
    }
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        1,
        "one keep-alive connection upstream"
    );
}

#[tokio::test]
async fn concurrent_clients_open_no_more_connections_than_they_need() {
    let up = start_raw(AfterAnswer::KeepOpen).await;
    let e = inproc::start(BASE, &[("UP", format!("http://{}", up.addr))]).await;
    let plain = e.plain();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                let mut c = Client::plain(plain).await;
                for _ in 0..25 {
                    get_ok(&mut c, "/a").await;
                }
            })
        })
        .collect();
    for t in tasks {
        within("client task", t).await.expect("task");
    }
    let n = up.accepted.load(Ordering::SeqCst);
    assert!(
        (1..=4).contains(&n),
        "4 concurrent clients used {n} upstream connections"
    );
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_replaced_without_an_error() {
    let up = start_raw(AfterAnswer::Close).await;
    let e = inproc::start(BASE, &[("UP", format!("http://{}", up.addr))]).await;
    let mut c = Client::plain(e.plain()).await;
    for i in 0..10 {
        get_ok(&mut c, "/a").await;
        // Every other request goes out at once, racing the upstream's close
        // (the retry path); the others after the close has arrived.
        if i % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn a_request_lost_on_an_idle_connection_is_repeated() {
    let up = start_raw(AfterAnswer::LoseSecond).await;
    let e = inproc::start(BASE, &[("UP", format!("http://{}", up.addr))]).await;
    let mut c = Client::plain(e.plain()).await;
    get_ok(&mut c, "/a").await;
    // Idle long enough that portico keeps a copy for a repeat.
    tokio::time::sleep(Duration::from_millis(700)).await;
    get_ok(&mut c, "/a").await;
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_abandoned_response_does_not_poison_the_next_request() {
    let up = start_raw(AfterAnswer::KeepOpen).await;
    let e = inproc::start(BASE, &[("UP", format!("http://{}", up.addr))]).await;
    {
        let mut c = Client::plain(e.plain()).await;
        let resp = c.get_streaming("/big").await;
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let first = within("first chunk", body.frame()).await;
        assert!(first.is_some());
        // Client gone with most of the megabyte unread.
    }
    let mut c = Client::plain(e.plain()).await;
    for _ in 0..5 {
        get_ok(&mut c, "/a").await;
    }
    let n = up.accepted.load(Ordering::SeqCst);
    assert!(
        n <= 2,
        "the abandoned connection is not reused, the next one is: {n}"
    );
}
