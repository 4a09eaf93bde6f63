//! What a Laravel app does through portico and php-fpm: sessions with a
//! CSRF form, a large upload, streamed responses, `Status:`, cookies,
//! stderr, body limits.

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use portico::http::body::{empty, full};
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::{php_config, stack, within};

#[tokio::test]
async fn csrf_form_with_a_session_cookie() {
    let Some(s) = stack(|f| php_config(&f.unix_url())).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let r = c.get("/form").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = r
        .header("set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("PHPSESSID="), "{cookie}");
    let page = r.text();
    let token = page
        .split("name=\"_token\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("token in the form")
        .to_string();
    let post = |c: &Client, cookie: Option<&str>, token: &str| {
        let body = format!("_token={token}&name=portico");
        let mut b = c
            .req(Method::POST, "/form")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", body.len().to_string());
        if let Some(ck) = cookie {
            b = b.header("cookie", ck);
        }
        b.body(full(body)).unwrap()
    };
    let ok = post(&c, Some(&cookie), &token);
    let r = c.fetch(ok).await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (200, "csrf ok: portico\n".into())
    );
    let no_session = post(&c, None, &token);
    assert_eq!(c.fetch(no_session).await.status, 419);
    let wrong = post(&c, Some(&cookie), "forged");
    assert_eq!(c.fetch(wrong).await.status, 419);
}

fn multipart(boundary: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         content-type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn a_30_mb_upload_reaches_php_whole() {
    let Some(s) = stack(|f| php_config(&f.unix_url()).set("upstream.max_body", "40MiB")).await
    else {
        return;
    };
    let data: Vec<u8> = (0..30 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let want = hex::encode(Sha256::digest(&data));
    let body = multipart("xYzBoundary", &data);
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let mut c = Client::tls(s.edge.https(), &s.edge.ca(), &[alpn]).await;
        let req = c
            .req(Method::POST, "/upload")
            .header("content-type", "multipart/form-data; boundary=xYzBoundary")
            .header("content-length", body.len().to_string())
            .body(full(Bytes::from(body.clone())))
            .unwrap();
        let r = c.fetch(req).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        assert_eq!(j["sha256"], want);
        assert_eq!(j["size"], data.len());
    }
    // The same upload with no declared length (chunked over HTTP/1.1,
    // no content-length over HTTP/2): spooled, then sent with one.
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let mut c = Client::tls(s.edge.https(), &s.edge.ca(), &[alpn]).await;
        let req = c
            .req(Method::POST, "/upload")
            .header("content-type", "multipart/form-data; boundary=xYzBoundary")
            .body(streamed(body.clone(), 64 * 1024))
            .unwrap();
        let r = c.fetch(req).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        assert_eq!(j["sha256"], want, "{alpn:?}");
        assert_eq!(j["size"], data.len());
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_chunked_bodies_arrive() {
    let Some(s) = stack(|f| php_config(&f.unix_url()).set("upstream.max_body", "1KiB")).await
    else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let big = vec![b'a'; 4096];
    let req = c
        .req(Method::POST, "/body")
        .header("content-length", big.len().to_string())
        .body(full(big.clone()))
        .unwrap();
    assert_eq!(c.fetch(req).await.status, 413);

    // No declared length (chunked): read to its end (bounded) and sent
    // with one.
    let mut c = Client::plain(s.edge.plain()).await;
    let small = b"chunked body".to_vec();
    let req = c
        .req(Method::POST, "/body")
        .body(streamed(small.clone(), 5))
        .unwrap();
    let r = c.fetch(req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["sha256"], hex::encode(Sha256::digest(&small)));
    let mut c = Client::plain(s.edge.plain()).await;
    let req = c.req(Method::POST, "/body").body(streamed(big, 5)).unwrap();
    assert_eq!(c.fetch(req).await.status, 413);
}

/// A body of unknown length (sent chunked over HTTP/1.1).
fn streamed(data: Vec<u8>, chunk: usize) -> portico::http::body::Body {
    let frames = data
        .chunks(chunk)
        .map(|c| {
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::copy_from_slice(c)))
        })
        .collect::<Vec<_>>();
    portico::http::body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
        frames,
    )))
}

#[tokio::test]
async fn a_streamed_response_arrives_as_php_flushes() {
    let Some(s) = stack(|f| php_config(&f.unix_url())).await else {
        return;
    };
    let gate = s.fpm.dir().join("gate");
    let mut c = Client::plain(s.edge.plain()).await;
    let resp = c
        .get_streaming(&format!("/stream?gate={}", gate.display()))
        .await;
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap();
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let mut body = resp.into_body();
    // The first part arrives while PHP is still waiting for the gate.
    let mut got = String::new();
    while !got.contains("part 1") {
        let f = within("first part", body.frame())
            .await
            .expect("a frame")
            .expect("frame ok");
        if let Ok(d) = f.into_data() {
            got.push_str(&String::from_utf8_lossy(&d));
        }
    }
    assert!(!got.contains("part 2"), "{got}");
    std::fs::write(&gate, b"go").unwrap();
    let rest = within("the rest", body.collect()).await.unwrap().to_bytes();
    got.push_str(&String::from_utf8_lossy(&rest));
    assert!(got.ends_with("data: done\n\n"), "{got}");
}

#[tokio::test]
async fn status_header_cookies_and_stderr() {
    crate::logs::capture();
    let Some(s) = stack(|f| php_config(&f.unix_url())).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let r = c.get("/status").await;
    assert_eq!((r.status.as_u16(), r.text()), (201, "created\n".into()));

    let r = c.get("/cookies").await;
    let cookies: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("first=one"));
    assert!(cookies[1].starts_with("second=two") && cookies[1].contains("HttpOnly"));

    let req = c.req(Method::GET, "/stderr").body(empty()).unwrap();
    assert_eq!(c.fetch(req).await.text(), "logged\n");
    crate::poll_until("php's stderr line in portico's log", || async {
        let log = crate::logs::text();
        log.lines()
            .find(|l| l.contains("portico-stderr-marker") && l.contains("/stderr"))
            .map(|_| ())
    })
    .await;
}
