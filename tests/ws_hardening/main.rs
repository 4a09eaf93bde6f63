//! WebSocket hardening of both hub fronts — Pusher on `/app/{key}` and
//! Supabase Realtime on `/realtime/v1/websocket` — against the real edge
//! in-process (`../common/inproc.rs`) on loopback.
//!
//! The client side is raw TCP: a hand-written handshake and a small masked
//! frame encoder ([`raw`]), because a WebSocket library validates UTF-8 and
//! close codes itself and would never send the frames under test.
//!
//! - handshake: a bad `Sec-WebSocket-Key` is 400, a bad or missing
//!   `Sec-WebSocket-Version` is 426 naming version 13, `Upgrade: h2c` 400.
//! - frames: invalid UTF-8 (also split across fragments) closes 1007, a
//!   close code invalid on the wire (RFC 6455 §7.4) is answered with 1002.
//! - backpressure: a burst of requests is answered in full, never evicted.
//!
//! Every case runs [`RUNS`] times: an answer that varies counts as wrong.
//! Every wait is bounded.

#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/config.rs"]
mod config;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/inproc.rs"]
mod inproc;
mod raw;

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::{Value, json};

use raw::{Ended, Frame, Ws, handshake};

/// Each case, this many times.
const RUNS: usize = 3;
/// Upper bound for a single wait.
const WAIT: Duration = Duration::from_secs(10);

const PUSHER: &str = "/app/app-key?protocol=7";
/// An app with `max_subscriptions`, for the refusals past it.
const PUSHER_CAPPED: &str = "/app/capped-key?protocol=7";
const SUPABASE: &str = "/realtime/v1/websocket?apikey=sb_publishable_test&vsn=2.0.0";

const CONFIG: &str = r#"
[log]
access = false
level = "warn"

[[apps]]
id = "app-id"
key = "app-key"
secret = "app-secret"

[[apps]]
id = "capped-id"
key = "capped-key"
secret = "capped-secret"
max_subscriptions = 100

[supabase]
jwt_secrets = ["super-secret-jwt-token-with-at-least-32-characters-long"]
api_keys = { sb_publishable_test = "anon" }

[supabase.limits]
join_error_delay = "0s"
handshake_error_delay = "0s"
"#;

async fn start() -> inproc::Inproc {
    let config = config::plain()
        .set("upstream.url", "http://127.0.0.1:9")
        .with(CONFIG);
    inproc::start(&config.to_string(), &[]).await
}

/// Both fronts' WebSocket paths.
const FRONTS: [&str; 2] = [PUSHER, SUPABASE];

/// A socket on `path`, past the handshake and (Pusher) the
/// `connection_established`.
async fn open(addr: SocketAddr, path: &str) -> Ws {
    let (status, head, ws) = handshake(addr, path, &raw::good_headers()).await;
    assert_eq!(status, 101, "{path}: {head}");
    let mut ws = ws;
    if path.starts_with("/app/") {
        let hello = ws.next_json().await.expect("connection_established");
        assert_eq!(hello["event"], "pusher:connection_established", "{hello}");
    }
    ws
}

// ---------------------------------------------------------------- handshake

#[tokio::test]
async fn a_key_that_is_not_16_bytes_of_base64_is_400() {
    let e = start().await;
    for path in FRONTS {
        for key in [
            Some("abc"),
            // 20 bytes.
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            // 24 characters, not base64.
            Some("!!!!!!!!!!!!!!!!!!!!!!=="),
            None,
        ] {
            for _ in 0..RUNS {
                let mut headers = raw::good_headers();
                headers.retain(|(n, _)| *n != "Sec-WebSocket-Key");
                if let Some(k) = key {
                    headers.push(("Sec-WebSocket-Key", k.to_string()));
                }
                let (status, head, _) = handshake(e.plain(), path, &headers).await;
                assert_eq!(status, 400, "{path} key {key:?}: {head}");
            }
        }
    }
}

