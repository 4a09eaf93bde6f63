//! Presence, leave, duplicate joins and limits.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn presence_track_untrack_and_disconnect() {
    let s = start(supabase()).await;
    let mut a = connect(s.plain(), "2.0.0", &anon()).await;
    let mut b = connect(s.plain(), "1.0.0", &anon()).await;
    let mut pa = join_payload(false, false, false);
    pa["config"]["presence"]["key"] = json!("alice");
    let (ja, _) = a.join("realtime:p", pa).await;
    a.expect_event("presence_state").await;
    b.join("realtime:p", join_payload(false, false, false))
        .await;
    b.expect_event("presence_state").await;
    a.send(
        Some(&ja),
        "9",
        "realtime:p",
        "presence",
        json!({"type":"presence","event":"track","payload":{"user":"a"}}),
    )
    .await;
    let reply = a.recv().await;
    assert_eq!(
        (reply.event.as_str(), &reply.r#ref),
        ("phx_reply", &json!("9"))
    );
    let own = a.expect_event("presence_diff").await; // the tracker gets its own diff
    assert_eq!(own.payload["joins"]["alice"]["metas"][0]["user"], "a");
    let d = b.expect_event("presence_diff").await;
    assert_eq!(d.payload["joins"]["alice"]["metas"][0]["user"], "a");
    assert!(d.payload["joins"]["alice"]["metas"][0]["phx_ref"].is_string());
    // A later joiner sees the state.
    let mut c = connect(s.plain(), "2.0.0", &anon()).await;
    c.join("realtime:p", join_payload(false, false, false))
        .await;
    let st = c.expect_event("presence_state").await;
    assert_eq!(st.payload["alice"]["metas"][0]["user"], "a");
    // Disconnecting untracks.
    drop(a);
    let d = b.expect_event("presence_diff").await;
    assert_eq!(d.payload["leaves"]["alice"]["metas"][0]["user"], "a");
    // Non-map payload is refused with Supabase's reason.
    let (jc, _) = (String::from("1"), ());
    c.send(
        Some(&jc),
        "3",
        "realtime:p",
        "presence",
        json!({"type":"presence","event":"track","payload":[1]}),
    )
    .await;
    let r = c.expect_event("phx_reply").await;
    assert_eq!(
        r.payload["response"]["reason"],
        "Presence track payload must be a map"
    );
}

