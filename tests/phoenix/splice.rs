//! postgres_changes splice: portico A relays a topic to portico B acting as
//! the upstream Supabase Realtime (B runs `postgres_changes = "accept"`).

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn splice_relays_both_ways_and_errors_when_upstream_drops() {
    let upstream = start(supabase().set("supabase.postgres_changes", "accept")).await;
    let edge = start(supabase().set(
        "supabase.upstream",
        format!("ws://{}/realtime/v1", upstream.plain()),
    ))
    .await;
    let mut c = connect(edge.plain(), "2.0.0", &anon()).await;
    let pg = json!({"config":{"broadcast":{"self":true,"ack":true},"postgres_changes":[{"event":"*","schema":"public","table":"t"}]}});
    let (jr, r) = c.join("realtime:db", pg).await;
    assert_eq!(r.payload["status"], "ok", "{r:?}");
    assert_eq!(r.payload["response"]["postgres_changes"][0]["id"], 1);
    assert_eq!(r.payload["response"]["postgres_changes"][0]["table"], "t");
    c.expect_event("presence_state").await;

    // Client heartbeats are answered by the edge itself.
    c.send(None, "hb", "phoenix", "heartbeat", json!({})).await;
    assert_eq!(c.expect_event("phx_reply").await.r#ref, json!("hb"));

    // Upstream → client: a REST broadcast on the upstream reaches the client.
    let body = json!({"messages":[{"topic":"db","event":"ping","payload":{"n":1}}]}).to_string();
    let key = anon();
    let (status, _, _) = http(
        upstream.plain(),
        "POST",
        "/realtime/v1/api/broadcast",
        &[("apikey", &key), ("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 202);
    match c.recv_any().await {
        Some(Err(bin)) => assert!(bin.ends_with(b"{\"n\":1}"), "{bin:?}"),
        Some(Ok(m)) => assert_eq!(m.payload["payload"], json!({"n":1})),
        None => panic!("closed"),
    }

    // Client → upstream: a broadcast goes up, comes back as self + ack.
    c.send(
        Some(&jr),
        "20",
        "realtime:db",
        "broadcast",
        json!({"type":"broadcast","event":"e","payload":{"up":true}}),
    )
    .await;
    let mut seen = (false, false);
    for _ in 0..2 {
        let m = c.recv().await;
        match m.event.as_str() {
            "phx_reply" => seen.0 = m.r#ref == json!("20"),
            "broadcast" => seen.1 = m.payload["payload"] == json!({"up":true}),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(seen, (true, true));

    // The upstream goes away: phx_error on the spliced topic, so the client rejoins.
    drop(upstream);
    let e = c.expect_event("phx_error").await;
    assert_eq!(e.topic, "realtime:db");
    assert_eq!(e.join_ref, json!(jr));
}

#[tokio::test]
async fn splice_to_a_dead_upstream_refuses_the_join() {
    let edge = start(supabase().set("supabase.upstream", "ws://127.0.0.1:9/realtime/v1")).await;
    let mut c = connect(edge.plain(), "1.0.0", &anon()).await;
    let (_, r) = c
        .join(
            "realtime:db",
            json!({"config":{"postgres_changes":[{"event":"INSERT","schema":"public"}]}}),
        )
        .await;
    assert_eq!(r.payload["status"], "error");
    assert!(
        r.payload["response"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("UpstreamUnavailable"),
        "{r:?}"
    );
}
