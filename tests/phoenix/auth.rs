//! Handshake rejections, private channels, token refresh and expiry.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn handshake_rejections_are_http_errors_with_reasons() {
    let s = start(supabase()).await;
    let cases = [
        (
            "/realtime/v1/websocket?vsn=2.0.0",
            &WS_HEADERS[..],
            401,
            "No API key",
        ),
        (
            "/realtime/v1/websocket?apikey=nope&vsn=2.0.0",
            &WS_HEADERS[..],
            401,
            "not a valid JWT",
        ),
        (
            "/realtime/v1/websocket?apikey=sb_publishable_test&vsn=9.0.0",
            &WS_HEADERS[..],
            400,
            "unsupported protocol version",
        ),
        (
            "/realtime/v1/websocket?apikey=sb_publishable_test",
            &[][..],
            426,
            "upgrade required",
        ),
    ];
    for (path, headers, code, needle) in cases {
        let (status, _, body) = http(s.plain(), "GET", path, headers, b"").await;
        assert_eq!(status, code, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect(&body);
        assert!(v["error"].as_str().unwrap().contains(needle), "{body}");
    }
    let expired = token(json!({"role":"anon","exp": now() - 10}));
    let (status, _, body) = http(
        s.plain(),
        "GET",
        &format!("/realtime/v1/websocket?apikey={expired}"),
        &WS_HEADERS,
        b"",
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("Token has expired"), "{body}");
    let no_role = token(json!({"exp": now() + 10}));
    let (status, _, body) = http(
        s.plain(),
        "GET",
        &format!("/realtime/v1/websocket?apikey={no_role}"),
        &WS_HEADERS,
        b"",
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body.contains("Fields `role` and `exp` are required in JWT"),
        "{body}"
    );
}

#[tokio::test]
async fn kong_path_and_header_key() {
    let s = start(supabase().with("[[routes]]\npath = \"/socket/\"\nto = \"supabase\"\n")).await;
    let url = format!("ws://{}/socket/websocket?vsn=1.0.0", s.plain());
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("x-api-key", "sb_publishable_test".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect via /socket");
    use futures_util::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}"#.into(),
    ))
    .await
    .unwrap();
    let m = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(m.to_text().unwrap().contains("phx_reply"));
}

const RULES: &str = r#"
[[supabase.rules]]
topic = "user:{sub}"
roles = ["authenticated"]
broadcast = ["read", "write"]
presence = ["read", "write"]

[[supabase.rules]]
topic = "lobby"
broadcast = ["read"]
"#;

#[tokio::test]
async fn private_channels_allow_and_deny() {
    let s = start(supabase().with(RULES)).await;
    let u1 = token(json!({"role":"authenticated","sub":"u1","exp": now() + 3600}));
    let mut c = connect(s.plain(), "2.0.0", &u1).await;
    let (ju, r) = c
        .join("realtime:user:u1", join_payload(true, true, true))
        .await;
    assert_eq!(r.payload["status"], "ok", "{r:?}");
    c.expect_event("presence_state").await;
    let (_, r) = c
        .join("realtime:user:u2", join_payload(false, false, true))
        .await;
    assert_eq!(
        r.payload["response"]["reason"],
        "Unauthorized: You do not have permissions to read from this Channel topic: user:u2"
    );
    // Read-only: joined, but a broadcast with ack gets no reply (dropped).
    let (jl, r) = c
        .join("realtime:lobby", join_payload(true, true, true))
        .await;
    assert_eq!(r.payload["status"], "ok");
    c.expect_event("presence_state").await;
    c.send(
        Some(&jl),
        "50",
        "realtime:lobby",
        "broadcast",
        json!({"type":"broadcast","event":"x","payload":{}}),
    )
    .await;
    c.silent(Duration::from_millis(300)).await;
    // Public and private channels of the same name are separate.
    let mut p = connect(s.plain(), "2.0.0", &anon()).await;
    p.join("realtime:user:u1", join_payload(false, false, false))
        .await;
    p.expect_event("presence_state").await;
    c.send(
        Some(&ju),
        "60",
        "realtime:user:u1",
        "broadcast",
        json!({"type":"broadcast","event":"x","payload":{}}),
    )
    .await;
    let m = c.recv().await; // own broadcast (self) or ack
    assert!(m.event == "broadcast" || m.event == "phx_reply");
    p.silent(Duration::from_millis(300)).await;
    // service_role bypasses the rules.
    let mut svc = connect(s.plain(), "2.0.0", "sb_secret_test").await;
    let (_, r) = svc
        .join("realtime:anything", join_payload(false, false, true))
        .await;
    assert_eq!(r.payload["status"], "ok");
}

#[tokio::test]
async fn token_expiry_sends_system_then_close() {
    let s = start(supabase()).await;
    let mut c = connect(s.plain(), "2.0.0", &anon()).await;
    let short = token(json!({"role":"anon","exp": now() + 2}));
    let mut payload = join_payload(false, false, false);
    payload["access_token"] = json!(short);
    let (jr, r) = c.join("realtime:exp", payload).await;
    assert_eq!(r.payload["status"], "ok");
    c.expect_event("presence_state").await;
    let sys = c.expect_event("system").await;
    assert_eq!(sys.payload["status"], "error");
    assert!(
        sys.payload["message"]
            .as_str()
            .unwrap()
            .starts_with("Token has expired")
    );
    assert_eq!(sys.payload["channel"], "exp");
    let close = c.recv().await;
    assert_eq!(close.event, "phx_close");
    assert_eq!(close.join_ref, json!(jr));
}