#[tokio::test]
async fn a_missing_or_unsupported_version_is_426_naming_13() {
    let e = start().await;
    for path in FRONTS {
        for version in [None, Some("8"), Some("14"), Some("")] {
            for _ in 0..RUNS {
                let mut headers = raw::good_headers();
                headers.retain(|(n, _)| *n != "Sec-WebSocket-Version");
                if let Some(v) = version {
                    headers.push(("Sec-WebSocket-Version", v.to_string()));
                }
                let (status, head, _) = handshake(e.plain(), path, &headers).await;
                assert_eq!(status, 426, "{path} version {version:?}: {head}");
                assert_eq!(
                    raw::header(&head, "sec-websocket-version").as_deref(),
                    Some("13"),
                    "{path} version {version:?}: {head}"
                );
            }
        }
    }
}

#[tokio::test]
async fn upgrade_h2c_on_a_hub_path_is_400() {
    let e = start().await;
    for path in FRONTS {
        for _ in 0..RUNS {
            let headers = vec![
                ("Connection", "Upgrade, HTTP2-Settings".to_string()),
                ("Upgrade", "h2c".to_string()),
                ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA".to_string()),
            ];
            let (status, head, _) = handshake(e.plain(), path, &headers).await;
            assert_eq!(status, 400, "{path}: {head}");
        }
    }
}

#[tokio::test]
async fn a_plain_get_is_still_426() {
    let e = start().await;
    for path in FRONTS {
        let (status, head, _) = handshake(e.plain(), path, &[]).await;
        assert_eq!(status, 426, "{path}: {head}");
        assert_eq!(
            raw::header(&head, "sec-websocket-version").as_deref(),
            Some("13")
        );
    }
}

// ------------------------------------------------------------------- frames

/// Invalid UTF-8 in text messages: whole, and split across fragments.
fn bad_utf8() -> Vec<(&'static str, Vec<Frame>)> {
    vec![
        ("0xFF", vec![Frame::text(b"{\"event\":\"\xFF\"}")]),
        ("overlong", vec![Frame::text(b"{\"event\":\"\xC0\xAF\"}")]),
        (
            "surrogate",
            vec![Frame::text(b"{\"event\":\"\xED\xA0\x80\"}")],
        ),
        (
            "split surrogate",
            vec![
                Frame::fragment(raw::TEXT, b"{\"event\":\"\xED", false),
                Frame::fragment(raw::CONTINUATION, b"\xA0\x80\"}", true),
            ],
        ),
        (
            "split bad continuation",
            vec![
                Frame::fragment(raw::TEXT, b"{\"event\":\"\xF0\x9F", false),
                Frame::fragment(raw::CONTINUATION, b"(\"}", true),
            ],
        ),
    ]
}

#[tokio::test]
async fn invalid_utf8_closes_1007() {
    let e = start().await;
    for path in FRONTS {
        for (what, frames) in bad_utf8() {
            for _ in 0..RUNS {
                let mut ws = open(e.plain(), path).await;
                for f in &frames {
                    ws.send(f).await;
                }
                assert_eq!(
                    ws.until_close().await,
                    Ended::Close(Some(1007)),
                    "{path}: {what}"
                );
            }
        }
    }
}

#[tokio::test]
async fn valid_utf8_split_inside_a_character_is_accepted() {
    let e = start().await;
    let ping = "{\"event\":\"pusher:ping\",\"data\":{\"x\":\"é€😀\"}}".as_bytes();
    let cut = ping.iter().position(|&b| b == 0xE2).unwrap() + 1;
    for _ in 0..RUNS {
        let mut ws = open(e.plain(), PUSHER).await;
        ws.send(&Frame::fragment(raw::TEXT, &ping[..cut], false))
            .await;
        ws.send(&Frame::fragment(raw::CONTINUATION, &ping[cut..], true))
            .await;
        let pong = ws.next_json().await.expect("pong");
        assert_eq!(pong["event"], "pusher:pong", "{pong}");
    }
}

