//! `php -S` behind the TLS listener: what a PHP app sees through portico.

use http::Method;
use portico::http::body::full;

use crate::config::base;
use crate::inproc;
use crate::support::client::Client;
use crate::support::php;

const SCRIPT: &str = r#"<?php
header('Content-Type: application/json');
header('X-Powered-By-Test: php');
echo json_encode([
    'proto' => $_SERVER['HTTP_X_FORWARDED_PROTO'] ?? null,
    'host' => $_SERVER['HTTP_HOST'] ?? null,
    'xff' => $_SERVER['HTTP_X_FORWARDED_FOR'] ?? null,
    'method' => $_SERVER['REQUEST_METHOD'],
    'uri' => $_SERVER['REQUEST_URI'],
    'query' => $_GET,
    'body' => file_get_contents('php://input'),
]);
"#;

/// The base config without the plain listener.
fn toml() -> String {
    base().without("server.plain").to_string()
}

#[tokio::test]
async fn php_sees_proto_host_method_and_body_over_tls() {
    let php = php::serve(SCRIPT).await;
    let e = inproc::start(&toml(), &[("UP", php.url())]).await;
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let mut c = Client::tls(e.https(), &e.ca(), &[alpn]).await;
        let body = r#"{"name":"portico","n":1}"#;
        let req = c
            .req(Method::POST, "/orders/store?page=2")
            .header("content-type", "application/json")
            .header("content-length", body.len().to_string())
            .body(full(body))
            .unwrap();
        let r = c.fetch(req).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-powered-by-test"), Some("php"));
        let j = r.json();
        assert_eq!(j["proto"], "https");
        assert_eq!(j["host"], format!("localhost:{}", e.https().port()));
        assert_eq!(j["xff"], "127.0.0.1");
        assert_eq!(j["method"], "POST");
        assert_eq!(j["uri"], "/orders/store?page=2");
        assert_eq!(j["query"]["page"], "2");
        assert_eq!(j["body"], body);

        let r = c.get("/health-of-app").await;
        assert_eq!(r.json()["method"], "GET");
    }
}
