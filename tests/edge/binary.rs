//! The real binary under signals: SIGHUP reloads routes and certificate
//! files (refusing invalid ones) without touching open connections, SIGTERM
//! drains; plus its JSON access log.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::config::{ConfigText, plain};
use crate::support::binary;
use crate::support::client::{self, Client};
use crate::support::{TempDir, poll_until, upstream, within};

/// The plain base for the real binary: it binds `127.0.0.1:0` itself,
/// logs JSON (the tests read its lines) and proxies to `up`.
fn config(up: &str) -> ConfigText {
    plain()
        .set("server.plain", "127.0.0.1:0")
        .set("server.grace_period", "5s")
        .set("log.format", "json")
        // Reloads come from SIGHUP alone here (file watching: config_watch).
        .set("server.watch_config", false)
        .set("upstream.url", up)
}

async fn echo<S>(ws: &mut client::Ws<S>, text: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text(text)).await.expect("send");
    let back = within("websocket echo", ws.next())
        .await
        .expect("socket open")
        .expect("message");
    assert_eq!(back, Message::text(text));
}

#[tokio::test]
async fn sighup_reload_applies_routes_and_keeps_websockets() {
    let up = upstream::start().await;
    let up2 = upstream::start().await;
    let mut p = binary::start(&config(&up.url()).to_string(), &["plain"]).await;
    let addr = p.plain.expect("plain listener");
    let mut ws = client::ws_plain(addr, "/live/ws").await;
    echo(&mut ws, "before").await;

    let mut c = Client::plain(addr).await;
    let j = c.get("/new/x").await.json();
    assert_eq!(
        j["uri"], "/new/x",
        "before reload, /new/ goes to [upstream]"
    );

    // A new route to a second upstream, with the prefix stripped.
    let routes = format!(
        "[[routes]]\npath = \"/new/\"\nto = \"{}\"\nstrip_prefix = true\n",
        up2.url()
    );
    p.rewrite_config(&config(&up.url()).with(&routes).to_string());
    p.signal("HUP");
    p.wait_log("configuration reloaded", |v| {
        v["fields"]["message"] == "configuration reloaded"
    })
    .await;
    poll_until("the new route answers", || async {
        let mut c = Client::plain(addr).await;
        let r = c.get("/new/x").await;
        (r.json()["uri"] == "/x").then_some(())
    })
    .await;
    assert!(up2.state.last_seen("/x").is_some());
    echo(&mut ws, "after reload").await;

    // An invalid config is refused, with the same error `check` prints,
    // and the running one keeps serving.
    let bad = config(&up.url()).with("[[routes]]\npath = \"/new/\"\nto = \"nowhere\"\n");
    p.rewrite_config(&bad.to_string());
    p.signal("HUP");
    let v = p
        .wait_log("reload refused", |v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("reload refused"))
        })
        .await;
    let msg = v["fields"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("routes[0].to"), "{msg}");
    assert!(msg.contains("unknown target `nowhere`"), "{msg}");
    assert!(
        msg.contains(&format!("{}:", p.config_path().display())),
        "{msg}"
    );
    let mut c = Client::plain(addr).await;
    assert_eq!(c.get("/new/still").await.json()["uri"], "/still");
    echo(&mut ws, "after refused reload").await;

    p.signal("TERM");
    assert!(p.wait_exit(Duration::from_secs(8)).await.success());
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_closes_websockets() {
    let up = upstream::start().await;
    let mut p = binary::start(&config(&up.url()).to_string(), &["plain"]).await;
    let addr = p.plain.expect("plain listener");
    let mut ws = client::ws_plain(addr, "/live/ws").await;
    echo(&mut ws, "hi").await;

    // A slow request, in flight when SIGTERM arrives.
    let mut c = Client::plain(addr).await;
    let slow = tokio::spawn(async move { c.get("/slow?ms=1500").await });
    within(
        "slow request reaches the upstream",
        up.state.slow_started.notified(),
    )
    .await;
    let t = std::time::Instant::now();
    p.signal("TERM");

    // The WebSocket gets a close frame with 1001 (going away).
    let close = loop {
        match within("close frame", ws.next()).await {
            Some(Ok(Message::Close(f))) => break f,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("close frame has a code");
    assert_eq!(close.code, CloseCode::Away);

    // New connections are refused once draining started.
    poll_until("listener closed", || async {
        tokio::net::TcpStream::connect(addr)
            .await
            .is_err()
            .then_some(())
    })
    .await;

    // The in-flight request completes.
    let r = within("slow request", slow).await.expect("task");
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (200, "slow done".to_string())
    );

    let status = p.wait_exit(Duration::from_secs(5)).await;
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        p.log()
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn access_log_line_per_request_without_query_values() {
    let up = upstream::start().await;
    let mut p = binary::start(&config(&up.url()).to_string(), &["plain"]).await;
    let addr = p.plain.expect("plain listener");
    let mut c = Client::plain(addr).await;
    assert_eq!(c.get("/search?q=secret-term&page=2").await.status, 200);
    let v = p
        .wait_log("an access line", |v| v["target"] == "access")
        .await;
    let f = &v["fields"];
    assert_eq!(f["method"], "GET");
    assert_eq!(f["path"], "/search?q=&page=");
    assert_eq!(f["status"], 200);
    assert_eq!(f["route"], "/");
    assert_eq!(f["upstream"], up.url());
    assert!(f["bytes"].as_u64().is_some_and(|b| b > 0), "{v}");
    assert!(!v.to_string().contains("secret-term"), "{v}");
    p.signal("TERM");
    assert!(p.wait_exit(Duration::from_secs(8)).await.success());
}
/// Connections that never sent a request (a silent TCP client on the TLS
/// port, an idle one on the plain port) must not hold up shutdown.
#[tokio::test]
async fn sigterm_does_not_wait_for_silent_connections() {
    let up = upstream::start().await;
    let toml = config(&up.url())
        .set("server.https", "127.0.0.1:0")
        .set("server.grace_period", "20s")
        .set("tls.mode", "dev")
        .set("tls.dir", "certs")
        .to_string();
    let mut p = binary::start(&toml, &["https", "plain"]).await;
    let _silent_tls = client::tcp(p.https.expect("https")).await;
    let _silent_plain = client::tcp(p.plain.expect("plain")).await;
    // Let portico accept both.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = std::time::Instant::now();
    p.signal("TERM");
    let status = p.wait_exit(Duration::from_secs(25)).await;
    assert!(status.success());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "shutdown waited {:?} for connections that never sent a request",
        t.elapsed()
    );
}

/// A self-signed certificate for `localhost`: (cert PEM, key PEM, DER).
fn self_signed() -> (String, String, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().to_vec(),
    )
}

