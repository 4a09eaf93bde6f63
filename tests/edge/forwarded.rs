//! What the upstream sees: X-Forwarded-For/-Proto/-Host/-Port and
//! X-Real-IP, spoofed values from untrusted peers replaced, trusted peers'
//! chains extended; hop-by-hop headers stripped in both directions.

use http::Method;
use portico::http::body::empty;

use crate::config::base;
use crate::inproc;
use crate::support::client::Client;
use crate::support::upstream;

const SPOOFED: [(&str, &str); 6] = [
    ("x-forwarded-for", "6.6.6.6"),
    ("x-real-ip", "6.6.6.6"),
    ("x-forwarded-proto", "gopher"),
    ("x-forwarded-host", "evil.example"),
    ("x-forwarded-port", "1"),
    ("forwarded", "for=6.6.6.6;proto=https"),
];

/// The base config with `server.trusted_proxies` set to `trusted`.
fn trusting(trusted: &[&str]) -> String {
    let list: Vec<toml::Value> = trusted.iter().map(|&a| a.into()).collect();
    base().set("server.trusted_proxies", list).to_string()
}

fn first(j: &serde_json::Value, name: &str) -> serde_json::Value {
    j["headers"][name][0].clone()
}

#[tokio::test]
async fn set_for_a_direct_client_over_tls() {
    let up = upstream::start().await;
    let e = inproc::start(&base().to_string(), &[("UP", up.url())]).await;
    let mut c = Client::tls(e.https(), &e.ca(), &[b"http/1.1"]).await;
    let j = c.get("/fwd").await.json();
    let port = e.https().port().to_string();
    assert_eq!(first(&j, "x-forwarded-for"), "127.0.0.1");
    assert_eq!(first(&j, "x-real-ip"), "127.0.0.1");
    assert_eq!(first(&j, "x-forwarded-proto"), "https");
    assert_eq!(first(&j, "x-forwarded-host"), format!("localhost:{port}"));
    assert_eq!(first(&j, "x-forwarded-port"), port.as_str());
    assert_eq!(first(&j, "host"), format!("localhost:{port}"));
}

#[tokio::test]
async fn spoofed_values_from_an_untrusted_peer_are_replaced() {
    let up = upstream::start().await;
    let e = inproc::start(&base().to_string(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let mut req = c.req(Method::GET, "/spoof");
    for (k, v) in SPOOFED {
        req = req.header(k, v);
    }
    let j = c.fetch(req.body(empty()).unwrap()).await.json();
    assert_eq!(
        j["headers"]["x-forwarded-for"],
        serde_json::json!(["127.0.0.1"])
    );
    assert_eq!(j["headers"]["x-real-ip"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(first(&j, "x-forwarded-proto"), "http");
    assert_eq!(
        first(&j, "x-forwarded-host"),
        format!("localhost:{}", e.plain().port())
    );
    assert_eq!(first(&j, "x-forwarded-port"), e.plain().port().to_string());
    assert!(j["headers"]["forwarded"].is_null(), "{j}");
}

#[tokio::test]
async fn trusted_peer_values_are_kept_and_extended() {
    let up = upstream::start().await;
    let e = inproc::start(&trusting(&["127.0.0.1"]), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let mut req = c.req(Method::GET, "/trusted");
    for (k, v) in SPOOFED {
        req = req.header(k, v);
    }
    let j = c.fetch(req.body(empty()).unwrap()).await.json();
    assert_eq!(first(&j, "x-forwarded-for"), "6.6.6.6, 127.0.0.1");
    assert_eq!(first(&j, "x-real-ip"), "6.6.6.6");
    assert_eq!(first(&j, "x-forwarded-proto"), "gopher");
    assert_eq!(first(&j, "x-forwarded-host"), "evil.example");
    assert_eq!(first(&j, "x-forwarded-port"), "1");

    // Without client values, a trusted peer gets them set like anyone else.
    let j = c.get("/trusted-bare").await.json();
    assert_eq!(first(&j, "x-forwarded-for"), "127.0.0.1");
    assert_eq!(first(&j, "x-real-ip"), "127.0.0.1");
    assert_eq!(first(&j, "x-forwarded-proto"), "http");
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    let up = upstream::start().await;
    let e = inproc::start(&base().to_string(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let req = c
        .req(Method::GET, "/hop")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("proxy-connection", "keep-alive")
        .header("te", "gzip")
        .header("proxy", "http://evil.example")
        .header("x-end-to-end", "kept")
        .body(empty())
        .unwrap();
    let r = c.fetch(req).await;
    assert_eq!(r.status, 200);
    let j = r.json();
    for gone in [
        "connection",
        "x-hop",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "proxy",
    ] {
        assert!(
            j["headers"][gone].is_null(),
            "{gone} reached the upstream: {j}"
        );
    }
    assert_eq!(first(&j, "x-end-to-end"), "kept");
    // And back: the upstream's hop-by-hop headers stay at portico.
    for gone in ["x-up-hop", "keep-alive", "proxy-authenticate"] {
        assert!(
            r.headers.get(gone).is_none(),
            "{gone} reached the client: {:?}",
            r.headers
        );
    }
    assert_ne!(r.header("connection"), Some("x-up-hop"));
    assert_eq!(r.header("x-up-kept"), Some("yes"));
}

#[tokio::test]
async fn trusted_proxies_are_matched_as_cidrs() {
    let up = upstream::start().await;
    let e = inproc::start(&trusting(&["127.0.0.0/30"]), &[("UP", up.url())]).await;
    for (source, trusted) in [("127.0.0.2", true), ("127.0.0.9", false)] {
        let mut c = Client::plain_from(source, e.plain()).await;
        let req = c
            .req(Method::GET, "/cidr")
            .header("x-forwarded-for", "203.0.113.7")
            .body(empty())
            .unwrap();
        let j = c.fetch(req).await.json();
        let (xff, real) = if trusted {
            (format!("203.0.113.7, {source}"), "203.0.113.7".to_string())
        } else {
            (source.to_string(), source.to_string())
        };
        assert_eq!(first(&j, "x-forwarded-for"), xff.as_str(), "from {source}");
        assert_eq!(first(&j, "x-real-ip"), real.as_str(), "from {source}");
    }
}
