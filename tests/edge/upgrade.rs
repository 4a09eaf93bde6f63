//! The real binary through a binary upgrade (SIGUSR2) and an app removed
//! by a reload (SIGHUP):
//!
//! - while clients keep connecting (proxied HTTP on fresh connections,
//!   Pusher sockets that connect, subscribe and receive a REST publish),
//!   SIGUSR2 starts a new process that takes the listeners (plain and
//!   admin) over: no connection is refused, no request fails, the sockets
//!   the old process held close with 4200 (not 1006), the old process
//!   exits, and `/status` on the same admin address answers with the new
//!   pid;
//! - a new process that cannot start (the config made invalid first): the
//!   old one logs why and keeps serving, its sockets untouched;
//! - a reload that drops one of two apps closes that app's sockets with
//!   4200 and leaves the other app's open and receiving.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use md5::Digest;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::config::{ConfigText, plain};
use crate::support::binary::{self, Proc};
use crate::support::{poll_until, upstream, within};

const APP: (&str, &str, &str) = ("up-app", "up-key", "up-secret");
const OTHER: (&str, &str, &str) = ("other-app", "other-key", "other-secret");

/// Upper bound for one client step in the load loops.
const STEP: Duration = Duration::from_secs(5);

type Socket = WebSocketStream<TcpStream>;

fn app_block((id, key, secret): (&str, &str, &str)) -> String {
    format!("[[apps]]\nid = \"{id}\"\nkey = \"{key}\"\nsecret = \"{secret}\"\n")
}