#[tokio::test]
async fn token_refresh_extends_and_bad_token_closes() {
    let s = start(supabase()).await;
    let mut c = connect(s.plain(), "2.0.0", &anon()).await;
    let short = token(json!({"role":"anon","exp": now() + 2}));
    let mut payload = join_payload(false, false, false);
    payload["access_token"] = json!(short);
    let (jr, _) = c.join("realtime:r", payload).await;
    c.expect_event("presence_state").await;
    let long = token(json!({"role":"anon","exp": now() + 3600}));
    c.send(
        Some(&jr),
        "5",
        "realtime:r",
        "access_token",
        json!({"access_token": long}),
    )
    .await;
    c.silent(Duration::from_secs(3)).await; // no expiry any more
    c.send(
        Some(&jr),
        "6",
        "realtime:r",
        "access_token",
        json!({"access_token": "garbage.token.x"}),
    )
    .await;
    let sys = c.expect_event("system").await;
    assert_eq!(sys.payload["status"], "error");
    assert_eq!(c.recv().await.event, "phx_close");
}

/// The test config with `handshake_error_delay` set to `d`.
fn with_handshake_delay(d: &str) -> crate::config::ConfigText {
    supabase().set("supabase.limits.handshake_error_delay", d)
}

#[tokio::test]
async fn handshake_refusals_wait_the_configured_delay() {
    let s = start(with_handshake_delay("400ms")).await;
    let delay = Duration::from_millis(400);
    // A bad key: refused with the same status and reason, after the delay.
    let t0 = std::time::Instant::now();
    let (status, _, body) = http(
        s.plain(),
        "GET",
        "/realtime/v1/websocket?apikey=nope&vsn=2.0.0",
        &WS_HEADERS,
        b"",
    )
    .await;
    assert!(t0.elapsed() >= delay, "answered after {:?}", t0.elapsed());
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not a valid JWT"), "{body}");
    // A missing key too.
    let t0 = std::time::Instant::now();
    let (status, _, body) = http(
        s.plain(),
        "GET",
        "/realtime/v1/websocket?vsn=2.0.0",
        &WS_HEADERS,
        b"",
    )
    .await;
    assert!(t0.elapsed() >= delay, "answered after {:?}", t0.elapsed());
    assert_eq!(status, 401);
    assert!(body.contains("No API key"), "{body}");
}

#[tokio::test]
async fn a_delayed_refusal_holds_nothing_shared() {
    // One user at most, and refusals that would wait a minute.
    let s = start(with_handshake_delay("60s").set("supabase.limits.max_concurrent_users", 1)).await;
    let addr = s.plain();
    let refused = tokio::spawn(async move {
        http(
            addr,
            "GET",
            "/realtime/v1/websocket?apikey=nope&vsn=2.0.0",
            &WS_HEADERS,
            b"",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Meanwhile the one user slot is free and the hub serves a join.
    let mut c = connect(s.plain(), "2.0.0", &anon()).await;
    let (_, r) = c
        .join("realtime:busy", join_payload(false, false, false))
        .await;
    assert_eq!(r.payload["status"], "ok");
    assert!(!refused.is_finished(), "the refusal did not wait");
    // A drain answers the waiting refusal at once, reason intact.
    drop(s);
    let (status, _, body) = tokio::time::timeout(WAIT, refused)
        .await
        .expect("the drain cut the delay short")
        .expect("task");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not a valid JWT"), "{body}");
}

/// A fresh P-256 key: its JWK (with `kid`) and a signer of ES256 tokens.
fn es256(
    kid: &str,
) -> (
    serde_json::Value,
    impl Fn(serde_json::Value, &str) -> String,
) {
    use base64::Engine;
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty":"EC","crv":"P-256","kid":kid,"alg":"ES256","use":"sig",
        "x":b64(&raw[1..33]),"y":b64(&raw[33..65])});
    let der = kp.serialize_der();
    let sign = move |claims: serde_json::Value, kid: &str| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some(kid.to_string());
        jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_ec_der(&der)).unwrap()
    };
    (jwk, sign)
}

#[tokio::test]
async fn jwks_file_keys_verify_es256_tokens_by_kid() {
    let (jwk, sign) = es256("key-1");
    let path =
        std::env::temp_dir().join(format!("portico-phoenix-jwks-{}.json", std::process::id()));
    std::fs::write(&path, json!({"keys":[jwk]}).to_string()).unwrap();
    let cfg = supabase()
        .set("supabase.jwks_file", path.display().to_string())
        .with(RULES);
    let s = start(cfg).await;
    let _ = std::fs::remove_file(&path);
    let user = sign(
        json!({"role":"authenticated","sub":"u7","exp": now() + 3600}),
        "key-1",
    );
    // The handshake and a private join both verify the ES256 token.
    let mut c = connect(s.plain(), "2.0.0", &user).await;
    let (_, r) = c
        .join("realtime:user:u7", join_payload(false, false, true))
        .await;
    assert_eq!(r.payload["status"], "ok", "{r:?}");
    // A kid the set does not hold is refused with Supabase's wording.
    let stray = sign(json!({"role":"anon","exp": now() + 3600}), "key-9");
    let (status, _, body) = http(
        s.plain(),
        "GET",
        &format!("/realtime/v1/websocket?apikey={stray}&vsn=2.0.0"),
        &WS_HEADERS,
        b"",
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("Failed to generate JWT signer for key ID (kid) \\\"key-9\\\""),
        "{body}"
    );
    // HS tokens still verify with the secret.
    let mut h = connect(s.plain(), "1.0.0", &anon()).await;
    let (_, r) = h
        .join("realtime:pub", join_payload(false, false, false))
        .await;
    assert_eq!(r.payload["status"], "ok");
}