#[tokio::test]
async fn leave_and_duplicate_join() {
    let s = start(supabase()).await;
    let mut c = connect(s.plain(), "2.0.0", &anon()).await;
    let (j1, _) = c
        .join("realtime:d", join_payload(false, false, false))
        .await;
    c.expect_event("presence_state").await;
    let r = c.next_ref();
    c.send(
        Some(&r),
        &r,
        "realtime:d",
        "phx_join",
        join_payload(false, false, false),
    )
    .await;
    let close = c.recv().await;
    assert_eq!(
        (close.event.as_str(), &close.join_ref),
        ("phx_close", &json!(j1))
    );
    let ok = c.recv().await;
    assert_eq!((ok.event.as_str(), &ok.join_ref), ("phx_reply", &json!(r)));
    c.expect_event("presence_state").await;
    c.send(Some(&r), "99", "realtime:d", "phx_leave", json!({}))
        .await;
    let ok = c.recv().await;
    assert_eq!((ok.event.as_str(), &ok.r#ref), ("phx_reply", &json!("99")));
    assert_eq!(ok.payload["status"], "ok");
    let close = c.recv().await;
    assert_eq!(close.event, "phx_close");
}

#[tokio::test]
async fn channel_limit_and_event_rate() {
    let s = start(
        supabase()
            .set("supabase.limits.max_channels_per_socket", 2)
            .set("supabase.limits.max_events_per_second", 3),
    )
    .await;
    let mut c = connect(s.plain(), "2.0.0", &anon()).await;
    for t in ["realtime:a", "realtime:b"] {
        let (_, r) = c.join(t, join_payload(false, false, false)).await;
        assert_eq!(r.payload["status"], "ok");
        c.expect_event("presence_state").await;
    }
    let (_, r) = c
        .join("realtime:c", join_payload(false, false, false))
        .await;
    assert_eq!(
        r.payload["response"]["reason"],
        "ChannelRateLimitReached: Too many channels"
    );
    for i in 0..4 {
        c.send(
            Some("1"),
            &format!("r{i}"),
            "realtime:a",
            "broadcast",
            json!({"type":"broadcast","event":"e","payload":{}}),
        )
        .await;
    }
    let sys = c.expect_event("system").await;
    assert_eq!(sys.payload["message"], "Too many messages per second");
    assert_eq!(c.recv().await.event, "phx_close");
    c.silent(Duration::from_millis(200)).await;
}

async fn close_code(c: &mut Client) -> Option<u16> {
    use futures_util::StreamExt;
    for _ in 0..50 {
        match tokio::time::timeout(WAIT, c.ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f)))) => {
                return f.map(|f| u16::from(f.code));
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
    None
}

#[tokio::test]
async fn idle_socket_is_closed_with_1001() {
    let s = start(supabase().set("supabase.limits.idle_timeout", "1s")).await;
    let mut c = connect(s.plain(), "2.0.0", &anon()).await;
    assert_eq!(close_code(&mut c).await, Some(1001));
}

#[tokio::test]
async fn drain_closes_with_1012_so_clients_come_back() {
    let s = start(supabase()).await;
    let mut c = connect(s.plain(), "1.0.0", &anon()).await;
    c.join("realtime:x", join_payload(false, false, false))
        .await;
    drop(s);
    assert_eq!(close_code(&mut c).await, Some(1012));
}

#[tokio::test]
async fn rest_rate_limit_is_429() {
    let s = start(supabase().set("supabase.limits.max_events_per_second", 2)).await;
    let key = anon();
    let body = json!({"messages":[{"topic":"t","event":"e","payload":{}},{"topic":"t","event":"e","payload":{}},{"topic":"t","event":"e","payload":{}}]}).to_string();
    let (status, _, body) = http(
        s.plain(),
        "POST",
        "/realtime/v1/api/broadcast",
        &[("apikey", &key), ("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(body, r#"{"message":"You have exceeded your rate limit"}"#);
}

#[tokio::test]
async fn presence_calls_are_limited_per_channel() {
    let s = start(
        supabase()
            .set("supabase.limits.max_presence_events_per_channel", 2)
            .set("supabase.limits.presence_events_window", "1h"),
    )
    .await;
    let mut a = connect(s.plain(), "2.0.0", &anon()).await;
    let (ja, _) = a
        .join("realtime:pl", join_payload(false, false, false))
        .await;
    a.expect_event("presence_state").await;
    let (jo, _) = a
        .join("realtime:other", join_payload(false, false, false))
        .await;
    a.expect_event("presence_state").await;
    let track = |n: u32| json!({"type":"presence","event":"track","payload":{"n": n}});
    // Two calls (a track and an untrack) are within the budget.
    a.send(Some(&ja), "t1", "realtime:pl", "presence", track(1))
        .await;
    let r = a.expect_event("phx_reply").await;
    assert_eq!(
        (&r.r#ref, &r.payload["status"]),
        (&json!("t1"), &json!("ok"))
    );
    a.expect_event("presence_diff").await;
    a.send(
        Some(&ja),
        "t2",
        "realtime:pl",
        "presence",
        json!({"type":"presence","event":"untrack"}),
    )
    .await;
    let r = a.expect_event("phx_reply").await;
    assert_eq!(
        (&r.r#ref, &r.payload["status"]),
        (&json!("t2"), &json!("ok"))
    );
    a.expect_event("presence_diff").await;
    // The third: Supabase's system message, then the channel closes; the
    // call itself gets no reply.
    a.send(Some(&ja), "t3", "realtime:pl", "presence", track(3))
        .await;
    let sys = a.recv().await;
    assert_eq!(sys.event, "system", "{sys:?}");
    assert_eq!(sys.join_ref, json!(ja));
    assert_eq!(
        sys.payload,
        json!({"extension":"system","status":"error","message":"Client presence rate limit exceeded","channel":"pl"})
    );
    let close = a.recv().await;
    assert_eq!(
        (close.event.as_str(), &close.join_ref),
        ("phx_close", &json!(ja))
    );
    // Another channel of the same socket has its own budget.
    a.send(Some(&jo), "o1", "realtime:other", "presence", track(1))
        .await;
    let r = a.expect_event("phx_reply").await;
    assert_eq!(
        (&r.r#ref, &r.payload["status"]),
        (&json!("o1"), &json!("ok"))
    );
    // So does another socket on the same channel.
    let mut b = connect(s.plain(), "1.0.0", &anon()).await;
    let (jb, _) = b
        .join("realtime:pl", join_payload(false, false, false))
        .await;
    b.expect_event("presence_state").await;
    for i in 0..2 {
        let rf = format!("b{i}");
        b.send(Some(&jb), &rf, "realtime:pl", "presence", track(i))
            .await;
        let r = b.expect_event("phx_reply").await;
        assert_eq!((&r.r#ref, &r.payload["status"]), (&json!(rf), &json!("ok")));
    }
}