/// The real binary on `127.0.0.1:0` (plain and admin), JSON logs, a short
/// drain spread, proxying to `up`, serving `apps`.
fn config(up: &str, apps: &[(&str, &str, &str)]) -> ConfigText {
    let c = plain()
        .set("server.plain", "127.0.0.1:0")
        .set("server.grace_period", "5s")
        .set("server.watch_config", false)
        .set("log.format", "json")
        .set("upstream.url", up)
        .set("admin.listen", "127.0.0.1:0")
        .set("pusher.drain_spread", "1s");
    let blocks: String = apps.iter().map(|a| app_block(*a)).collect();
    c.with(&blocks)
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`);
/// `Err` says what went wrong.
async fn exchange(addr: SocketAddr, head: &str, body: &str) -> Result<(u16, String), String> {
    let step = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let req = format!(
            "{head}\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no status line in {text:?}"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(STEP, step)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {STEP:?}")))
}

/// A proxied GET on a fresh connection must answer 200.
async fn get_ok(addr: SocketAddr, path: &str) -> Result<String, String> {
    match exchange(addr, &format!("GET {path} HTTP/1.1"), "").await? {
        (200, body) => Ok(body),
        (s, body) => Err(format!("GET {path}: status {s}: {body}")),
    }
}

/// Pusher's REST publish of `event` on `channel` for `app`, signed.
async fn publish(
    addr: SocketAddr,
    (id, key, secret): (&str, &str, &str),
    channel: &str,
    data: &str,
) -> Result<(), String> {
    let body = json!({"name": "tick", "channel": channel, "data": data}).to_string();
    let path = format!("/apps/{id}/events");
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let md5 = hex::encode(md5::Md5::digest(body.as_bytes()));
    let q = format!("auth_key={key}&auth_timestamp={ts}&auth_version=1.0&body_md5={md5}");
    let sig = portico::pusher::auth::sign_parts(secret, &[format!("POST\n{path}\n{q}").as_bytes()]);
    let head =
        format!("POST {path}?{q}&auth_signature={sig} HTTP/1.1\r\nContent-Type: application/json");
    match exchange(addr, &head, &body).await? {
        (200, _) => Ok(()),
        (s, body) => Err(format!("publish: status {s}: {body}")),
    }
}

/// What a Pusher socket read: a JSON frame, or its end.
#[derive(Debug)]
enum Read {
    Json(Value),
    /// A close frame with this code.
    Closed(u16),
    /// The connection ended without a close frame (a client sees 1006).
    Abnormal(#[allow(dead_code, reason = "read through Debug in failure messages")] String),
    /// Nothing within the wait.
    Quiet,
}

async fn read(ws: &mut Socket, wait: Duration) -> Read {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Read::Quiet,
            Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str(&t) {
                Ok(v) => return Read::Json(v),
                Err(e) => return Read::Abnormal(format!("not JSON: {e}: {t}")),
            },
            Ok(Some(Ok(Message::Close(f)))) => {
                return Read::Closed(f.map_or(1005, |f| u16::from(f.code)));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Read::Abnormal(e.to_string()),
            Ok(None) => return Read::Abnormal("stream ended".into()),
        }
    }
}

/// Connects a Pusher socket for `key` and subscribes it to `channel`.
/// `Ok(None)`: closed with 4200 on the way (a draining process).
async fn subscribed(addr: SocketAddr, key: &str, channel: &str) -> Result<Option<Socket>, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("ws connect: {e}"))?;
    let url = format!(
        "ws://localhost:{}/app/{key}?protocol=7&client=rust&version=1",
        addr.port()
    );
    let (mut ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::client_async(url, tcp))
        .await
        .map_err(|_| "ws handshake timed out".to_string())?
        .map_err(|e| format!("ws handshake: {e}"))?;
    for expect in [
        "pusher:connection_established",
        "pusher_internal:subscription_succeeded",
    ] {
        match read(&mut ws, STEP).await {
            Read::Json(v) if v["event"] == expect => {}
            Read::Closed(4200) => return Ok(None),
            other => return Err(format!("waiting for {expect}: {other:?}")),
        }
        if expect == "pusher:connection_established" {
            let sub = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
            ws.send(Message::text(sub.to_string()))
                .await
                .map_err(|e| format!("subscribe: {e}"))?;
        }
    }
    Ok(Some(ws))
}

/// Waits for the `tick` event on `ws` (up to one step).
async fn tick(ws: &mut Socket) -> Read {
    loop {
        match read(ws, STEP).await {
            Read::Json(v) if v["event"] == "tick" => return Read::Json(v),
            Read::Json(_) => {}
            other => return other,
        }
    }
}

/// How `ws` ends: the first read that is not a JSON frame (bounded).
async fn closed(ws: &mut Socket) -> Read {
    for _ in 0..16 {
        match read(ws, Duration::from_secs(10)).await {
            Read::Json(_) => {}
            other => return other,
        }
    }
    Read::Abnormal("still sending frames".into())
}

/// What the load loops saw.
#[derive(Default)]
struct Tally {
    http_ok: AtomicUsize,
    /// HTTP requests answered after the old process exited.
    http_ok_after: AtomicUsize,
    pusher_ok: AtomicUsize,
    /// Pusher sockets closed with 4200 mid-round (they reconnect).
    pusher_moved: AtomicUsize,
    failures: parking_lot::Mutex<Vec<String>>,
    old_gone: AtomicBool,
    stop: AtomicBool,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failures.lock().push(what);
    }
}

/// Proxied GETs on fresh connections until stopped (bounded).
async fn http_loop(addr: SocketAddr, n: usize, t: Arc<Tally>) {
    for i in 0..20_000 {
        if t.stop.load(Ordering::Relaxed) {
            return;
        }
        match get_ok(addr, &format!("/loop/{n}/{i}")).await {
            Ok(_) => {
                t.http_ok.fetch_add(1, Ordering::Relaxed);
                if t.old_gone.load(Ordering::Relaxed) {
                    t.http_ok_after.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => t.fail(e),
        }
    }
}

/// Pusher rounds until stopped (bounded): connect, subscribe, publish
/// over REST, receive it. Until the old process stops accepting, the
/// socket and the publish may land on different processes (two hubs, no
/// cluster here): the publish is then repeated, and a socket on the old
/// process gets its 4200 meanwhile.
async fn pusher_loop(addr: SocketAddr, t: Arc<Tally>) {
    for i in 0..5_000 {
        if t.stop.load(Ordering::Relaxed) {
            return;
        }
        let channel = format!("round-{i}");
        let mut ws = match subscribed(addr, APP.1, &channel).await {
            Ok(Some(ws)) => ws,
            Ok(None) => {
                t.pusher_moved.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(e) => {
                t.fail(format!("pusher round {i}: {e}"));
                continue;
            }
        };
        let mut outcome = Err("no publish attempted".to_string());
        for _ in 0..5 {
            if let Err(e) = publish(addr, APP, &channel, "{}").await {
                outcome = Err(e);
                break;
            }
            match tick(&mut ws).await {
                Read::Json(_) => {
                    outcome = Ok(true);
                    break;
                }
                Read::Closed(4200) => {
                    outcome = Ok(false);
                    break;
                }
                Read::Quiet => outcome = Err("no event after 5 publishes".into()),
                other => {
                    outcome = Err(format!("waiting for the event: {other:?}"));
                    break;
                }
            }
        }
        match outcome {
            Ok(true) => {
                t.pusher_ok.fetch_add(1, Ordering::Relaxed);
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            }
            Ok(false) => {
                t.pusher_moved.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => t.fail(format!("pusher round {i}: {e}")),
        }
    }
}

/// The pid `/status` on the admin listener reports.
async fn status_pid(admin: SocketAddr) -> u64 {
    let body = get_ok(admin, "/status").await.expect("GET /status");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["pid"].as_u64().unwrap_or_else(|| panic!("no pid in {v}"))
}

fn alive(pid: u64) -> bool {
    // A zombie has no `exe`; a live process does.
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok()
}

/// The process a test's upgrade started (not the test's child): stopped
/// with SIGTERM at the end of the test, SIGKILL if the test panicked.
struct Started(u64);

impl Started {
    async fn stop(self) {
        kill("TERM", self.0);
        poll_until("the new process to exit", || async {
            (!alive(self.0)).then_some(())
        })
        .await;
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if alive(self.0) {
            kill("KILL", self.0);
        }
    }
}

fn kill(signal: &str, pid: u64) {
    let _ = std::process::Command::new("kill")
        .arg("-s")
        .arg(signal)
        .arg(pid.to_string())
        .status();
}

/// Waits for the old process's "the new process serves" line; its pid.
async fn handed_over(p: &mut Proc) -> u64 {
    let v = p
        .wait_log_for("the upgrade's hand-over", Duration::from_secs(30), |v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("upgrade: the new process serves"))
        })
        .await;
    v["fields"]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("hand-over line without pid: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known race (issue 16): under load about 1 request in 3000 through the hand-over gets a closed connection with no response; run with --ignored"]
async fn sigusr2_upgrade_refuses_nothing_and_drains_the_old_process() {
    let up = upstream::start().await;
    let mut p = binary::start(&config(&up.url(), &[APP]).to_string(), &["plain", "admin"]).await;
    let (addr, admin) = (p.plain.expect("plain"), p.admin.expect("admin"));
    let old_pid = u64::from(p.pid());
    assert_eq!(status_pid(admin).await, old_pid);

    // Sockets the old process holds through the upgrade.
    let mut held = Vec::new();
    for i in 0..4 {
        let ws = subscribed(addr, APP.1, &format!("held-{i}"))
            .await
            .expect("held socket")
            .expect("not draining yet");
        held.push(ws);
    }

    let tally = Arc::new(Tally::default());
    let mut loops = Vec::new();
    for n in 0..3 {
        loops.push(tokio::spawn(http_loop(addr, n, tally.clone())));
    }
    loops.push(tokio::spawn(pusher_loop(addr, tally.clone())));
    poll_until("the load loops to get going", || async {
        (tally.http_ok.load(Ordering::Relaxed) > 20 && tally.pusher_ok.load(Ordering::Relaxed) > 2)
            .then_some(())
    })
    .await;

    p.signal("USR2");
    let new_pid = handed_over(&mut p).await;
    let new = Started(new_pid);
    assert_ne!(new_pid, old_pid);

    // Every socket the old process held gets 4200 within the spread.
    for (i, ws) in held.iter_mut().enumerate() {
        match closed(ws).await {
            Read::Closed(code) => assert_eq!(code, 4200, "held socket {i} closed with {code}"),
            other => panic!("held socket {i}: {other:?}; log:\n{}", p.log()),
        }
    }
    let status = p.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "old process: {status}; log:\n{}", p.log());
    tally.old_gone.store(true, Ordering::Relaxed);
    poll_until("requests answered after the old process exited", || async {
        (tally.http_ok_after.load(Ordering::Relaxed) > 20).then_some(())
    })
    .await;
    let pusher_before = tally.pusher_ok.load(Ordering::Relaxed);
    poll_until("Pusher rounds after the old process exited", || async {
        (tally.pusher_ok.load(Ordering::Relaxed) > pusher_before + 2).then_some(())
    })
    .await;
    tally.stop.store(true, Ordering::Relaxed);
    for l in loops {
        within("a load loop to stop", l).await.expect("load loop");
    }

    let failures = tally.failures.lock().clone();
    assert!(
        failures.is_empty(),
        "{} failures through the upgrade (first: {:?}); http ok {}, pusher ok {}, moved {}; log:\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        tally.http_ok.load(Ordering::Relaxed),
        tally.pusher_ok.load(Ordering::Relaxed),
        tally.pusher_moved.load(Ordering::Relaxed),
        p.log()
    );
    // The admin listener was handed over too: same address, new pid.
    assert_eq!(status_pid(admin).await, new_pid);
    assert!(alive(new_pid));
    let log = p.log();
    assert!(
        log.contains("upgrade: took the listeners over from the running portico"),
        "{log}"
    );
    new.stop().await;
}

#[tokio::test]
async fn failed_upgrade_keeps_the_old_process_serving() {
    let up = upstream::start().await;
    let toml = config(&up.url(), &[APP]).to_string();
    let mut p = binary::start(&toml, &["plain", "admin"]).await;
    let (addr, admin) = (p.plain.expect("plain"), p.admin.expect("admin"));
    let mut ws = subscribed(addr, APP.1, "kept")
        .await
        .expect("socket")
        .expect("not draining");

    // The new process refuses this config and exits before it is ready.
    p.rewrite_config("[server\nnot toml");
    p.signal("USR2");
    let v = p
        .wait_log_for("the failed upgrade", Duration::from_secs(30), |v| {
            v["fields"]["message"] == "upgrade failed; this process keeps serving"
        })
        .await;
    let why = v["fields"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("exited before it was ready"), "{v}");

    // Still serving, same process, the socket untouched.
    assert_eq!(status_pid(admin).await, u64::from(p.pid()));
    get_ok(addr, "/after-failed-upgrade")
        .await
        .expect("proxied GET");
    publish(addr, APP, "kept", "{}").await.expect("publish");
    match tick(&mut ws).await {
        Read::Json(_) => {}
        other => panic!("the kept socket: {other:?}"),
    }

    // A later upgrade with the config fixed goes through.
    p.rewrite_config(&toml);
    p.signal("USR2");
    let new = Started(handed_over(&mut p).await);
    match closed(&mut ws).await {
        Read::Closed(4200) => {}
        other => panic!("the kept socket at the hand-over: {other:?}"),
    }
    let status = p.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "old process: {status}; log:\n{}", p.log());
    assert_eq!(status_pid(admin).await, new.0);
    new.stop().await;
}

#[tokio::test]
async fn reload_removing_an_app_closes_only_its_sockets() {
    let up = upstream::start().await;
    let mut p = binary::start(
        &config(&up.url(), &[APP, OTHER]).to_string(),
        &["plain", "admin"],
    )
    .await;
    let addr = p.plain.expect("plain");
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for i in 0..3 {
        removed.push(
            subscribed(addr, APP.1, "news")
                .await
                .expect("socket")
                .expect("open"),
        );
        kept.push(
            subscribed(addr, OTHER.1, &format!("news-{i}"))
                .await
                .expect("socket")
                .expect("open"),
        );
    }

    p.rewrite_config(&config(&up.url(), &[OTHER]).to_string());
    p.signal("HUP");
    p.wait_log("the reload", |v| {
        v["fields"]["message"] == "configuration reloaded"
    })
    .await;
    for (i, ws) in removed.iter_mut().enumerate() {
        match closed(ws).await {
            Read::Closed(code) => assert_eq!(code, 4200, "removed app's socket {i}"),
            other => panic!("removed app's socket {i}: {other:?}"),
        }
    }
    // The other app's sockets stayed open and still receive.
    for (i, ws) in kept.iter_mut().enumerate() {
        publish(addr, OTHER, &format!("news-{i}"), "{\"after\":true}")
            .await
            .expect("publish");
        match tick(ws).await {
            Read::Json(v) => assert_eq!(v["data"], "{\"after\":true}"),
            other => panic!("kept app's socket {i}: {other:?}"),
        }
    }
    // The removed app is gone for new sockets and REST too.
    assert!(publish(addr, APP, "news", "{}").await.is_err());
    p.signal("TERM");
    let status = p.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}; log:\n{}", p.log());
}
