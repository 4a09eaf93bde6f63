//! HTTP/1.1 and HTTP/2 over TLS with the dev CA trusted by the client, and
//! HTTP/1.1 on the plain listener.

use http::Version;
use rustls::ProtocolVersion;

use crate::config::{BASE, base};
use crate::inproc;
use crate::support::client::{self, Client};
use crate::support::upstream;

#[tokio::test]
async fn h2_over_tls_with_dev_ca() {
    let up = upstream::start().await;
    let e = inproc::start(BASE, &[("UP", up.url())]).await;
    let stream = client::tls(e.https(), &e.ca(), &[b"h2", b"http/1.1"]).await;
    let conn = stream.get_ref().1;
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    drop(stream);

    let mut c = Client::tls(e.https(), &e.ca(), &[b"h2", b"http/1.1"]).await;
    for i in 0..3 {
        let r = c.get(&format!("/hello/{i}?a=b")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.version, Version::HTTP_2);
        let j = r.json();
        assert_eq!(j["uri"], format!("/hello/{i}?a=b"));
        // portico speaks HTTP/1.1 to the upstream, with the client's authority as Host.
        assert_eq!(j["version"], "HTTP/1.1");
        assert_eq!(
            j["headers"]["host"][0],
            format!("localhost:{}", e.https().port())
        );
        assert_eq!(j["headers"]["x-forwarded-proto"][0], "https");
    }
}

#[tokio::test]
async fn h1_over_tls_with_dev_ca() {
    let up = upstream::start().await;
    let e = inproc::start(BASE, &[("UP", up.url())]).await;
    // With ALPN http/1.1 and with no ALPN at all.
    for alpn in [&[&b"http/1.1"[..]][..], &[][..]] {
        let mut c = Client::tls(e.https(), &e.ca(), alpn).await;
        for _ in 0..2 {
            let r = c.get("/h1").await;
            assert_eq!(r.status, 200);
            assert_eq!(r.version, Version::HTTP_11);
            assert_eq!(r.json()["headers"]["x-forwarded-proto"][0], "https");
        }
    }
}

#[tokio::test]
async fn http2_off_negotiates_http11() {
    let up = upstream::start().await;
    let toml = base().set("server.http2", false).to_string();
    let e = inproc::start(&toml, &[("UP", up.url())]).await;
    let stream = client::tls(e.https(), &e.ca(), &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn plain_listener_h1() {
    let up = upstream::start().await;
    let e = inproc::start(BASE, &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let r = c.get("/plain").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.version, Version::HTTP_11);
    let j = r.json();
    assert_eq!(j["uri"], "/plain");
    assert_eq!(j["headers"]["x-forwarded-proto"][0], "http");
}
