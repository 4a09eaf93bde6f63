//! The Supabase Realtime front end to end: the real edge on 127.0.0.1:0 and
//! Phoenix clients speaking vsn 1.0.0 and 2.0.0 over real sockets.

mod auth;
mod channels;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/config.rs"]
mod config;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/inproc.rs"]
mod inproc;
mod splice;
mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[tokio::test]
async fn heartbeat_both_vsns() {
    let s = start(supabase()).await;
    let mut c = connect(s.plain(), "2.0.0", &anon()).await;
    c.send(None, "7", "phoenix", "heartbeat", json!({})).await;
    let m = c.recv().await;
    assert_eq!(
        (m.topic.as_str(), m.event.as_str()),
        ("phoenix", "phx_reply")
    );
    assert_eq!(m.r#ref, json!("7"));
    assert_eq!(m.payload, json!({"status":"ok","response":{}}));
    let mut c1 = connect(s.plain(), "1.0.0", &anon()).await;
    c1.send(None, "3", "phoenix", "heartbeat", json!({})).await;
    let m = c1.recv().await;
    assert_eq!(m.r#ref, json!("3"));
}

#[tokio::test]
async fn join_reply_and_presence_state() {
    let s = start(supabase()).await;
    let mut c = connect(s.plain(), "2.0.0", &anon()).await;
    let (jr, reply) = c
        .join("realtime:room1", join_payload(false, false, false))
        .await;
    assert_eq!(
        reply.payload,
        json!({"status":"ok","response":{"postgres_changes":[]}})
    );
    assert_eq!(reply.join_ref, json!(jr));
    let st = c.recv().await;
    assert_eq!(st.event, "presence_state");
    assert_eq!(st.join_ref, json!(jr));
    assert_eq!(st.payload, json!({}));
}

#[tokio::test]
async fn unmatched_topic_and_postgres_changes_refused() {
    let s = start(supabase()).await;
    let mut c = connect(s.plain(), "2.0.0", &anon()).await;
    let (_, r) = c.join("room1", json!({})).await;
    assert_eq!(
        r.payload,
        json!({"status":"error","response":{"reason":"unmatched topic"}})
    );
    let (_, r) = c
        .join(
            "realtime:db",
            json!({"config":{"postgres_changes":[{"event":"*","schema":"public"}]}}),
        )
        .await;
    assert_eq!(r.payload["status"], "error");
    assert!(
        r.payload["response"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("PostgresChangesUnsupported")
    );
}

#[tokio::test]
async fn broadcast_ack_self_and_cross_vsn() {
    let s = start(supabase()).await;
    let mut a = connect(s.plain(), "2.0.0", &anon()).await; // sender, self + ack
    let mut b = connect(s.plain(), "1.0.0", &anon()).await; // v1 receiver
    let mut d = connect(s.plain(), "2.0.0", &anon()).await; // v2 receiver
    let (ja, _) = a
        .join("realtime:room", join_payload(true, true, false))
        .await;
    a.expect_event("presence_state").await;
    b.join("realtime:room", join_payload(false, false, false))
        .await;
    b.expect_event("presence_state").await;
    d.join("realtime:room", join_payload(false, false, false))
        .await;
    d.expect_event("presence_state").await;

    // JSON text broadcast from a v2 client.
    let body = json!({"type":"broadcast","event":"cursor","payload":{"x":1}});
    a.send(Some(&ja), "10", "realtime:room", "broadcast", body.clone())
        .await;
    let mut got_ack = false;
    let mut got_self = false;
    for _ in 0..2 {
        let m = a.recv().await;
        match m.event.as_str() {
            "phx_reply" => {
                assert_eq!(m.r#ref, json!("10"));
                got_ack = true;
            }
            "broadcast" => {
                assert_eq!(m.payload, body);
                got_self = true;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(got_ack && got_self);
    let m = b.recv().await;
    assert_eq!((m.event.as_str(), &m.payload), ("broadcast", &body));
    assert_eq!(m.r#ref, serde_json::Value::Null);
    let m = d.recv().await;
    assert_eq!((m.event.as_str(), &m.payload), ("broadcast", &body));
    assert_eq!(m.join_ref, serde_json::Value::Null);

    // Kind-3 JSON broadcast (what realtime-js 2.x sends): v2 gets kind 4, v1 gets JSON.
    let mut k3 = vec![3u8, ja.len() as u8, 2, 13, 4, 0, 1];
    k3.extend_from_slice(ja.as_bytes());
    k3.extend_from_slice(b"11realtime:roommove{\"y\":2}");
    a.send_binary(k3).await;
    let m = b.recv().await;
    assert_eq!(
        m.payload,
        json!({"type":"broadcast","event":"move","payload":{"y":2}})
    );
    match d.recv_any().await {
        Some(Err(bin)) => assert_eq!(
            bin,
            b"\x04\x0d\x04\x00\x01realtime:roommove{\"y\":2}".to_vec()
        ),
        other => panic!("expected binary, got {other:?}"),
    }

    // Raw binary broadcast: v1 never sees it, v2 does.
    let mut raw = vec![3u8, ja.len() as u8, 2, 13, 4, 0, 0];
    raw.extend_from_slice(ja.as_bytes());
    raw.extend_from_slice(b"12realtime:roommove\x01\x04");
    a.send_binary(raw).await;
    match d.recv_any().await {
        Some(Err(bin)) => assert_eq!(
            bin,
            b"\x04\x0d\x04\x00\x00realtime:roommove\x01\x04".to_vec()
        ),
        other => panic!("expected binary, got {other:?}"),
    }
    b.silent(Duration::from_millis(300)).await;
}