/// The leaf a fresh TLS connection is served.
async fn served_leaf(addr: std::net::SocketAddr, roots: &std::path::Path) -> Vec<u8> {
    let s = client::tls(addr, roots, &[b"http/1.1"]).await;
    s.get_ref()
        .1
        .peer_certificates()
        .expect("peer certificates")[0]
        .to_vec()
}

#[tokio::test]
async fn sighup_rereads_certificate_files_and_keeps_the_old_pair_on_error() {
    let up = upstream::start().await;
    let files = TempDir::new("files");
    let (cert, key, roots) = (
        files.path().join("fullchain.pem"),
        files.path().join("privkey.pem"),
        files.path().join("roots.pem"),
    );
    let (c1, k1, d1) = self_signed();
    let (c2, k2, d2) = self_signed();
    std::fs::write(&roots, format!("{c1}{c2}")).unwrap();
    std::fs::write(&cert, &c1).unwrap();
    std::fs::write(&key, &k1).unwrap();
    let toml = config(&up.url())
        .without("server.plain")
        .set("server.https", "127.0.0.1:0")
        .set("tls.mode", "files")
        .set("tls.cert", cert.display().to_string())
        .set("tls.key", key.display().to_string())
        .set("tls.watch", false)
        .to_string();
    let mut p = binary::start(&toml, &["https"]).await;
    let addr = p.https.expect("https listener");
    assert_eq!(served_leaf(addr, &roots).await, d1);
    let mut open = Client::tls(addr, &roots, &[b"h2"]).await;
    assert_eq!(open.get("/before").await.status, 200);

    // New pair, SIGHUP: new handshakes get it, the open connection goes on.
    std::fs::write(&cert, &c2).unwrap();
    std::fs::write(&key, &k2).unwrap();
    p.signal("HUP");
    p.wait_log("certificates re-read", |v| {
        v["fields"]["message"] == "certificate files re-read"
    })
    .await;
    assert_eq!(served_leaf(addr, &roots).await, d2);
    assert_eq!(open.get("/after").await.status, 200);

    // A broken pair is refused and the running one stays.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    p.signal("HUP");
    p.wait_log("reload refused", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reload refused"))
    })
    .await;
    assert_eq!(served_leaf(addr, &roots).await, d2);
    assert_eq!(open.get("/still").await.status, 200);

    p.signal("TERM");
    assert!(p.wait_exit(Duration::from_secs(8)).await.success());
}

/// Text logs on a pipe (systemd, Docker, `2> file`) carry no ANSI colour
/// codes; only a terminal gets colour.
#[tokio::test]
async fn text_logs_on_a_pipe_have_no_colour_codes() {
    use tokio::io::AsyncBufReadExt;
    let dir = TempDir::new("ansi");
    let path = dir.path().join("portico.toml");
    let toml = plain()
        .set("server.plain", "127.0.0.1:0")
        .set("log.format", "text")
        .set("upstream.url", "http://127.0.0.1:9");
    std::fs::write(&path, toml.to_string()).expect("write config");
    let mut child = tokio::process::Command::new(binary::exe())
        .arg("run")
        .arg("--config")
        .arg(&path)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn portico");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let listening = within("a `listening` line", async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push(line);
            if seen.last().is_some_and(|l| l.contains("listening")) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(listening, "no listening line in {seen:?}");
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes on a pipe: {seen:?}"
    );
    let _ = child.kill().await;
}
