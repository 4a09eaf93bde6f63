//! The admin listener (`[admin] listen`) of the real binary: Prometheus
//! `/metrics` followed through a real session — a raw WebSocket speaking
//! the Pusher protocol, the signed REST API, a proxied request to a real
//! upstream, a refused handshake and a bad channel signature — each moving
//! its counters by exactly what happened; every scrape is read by a strict
//! text-format checker (`expo`). Then `portico status` (the summary and
//! `--json`), its errors when nothing answers, and `[admin]` being off
//! unless configured.

#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../edge/support/binary.rs"]
mod binary;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/config.rs"]
mod config;
mod expo;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/inproc.rs"]
mod inproc;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../pusher/support.rs"]
mod support;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/wait.rs"]
mod wait;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use binary::{Proc, run_cmd};
use expo::{Page, parse_strict};
use inproc::TempDir;
use support::{APP, Socket, WAIT, channel_auth, next_json, open, publish, within};

/// A node with a plain listener, the admin listener, the test apps, the
/// Pusher routes and everything else proxied to `upstream`; `/down/`
/// goes to a port where nothing listens.
fn node_config(upstream: SocketAddr, down: SocketAddr) -> String {
    format!(
        r#"
[server]
plain = "127.0.0.1:0"
grace_period = "1s"

[tls]
mode = "off"

[upstream]
url = "http://{upstream}"

[[routes]]
path = "/app/"
to = "pusher"

[[routes]]
path = "/apps/"
to = "pusher"

[[routes]]
path = "/down/"
to = "http://{down}"

[log]
format = "json"
level = "info"
access = false

[admin]
listen = "127.0.0.1:0"

[[apps]]
id = "{}"
key = "{}"
secret = "{}"
client_events = true
"#,
        APP.id, APP.key, APP.secret
    )
}

/// A real upstream: every request gets 200 `hello from upstream`.
async fn upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let svc = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"hello from upstream",
                ))))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc),
            );
        }
    });
    addr
}

/// A loopback port where nothing listens (bound, then released).
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Starts the binary on [`node_config`] with a real upstream.
async fn node() -> Proc {
    let up = upstream().await;
    binary::start(&node_config(up, closed_port()), &["plain", "admin"]).await
}

/// One HTTP/1.1 GET: status, content type and body.
async fn get(addr: SocketAddr, path: &str) -> (StatusCode, String, String) {
    let tcp = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let (mut send, conn) = within(
        "handshake",
        hyper::client::conn::http1::handshake(TokioIo::new(tcp)),
    )
    .await
    .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = within("response", send.send_request(req))
        .await
        .expect("response");
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = within("body", resp.into_body().collect())
        .await
        .expect("body")
        .to_bytes();
    (status, ctype, String::from_utf8_lossy(&body).into_owned())
}

/// `/metrics`, checked strictly.
async fn scrape(p: &Proc) -> Page {
    let (status, ctype, text) = get(p.admin.expect("admin listener"), "/metrics").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    parse_strict(&text).unwrap_or_else(|e| panic!("/metrics is not valid: {e}\n{text}"))
}