#[tokio::test]
async fn a_close_code_invalid_on_the_wire_is_answered_1002() {
    let e = start().await;
    for path in FRONTS {
        for code in [1005u16, 999, 0, 1004, 1006, 1015, 1016, 2000, 2999, 5000] {
            for _ in 0..RUNS {
                let mut ws = open(e.plain(), path).await;
                ws.send(&Frame::close(code, b"")).await;
                assert_eq!(
                    ws.until_close().await,
                    Ended::Close(Some(1002)),
                    "{path}: close code {code}"
                );
            }
        }
        // A close payload of one byte cannot hold a code.
        for _ in 0..RUNS {
            let mut ws = open(e.plain(), path).await;
            ws.send(&Frame::new(raw::CLOSE, vec![3], true)).await;
            assert_eq!(
                ws.until_close().await,
                Ended::Close(Some(1002)),
                "{path}: one-byte close"
            );
        }
    }
}

#[tokio::test]
async fn a_valid_close_code_is_echoed() {
    let e = start().await;
    for path in FRONTS {
        for code in [1000u16, 1001, 3000, 4000] {
            for _ in 0..RUNS {
                let mut ws = open(e.plain(), path).await;
                ws.send(&Frame::close(code, b"bye")).await;
                assert_eq!(
                    ws.until_close().await,
                    Ended::Close(Some(code)),
                    "{path}: close code {code}"
                );
            }
        }
    }
}

// ------------------------------------------------------------- backpressure

/// Sends `requests` in writes of `burst` while counting the answers that
/// `answered` accepts, until `want` answers came; then checks the socket is
/// still open with `probe`, whose answer `answered` must also accept.
async fn burst(
    ws: Ws,
    requests: Vec<Vec<u8>>,
    burst: usize,
    want: usize,
    answered: impl Fn(&Value) -> bool,
    probe: Vec<u8>,
) -> Result<(), String> {
    let (mut rd, mut wr) = ws.split();
    let writer = tokio::spawn(async move {
        for chunk in requests.chunks(burst) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|r| Frame::text(r).encode()).collect();
            if wr.write(&bytes).await.is_err() {
                return wr;
            }
        }
        wr
    });
    let mut got = 0;
    let mut other = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got < want {
        let f = match tokio::time::timeout_at(deadline, rd.next_frame()).await {
            Err(_) => return Err(format!("timed out after {got} answers")),
            Ok(f) => f,
        };
        match f {
            Some(f) if f.opcode == raw::TEXT => {
                let v: Value = serde_json::from_slice(&f.payload).map_err(|e| e.to_string())?;
                if answered(&v) {
                    got += 1;
                } else {
                    other += 1;
                    if other > 10 {
                        return Err(format!("unexpected frame after {got} answers: {v}"));
                    }
                }
            }
            Some(f) if f.opcode == raw::CLOSE => {
                return Err(format!(
                    "closed {:?} after {got} answers",
                    raw::close_code(&f.payload)
                ));
            }
            Some(_) => {}
            None => return Err(format!("EOF after {got} answers")),
        }
    }
    let mut wr = tokio::time::timeout(WAIT, writer)
        .await
        .map_err(|_| "writer stuck".to_string())?
        .map_err(|e| e.to_string())?;
    wr.write(&Frame::text(&probe).encode())
        .await
        .map_err(|e| format!("socket closed after the burst: {e}"))?;
    loop {
        match tokio::time::timeout(WAIT, rd.next_frame()).await {
            Ok(Some(f)) if f.opcode == raw::TEXT => {
                let v: Value = serde_json::from_slice(&f.payload).map_err(|e| e.to_string())?;
                if answered(&v) {
                    return Ok(());
                }
            }
            Ok(Some(f)) if f.opcode == raw::CLOSE => {
                return Err("closed after the burst".into());
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err("EOF after the burst".into()),
            Err(_) => return Err("no answer to the probe".into()),
        }
    }
}

