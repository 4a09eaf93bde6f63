//! The `$PORT` story of `docs/kinsta.md`, with the shipped
//! `config/kinsta-single-port.toml`: the real binary started with `PORT`
//! set (and `0.0.0.0` narrowed to loopback), its `[[processes]]` running
//! `php artisan serve` (a stand-in `artisan` that runs `php -S`), and one
//! port serving the app's page, `pusher:connection_established` on
//! `/app/{key}`, and a signed REST publish reaching the subscriber.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::Method;
use portico::http::body::full;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::client::{self, Client, Ws};
use crate::support::{TempDir, binary, upstream, within};
use crate::{APP_ID, APP_KEY, APP_SECRET, repo};

/// Stands in for Laravel's `artisan`: `serve --host=H --port=P` runs PHP's
/// built-in server on `public/`, as `php artisan serve` does.
const ARTISAN: &str = r#"<?php
$args = array_slice($argv, 1);
if (($args[0] ?? '') !== 'serve') {
    fwrite(STDERR, "stand-in artisan: only `serve`\n");
    exit(1);
}
$host = '127.0.0.1';
$port = '8000';
foreach ($args as $a) {
    if (str_starts_with($a, '--host=')) { $host = substr($a, 7); }
    if (str_starts_with($a, '--port=')) { $port = substr($a, 7); }
}
passthru(escapeshellarg(PHP_BINARY) . ' -S ' . escapeshellarg("$host:$port")
    . ' -t ' . escapeshellarg(__DIR__ . '/public'), $code);
exit($code);
"#;

/// Booting `php -S` under portico's supervisor may take a moment.
const APP_WAIT: Duration = Duration::from_secs(20);

/// The next text frame as JSON, skipping pings.
async fn next_json<S>(ws: &mut Ws<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match within("a pusher message", ws.next()).await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("json frame"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// `POST /apps/{id}/events` signed as Laravel's broadcaster signs it.
fn signed_events_path(body: &[u8]) -> String {
    use md5::Digest;
    let path = format!("/apps/{APP_ID}/events");
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let md5 = hex::encode(md5::Md5::digest(body));
    let q = format!("auth_key={APP_KEY}&auth_timestamp={ts}&auth_version=1.0&body_md5={md5}");
    let sig =
        portico::pusher::auth::sign_parts(APP_SECRET, &[format!("POST\n{path}\n{q}").as_bytes()]);
    format!("{path}?{q}&auth_signature={sig}")
}

#[tokio::test]
async fn one_port_from_the_environment_serves_the_app_and_the_websockets() {
    let shipped = std::fs::read_to_string(repo().join("config/kinsta-single-port.toml"))
        .expect("config/kinsta-single-port.toml");
    // Tests listen on loopback only; and the test reads JSON log lines.
    assert_eq!(
        shipped.matches("\"0.0.0.0:").count(),
        1,
        "one listener on all interfaces"
    );
    let toml = shipped.replace("\"0.0.0.0:", "\"127.0.0.1:") + "\n[log]\nformat = \"json\"\n";

    let app = TempDir::new("kinsta-app");
    std::fs::create_dir_all(app.path().join("public")).expect("public/");
    std::fs::write(app.path().join("artisan"), ARTISAN).expect("artisan");
    std::fs::write(
        app.path().join("public/index.php"),
        "<?php echo 'laravel says hi on ', $_SERVER['REQUEST_URI'];",
    )
    .expect("index.php");

    let port = upstream::refusing_addr().await.port();
    let app_port = upstream::refusing_addr().await.port();
    let env = [
        ("PORT", port.to_string()),
        ("APP_PORT", app_port.to_string()),
        ("APP_DIR", app.path().display().to_string()),
        ("REVERB_APP_ID", APP_ID.to_string()),
        ("REVERB_APP_KEY", APP_KEY.to_string()),
        ("REVERB_APP_SECRET", APP_SECRET.to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = binary::start_with_env(&toml, &["plain"], &env).await;
    let addr = p.plain.expect("plain listener");
    assert_eq!(addr.port(), port, "portico listens on $PORT");

    // The app, through `php artisan serve` that portico started: 503 with
    // Retry-After while it boots, then the page.
    let deadline = tokio::time::Instant::now() + APP_WAIT;
    let page = loop {
        let mut c = Client::plain(addr).await;
        let r = c.get("/dashboard").await;
        if r.status == 200 {
            break r.text();
        }
        assert_eq!(r.status, 503, "before the app is ready: {}", r.text());
        assert!(
            tokio::time::Instant::now() < deadline,
            "the app did not answer through portico within {APP_WAIT:?}; log:\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(page, "laravel says hi on /dashboard");

    // The WebSocket, on the same port.
    let path = format!("/app/{APP_KEY}?protocol=7&client=js&version=8.4.0");
    let mut ws = client::ws_plain(addr, &path).await;
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["event"], "pusher:connection_established", "{hello}");
    let sub = json!({"event": "pusher:subscribe", "data": {"channel": "orders"}});
    ws.send(Message::text(sub.to_string())).await.expect("send");
    let ok = next_json(&mut ws).await;
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );

    // Laravel's broadcast, to the same port, reaches the subscriber.
    let body = json!({"name": "shipped", "channel": "orders", "data": "{\"id\":7}"}).to_string();
    let mut c = Client::plain(addr).await;
    let req = c
        .req(Method::POST, &signed_events_path(body.as_bytes()))
        .header("content-type", "application/json")
        .body(full(body.clone()))
        .expect("request");
    let r = c.fetch(req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = next_json(&mut ws).await;
    assert_eq!(
        (
            m["event"].as_str(),
            m["channel"].as_str(),
            m["data"].as_str()
        ),
        (Some("shipped"), Some("orders"), Some("{\"id\":7}"))
    );
}
