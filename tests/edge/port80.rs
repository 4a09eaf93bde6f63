//! The port-80 listener: 308 to https keeping path and query, the ACME
//! HTTP-01 path answered by portico itself (404 when no challenge is
//! pending), and the health endpoint.

use http::Method;
use portico::http::body::empty;

use crate::config::{base, plain};
use crate::inproc;
use crate::support::client::Client;
use crate::support::upstream;

/// The base config plus the port-80 listener.
fn toml() -> String {
    base().set("server.http", "${HTTP}").to_string()
}

#[tokio::test]
async fn redirects_with_308_keeping_path_and_query() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.http()).await;
    let https = e.https().port();
    for (host, path, want) in [
        (
            "localhost",
            "/a/b?x=1&y=two",
            format!("https://localhost:{https}/a/b?x=1&y=two"),
        ),
        ("app.test:80", "/", format!("https://app.test:{https}/")),
        (
            "Example.COM",
            "/login?next=%2Fhome",
            format!("https://example.com:{https}/login?next=%2Fhome"),
        ),
    ] {
        let req = Client::raw_req(Method::POST, path, host)
            .body(empty())
            .unwrap();
        let r = c.fetch(req).await;
        assert_eq!(r.status, 308, "{path}");
        assert_eq!(r.header("location"), Some(want.as_str()), "{path}");
    }
    assert!(
        up.state.seen.lock().is_empty(),
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn acme_challenge_path_is_404_on_port_80() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.http()).await;
    let r = c.get("/.well-known/acme-challenge/x").await;
    assert_eq!(r.status, 404);
    assert!(r.header("location").is_none());
    // On the https listener the same path is the app's (no special case).
    let mut c = Client::tls(e.https(), &e.ca(), &[b"h2"]).await;
    assert_eq!(c.get("/.well-known/acme-challenge/x").await.status, 200);
}

#[tokio::test]
async fn health_endpoint_on_every_listener() {
    let dead = format!("http://{}", upstream::refusing_addr().await);
    let e = inproc::start(&toml(), &[("UP", dead)]).await;
    // Answered by portico itself: no upstream needed, no redirect on port 80.
    for mut c in [
        Client::plain(e.http()).await,
        Client::plain(e.plain()).await,
        Client::tls(e.https(), &e.ca(), &[b"h2"]).await,
    ] {
        let r = c.get("/.portico/up").await;
        assert_eq!((r.status.as_u16(), r.text()), (200, "ok\n".to_string()));
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
}

#[tokio::test]
async fn without_https_port_80_serves_the_app() {
    let up = upstream::start().await;
    let toml = plain()
        .without("server.plain")
        .set("server.http", "${HTTP}")
        .to_string();
    let e = inproc::start(&toml, &[("UP", up.url())]).await;
    let mut c = Client::plain(e.http()).await;
    let r = c.get("/page?x=1").await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["uri"], "/page?x=1");
    assert_eq!(j["headers"]["x-forwarded-proto"][0], "http");
}