fn subscribes(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            json!({"event": "pusher:subscribe", "data": {"channel": format!("c-{i}")}})
                .to_string()
                .into_bytes()
        })
        .collect()
}

fn pusher_ping() -> Vec<u8> {
    br#"{"event":"pusher:ping","data":{}}"#.to_vec()
}

fn is_pong(v: &Value) -> bool {
    v["event"] == "pusher:pong"
}

#[tokio::test]
async fn twenty_thousand_subscribes_are_all_answered() {
    let e = start().await;
    for (path, cap) in [(PUSHER, None), (PUSHER_CAPPED, Some(100))] {
        for run in 0..RUNS {
            let ws = open(e.plain(), path).await;
            let (ok, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
            let answered = |v: &Value| match v["event"].as_str() {
                Some("pusher_internal:subscription_succeeded") => {
                    ok.fetch_add(1, Relaxed);
                    true
                }
                Some("pusher:subscription_error" | "pusher:error") => {
                    refused.fetch_add(1, Relaxed);
                    true
                }
                // The probe.
                Some("pusher:pong") => true,
                _ => false,
            };
            let r = burst(ws, subscribes(20_000), 500, 20_000, answered, pusher_ping()).await;
            let (ok, refused) = (ok.into_inner(), refused.into_inner());
            assert_eq!(r, Ok(()), "{path} run {run}: {ok} ok, {refused} refused");
            match cap {
                None => assert_eq!((ok, refused), (20_000, 0), "{path} run {run}"),
                Some(max) => assert_eq!((ok, refused), (max, 20_000 - max), "{path} run {run}"),
            }
        }
    }
}

#[tokio::test]
async fn ten_thousand_pings_in_one_burst_are_all_ponged() {
    let e = start().await;
    for run in 0..RUNS {
        let ws = open(e.plain(), PUSHER).await;
        let pings = vec![pusher_ping(); 10_000];
        let r = burst(ws, pings, 10_000, 10_000, is_pong, pusher_ping()).await;
        assert_eq!(r, Ok(()), "run {run}");
    }
}

fn is_phx_reply(v: &Value) -> bool {
    v[3] == "phx_reply" && v[4]["status"] == "ok"
}

#[tokio::test]
async fn ten_thousand_heartbeats_in_one_burst_are_all_answered() {
    let e = start().await;
    for run in 0..RUNS {
        let ws = open(e.plain(), SUPABASE).await;
        let beats: Vec<Vec<u8>> = (0..10_000)
            .map(|i| {
                json!([null, i.to_string(), "phoenix", "heartbeat", {}])
                    .to_string()
                    .into_bytes()
            })
            .collect();
        let probe = json!([null, "probe", "phoenix", "heartbeat", {}])
            .to_string()
            .into_bytes();
        let r = burst(ws, beats, 10_000, 10_000, is_phx_reply, probe).await;
        assert_eq!(r, Ok(()), "run {run}");
    }
}

#[tokio::test]
async fn twenty_thousand_pushes_are_all_replied() {
    let e = start().await;
    for run in 0..RUNS {
        let ws = open(e.plain(), SUPABASE).await;
        // A leave of a topic never joined is answered `ok` (Phoenix).
        let leaves: Vec<Vec<u8>> = (0..20_000)
            .map(|i| {
                json!([
                    null,
                    i.to_string(),
                    format!("realtime:t-{i}"),
                    "phx_leave",
                    {}
                ])
                .to_string()
                .into_bytes()
            })
            .collect();
        let probe = json!([null, "probe", "phoenix", "heartbeat", {}])
            .to_string()
            .into_bytes();
        let r = burst(ws, leaves, 500, 20_000, is_phx_reply, probe).await;
        assert_eq!(r, Ok(()), "run {run}");
    }
}