/// Scrapes until `pred` holds (bounded by [`WAIT`]): for values that
/// change after the client saw its answer (a socket's close).
async fn scrape_until(p: &Proc, what: &str, pred: impl Fn(&Page) -> bool) -> Page {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = scrape(p).await;
        if pred(&page) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const APP_LABELS: &[(&str, &str)] = &[("app", "app-id"), ("protocol", "pusher")];

#[tokio::test]
async fn pusher_session_moves_its_gauges_and_counters_exactly() {
    let p = node().await;
    let addr = p.plain.expect("plain");
    let before = scrape(&p).await;
    assert_eq!(before.or0("portico_connections", APP_LABELS), 0.0);

    let mut s = Socket::connect(addr, APP.key).await;
    s.subscribe("room").await;
    let joined = scrape(&p).await;
    assert_eq!(joined.get("portico_connections", APP_LABELS), Some(1.0));
    assert_eq!(joined.get("portico_channels", APP_LABELS), Some(1.0));
    assert_eq!(joined.get("portico_subscriptions", APP_LABELS), Some(1.0));
    assert_eq!(joined.types["portico_connections"], "gauge");

    let (status, _) = publish(
        addr,
        APP,
        &json!({"name": "greet", "channel": "room", "data": "{\"hi\":1}"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    s.expect("greet", Some("room")).await;
    let after = scrape(&p).await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.or0(name, labels) - joined.or0(name, labels);
    assert_eq!(delta("portico_messages_in_total", APP_LABELS), 1.0);
    assert_eq!(delta("portico_messages_out_total", APP_LABELS), 1.0);
    assert_eq!(delta("portico_fanout_drops_total", APP_LABELS), 0.0);
    assert_eq!(
        delta(
            "portico_rest_calls_total",
            &[("protocol", "pusher"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(after.types["portico_messages_in_total"], "counter");

    s.close().await;
    scrape_until(&p, "the connection gauge back at 0", |page| {
        page.or0("portico_connections", APP_LABELS) == 0.0
            && page.or0("portico_subscriptions", APP_LABELS) == 0.0
    })
    .await;
}

#[tokio::test]
async fn refused_handshake_and_bad_signature_are_counted_by_reason() {
    let p = node().await;
    let addr = p.plain.expect("plain");
    let failures = |page: &Page, reason: &str| {
        page.or0(
            "portico_handshake_failures_total",
            &[("protocol", "pusher"), ("reason", reason)],
        )
    };
    let before = scrape(&p).await;
    assert_eq!(failures(&before, "app_not_found"), 0.0);

    let mut ws = open(addr, "no-such-key").await;
    let first = next_json(&mut ws).await.expect("a pusher:error first");
    assert_eq!(first["event"], "pusher:error", "{first}");
    let close = next_json(&mut ws).await.expect_err("then the close");
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4001));
    let page = scrape(&p).await;
    assert_eq!(failures(&page, "app_not_found"), 1.0);
    assert_eq!(
        page.or0("portico_connections", APP_LABELS),
        0.0,
        "a refused socket is no connection"
    );

    // A private channel with a signature made with the wrong secret.
    let mut s = Socket::connect(addr, APP.key).await;
    let mut wrong = APP;
    wrong.secret = "not-the-secret";
    let auth = channel_auth(wrong, &s.socket_id, "private-x", None);
    let m = s
        .subscribe_with(json!({"channel": "private-x", "auth": auth}))
        .await;
    assert_eq!(m["event"], "pusher:subscription_error", "{m}");
    let page = scrape(&p).await;
    assert_eq!(
        page.or0(
            "portico_auth_failures_total",
            &[("protocol", "pusher"), ("reason", "bad_signature")]
        ),
        1.0
    );
    assert_eq!(failures(&page, "app_not_found"), 1.0, "unchanged");
}

#[tokio::test]
async fn proxied_requests_show_in_the_latency_histogram_and_errors_by_cause() {
    let p = node().await;
    let addr = p.plain.expect("plain");
    let http = [("route", "/"), ("kind", "http")];
    let before = scrape(&p).await;
    assert_eq!(
        before.or0("portico_upstream_request_duration_seconds_count", &http),
        0.0
    );

    for _ in 0..3 {
        let (status, _, body) = get(addr, "/hello").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "hello from upstream");
    }
    // The fast path records a request once its response went out, so the
    // client may read the answer a moment before the count moves.
    let page = scrape_until(&p, "three observations", |page| {
        page.or0("portico_upstream_request_duration_seconds_count", &http) >= 3.0
    })
    .await;
    assert_eq!(
        page.types["portico_upstream_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(
        page.get("portico_upstream_request_duration_seconds_count", &http),
        Some(3.0)
    );
    let inf = [("route", "/"), ("kind", "http"), ("le", "+Inf")];
    assert_eq!(
        page.get("portico_upstream_request_duration_seconds_bucket", &inf),
        Some(3.0)
    );
    assert!(page.or0("portico_upstream_request_duration_seconds_sum", &http) > 0.0);

    let (status, _, _) = get(addr, "/down/x").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let page = scrape(&p).await;
    assert_eq!(
        page.get(
            "portico_upstream_errors_total",
            &[
                ("route", "/down/"),
                ("kind", "http"),
                ("cause", "unreachable")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        page.or0(
            "portico_upstream_request_duration_seconds_count",
            &[("route", "/down/")]
        ),
        0.0,
        "a failed request has no upstream latency"
    );
}

#[tokio::test]
async fn process_metrics_are_read_from_proc() {
    let p = node().await;
    let page = scrape(&p).await;
    assert!(page.or0("process_resident_memory_bytes", &[]) > 1_000_000.0);
    assert!(page.or0("process_open_fds", &[]) >= 3.0);
    assert_eq!(page.types["portico_tls_handshakes_total"], "counter");
}

#[tokio::test]
async fn portico_status_prints_a_summary_and_json() {
    let p = node().await;
    let addr = p.plain.expect("plain");
    let admin = p.admin.expect("admin").to_string();
    let mut s = Socket::connect(addr, APP.key).await;
    s.subscribe("room").await;
    let dir = TempDir::new("status");

    let (st, out, err) = run_cmd(&["status", "--admin", &admin], dir.path()).await;
    assert!(st.success(), "{err}");
    for want in [
        "listeners:",
        &format!("plain  {addr}"),
        &format!("admin  {admin}"),
        "routes (first match wins):",
        "/app/ -> pusher",
        "pusher app-id key=app-key: 1 connection(s), 1 channel(s), 1 subscription(s)",
        "upstreams:",
        "(http) for /: reachable",
        "for /down/: UNREACHABLE",
        "cluster: off",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }

    let (st, out, err) = run_cmd(&["status", "--admin", &admin, "--json"], dir.path()).await;
    assert!(st.success(), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    let apps = doc["apps"].as_array().expect("apps");
    let app = apps
        .iter()
        .find(|a| a["id"] == APP.id)
        .unwrap_or_else(|| panic!("no app-id in {doc}"));
    assert_eq!(app["protocol"], "pusher");
    assert_eq!(app["connections"], 1);
    assert_eq!(app["subscriptions"], 1);
    assert_eq!(doc["pid"], p.pid());
    assert!(
        doc["listeners"].as_array().is_some_and(|l| l.len() == 2),
        "{doc}"
    );
    s.close().await;
}

#[tokio::test]
async fn portico_status_says_when_nothing_answers() {
    let dir = TempDir::new("status-closed");
    let closed = closed_port().to_string();
    let (st, out, err) = run_cmd(&["status", "--admin", &closed], dir.path()).await;
    assert!(!st.success(), "exit 0 with nothing listening: {out}");
    assert!(err.contains("is portico running?"), "{err}");
    assert!(err.contains("[admin] listen"), "{err}");
    assert!(err.contains(&closed), "{err}");

    // A config without [admin]: no address to ask.
    let path = dir.path().join("no-admin.toml");
    std::fs::write(
        &path,
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n",
    )
    .expect("write");
    let path = path.to_string_lossy().into_owned();
    let (st, _, err) = run_cmd(&["status", "--config", &path], dir.path()).await;
    assert!(!st.success());
    assert!(err.contains("admin listener is not enabled"), "{err}");
    assert!(err.contains("no-admin.toml"), "{err}");
}

#[tokio::test]
async fn admin_is_off_unless_configured_and_check_warns_off_loopback() {
    let dir = TempDir::new("admin-check");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().into_owned()
    };
    let base = "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n";
    let off = write("off.toml", base);
    let (st, out, _) = run_cmd(&["check", "--config", &off], dir.path()).await;
    assert!(st.success());
    assert!(out.contains("admin: off"), "{out}");

    let wide = write(
        "wide.toml",
        &format!("{base}[admin]\nlisten = \"0.0.0.0:9180\"\n"),
    );
    let (st, out, _) = run_cmd(&["check", "--config", &wide], dir.path()).await;
    assert!(st.success());
    assert!(out.contains("warning: `admin.listen`"), "{out}");

    let local = write(
        "local.toml",
        &format!("{base}[admin]\nlisten = \"127.0.0.1:9180\"\n"),
    );
    let (_, out, _) = run_cmd(&["check", "--config", &local], dir.path()).await;
    assert!(
        out.contains("admin: http://127.0.0.1:9180/metrics"),
        "{out}"
    );
    assert!(!out.contains("warning: `admin.listen`"), "{out}");

    let bad = write(
        "bad.toml",
        &format!("{base}[admin]\nlisten = \"nowhere\"\n"),
    );
    let (st, _, err) = run_cmd(&["check", "--config", &bad], dir.path()).await;
    assert_eq!(st.code(), Some(2));
    assert!(
        err.contains("bad.toml:6") && err.contains("admin.listen"),
        "{err}"
    );

    // The running binary without [admin] binds only its listener: the
    // status command finds nothing to ask.
    let p = binary::start(
        &format!("{base}[log]\nformat = \"json\"\n[upstream]\nurl = \"http://127.0.0.1:9\"\n"),
        &["plain"],
    )
    .await;
    assert!(p.admin.is_none());
    let cfg = p.config_path().to_string_lossy().into_owned();
    let (st, _, err) = run_cmd(&["status", "--config", &cfg], dir.path()).await;
    assert!(!st.success());
    assert!(err.contains("admin listener is not enabled"), "{err}");
}

#[tokio::test]
async fn tls_failures_and_certificate_expiry_are_exposed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = binary::start(
        r#"
[server]
https = "127.0.0.1:0"
grace_period = "1s"

[tls]
mode = "dev"
dir = "certs"

[upstream]
url = "http://127.0.0.1:9"

[log]
format = "json"

[admin]
listen = "127.0.0.1:0"
"#,
        &["https", "admin"],
    )
    .await;
    let before = scrape(&p).await;
    let failed =
        |page: &Page| page.or0("portico_tls_handshake_failures_total", &[("reason", "tls")]);
    assert_eq!(failed(&before), 0.0);
    // Plain HTTP on the TLS port: the handshake fails.
    let mut s = within(
        "connect",
        TcpStream::connect(p.https.expect("https listener")),
    )
    .await
    .expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut sink = Vec::new();
    let _ = within("the server closing", s.read_to_end(&mut sink)).await;
    let page = scrape_until(&p, "the failed handshake counted", |page| {
        failed(page) == 1.0
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let expiry = page
        .get(
            "portico_certificate_expiry_timestamp_seconds",
            &[("domain", "localhost")],
        )
        .unwrap_or_else(|| panic!("no expiry for localhost: {page:?}"));
    assert!(expiry > now, "the dev leaf is valid: {expiry} vs {now}");
    let (st, out, err) = run_cmd(
        &["status", "--admin", &p.admin.expect("admin").to_string()],
        std::path::Path::new("."),
    )
    .await;
    assert!(st.success(), "{err}");
    assert!(out.contains("tls: dev"), "{out}");
    assert!(
        out.contains("localhost") && out.contains("expires in"),
        "{out}"
    );
}
