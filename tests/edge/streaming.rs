//! Bodies are streamed, not buffered: an SSE response's first event reaches
//! the client while the upstream is still holding the stream open, and a
//! request body reaches the upstream while the client is still sending.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use portico::http::body::BoxError;

use crate::config::BASE;
use crate::inproc;
use crate::support::client::Client;
use crate::support::upstream::tokio_stream_from;
use crate::support::{upstream, within};

async fn first_sse_event_arrives_before_the_end(mut c: Client, up: &upstream::Upstream) {
    let resp = c.get_streaming("/events/sse").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut got = Vec::new();
    // The upstream holds the stream open until released: the first event
    // must arrive on its own.
    while !got.ends_with(b"data: first\n\n") {
        let frame = tokio::time::timeout(Duration::from_secs(2), body.frame())
            .await
            .expect("first SSE event within 2 s, while the upstream is still open")
            .expect("stream open")
            .expect("frame");
        if let Some(d) = frame.data_ref() {
            got.extend_from_slice(d);
        }
    }
    assert_eq!(got, b"data: first\n\n");
    up.state.sse_release.notify_one();
    let rest = within("rest of the SSE stream", body.collect())
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&rest[..], b"data: last\n\n");
}

#[tokio::test]
async fn sse_first_chunk_before_upstream_finishes_h1() {
    let up = upstream::start().await;
    let e = inproc::start(BASE, &[("UP", up.url())]).await;
    first_sse_event_arrives_before_the_end(Client::plain(e.plain()).await, &up).await;
}

#[tokio::test]
async fn sse_first_chunk_before_upstream_finishes_h2() {
    let up = upstream::start().await;
    let e = inproc::start(BASE, &[("UP", up.url())]).await;
    let c = Client::tls(e.https(), &e.ca(), &[b"h2"]).await;
    first_sse_event_arrives_before_the_end(c, &up).await;
}

/// 16 MiB in 64 KiB chunks; the rest is only sent once the upstream has
/// seen the first chunk, which would deadlock if portico buffered bodies.
#[tokio::test]
async fn large_request_body_streams_up() {
    const CHUNK: usize = 64 << 10;
    const CHUNKS: usize = 256;
    let up = upstream::start().await;
    let e = inproc::start(BASE, &[("UP", up.url())]).await;
    for mut c in [
        Client::plain(e.plain()).await,
        Client::tls(e.https(), &e.ca(), &[b"h2"]).await,
    ] {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
        let body = StreamBody::new(tokio_stream_from(rx)).boxed();
        let state = up.state.clone();
        let sender = tokio::spawn(async move {
            let chunk = Bytes::from(vec![b'x'; CHUNK]);
            tx.send(Ok(Frame::data(chunk.clone()))).await.expect("send");
            within(
                "upstream sees the first chunk",
                state.body_started.notified(),
            )
            .await;
            for _ in 1..CHUNKS {
                tx.send(Ok(Frame::data(chunk.clone()))).await.expect("send");
            }
        });
        let req = c.req(Method::POST, "/upload/count").body(body).unwrap();
        let r = c.fetch(req).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), (CHUNK * CHUNKS).to_string());
        sender.await.expect("sender");
    }
}

#[tokio::test]
async fn large_response_body_streams_down() {
    const SIZE: usize = 16 << 20;
    let up = upstream::start().await;
    let e = inproc::start(BASE, &[("UP", up.url())]).await;
    for mut c in [
        Client::plain(e.plain()).await,
        Client::tls(e.https(), &e.ca(), &[b"h2"]).await,
    ] {
        let r = c.get(&format!("/download/big?bytes={SIZE}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), SIZE);
        assert!(r.body.iter().all(|b| *b == b'z'));
    }
}
