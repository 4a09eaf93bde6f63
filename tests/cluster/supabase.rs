//! Supabase Realtime across nodes: Phoenix presence (a joining socket's
//! `presence_state` holds every node's metas, one key with one meta per
//! tracking socket wherever it is; each track/untrack reaches every
//! subscriber once as a `presence_diff`; a SIGKILLed node's metas leave
//! within its lease) and REST broadcast reaching another node's socket.

use std::time::Duration;

use serde_json::{Value, json};

use crate::nodes::{Redis, have_redis, nodes};
use crate::phoenix::{self, Client};

const TOPIC: &str = "realtime:lobby";

/// Joins [`TOPIC`] with presence `key`; returns the join ref and the
/// `presence_state` payload.
async fn join(c: &mut Client, key: &str) -> (String, Value) {
    let mut p = phoenix::join_payload(false, false, false);
    p["config"]["presence"]["key"] = json!(key);
    let (jr, reply) = c.join(TOPIC, p).await;
    assert_eq!(reply.payload["status"], "ok", "{:?}", reply.payload);
    let st = c.expect_event("presence_state").await;
    (jr, st.payload)
}

async fn presence(c: &mut Client, jr: &str, event: &str, payload: Value) {
    let r = c.next_ref();
    c.send(
        Some(jr),
        &r,
        TOPIC,
        "presence",
        json!({"type": "presence", "event": event, "payload": payload}),
    )
    .await;
}

/// The metas of `key` in a state or a diff side, sorted by their `n`.
fn metas(v: &Value, key: &str) -> Vec<Value> {
    let mut m: Vec<Value> = v[key]["metas"].as_array().cloned().unwrap_or_default();
    m.sort_by_key(|x| x["n"].as_str().unwrap_or_default().to_string());
    m
}

fn ns(v: &Value, key: &str) -> Vec<String> {
    metas(v, key)
        .iter()
        .map(|m| m["n"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The next `presence_diff`: its (joins, leaves).
async fn diff(c: &mut Client) -> (Value, Value) {
    let d = c.expect_event("presence_diff").await;
    (d.payload["joins"].clone(), d.payload["leaves"].clone())
}

#[tokio::test]
async fn presence_is_every_nodes_with_phoenix_semantics() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let n = nodes(&redis, "t-sb-presence", 3).await;
    let key = phoenix::anon();
    let mut a = phoenix::connect(n[0].addr(), "2.0.0", &key).await;
    let mut b = phoenix::connect(n[1].addr(), "1.0.0", &key).await;
    let mut c = phoenix::connect(n[2].addr(), "2.0.0", &key).await;
    let (ja, st) = join(&mut a, "alice").await;
    assert_eq!(st, json!({}));
    let (jb, _) = join(&mut b, "bob").await;
    let (jc, _) = join(&mut c, "alice").await;

    // alice on node 0: every subscriber (the tracker too) hears it once.
    presence(&mut a, &ja, "track", json!({"n": "a"})).await;
    for cl in [&mut a, &mut b, &mut c] {
        let (j, l) = diff(cl).await;
        assert_eq!(ns(&j, "alice"), ["a"], "{j}");
        assert_eq!(l, json!({}));
    }
    // alice again from node 2: a second meta under the same key.
    presence(&mut c, &jc, "track", json!({"n": "c"})).await;
    for cl in [&mut a, &mut b, &mut c] {
        let (j, _) = diff(cl).await;
        assert_eq!(ns(&j, "alice"), ["c"], "{j}");
    }
    presence(&mut b, &jb, "track", json!({"n": "b"})).await;
    for cl in [&mut a, &mut b, &mut c] {
        let (j, _) = diff(cl).await;
        assert_eq!(ns(&j, "bob"), ["b"], "{j}");
    }
    // A late joiner on any node gets every node's metas.
    let mut d = phoenix::connect(n[0].addr(), "1.0.0", &key).await;
    let (_, st) = join(&mut d, "dave").await;
    assert_eq!(ns(&st, "alice"), ["a", "c"], "{st}");
    assert_eq!(ns(&st, "bob"), ["b"], "{st}");
    let am = metas(&st, "alice");
    assert!(
        am[0]["phx_ref"].is_string() && am[0]["phx_ref"] != am[1]["phx_ref"],
        "{st}"
    );

    // Untrack on node 2: one leave of that meta, everywhere.
    presence(&mut c, &jc, "untrack", json!({})).await;
    for cl in [&mut a, &mut b, &mut c, &mut d] {
        let (j, l) = diff(cl).await;
        assert_eq!(j, json!({}));
        assert_eq!(ns(&l, "alice"), ["c"], "{l}");
    }
    // Nothing was announced twice.
    for cl in [&mut a, &mut b, &mut c, &mut d] {
        cl.silent(Duration::from_millis(300)).await;
    }

    // Node 1 is killed: bob's meta leaves within the lease (3 s).
    n[1].proc.signal("KILL");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for cl in [&mut a, &mut c, &mut d] {
        let (j, l) = diff(cl).await;
        assert_eq!(j, json!({}));
        assert_eq!(ns(&l, "bob"), ["b"], "{l}");
    }
    let mut e = phoenix::connect(n[2].addr(), "2.0.0", &key).await;
    let (_, st) = join(&mut e, "eve").await;
    assert_eq!(ns(&st, "alice"), ["a"], "{st}");
    assert!(st.get("bob").is_none(), "{st}");
    for cl in [&mut a, &mut c, &mut d] {
        cl.silent(Duration::from_millis(300)).await;
    }
    drop(b);
}

#[tokio::test]
async fn rest_broadcasts_reach_other_nodes() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let n = nodes(&redis, "t-sb-rest", 2).await;
    let key = phoenix::anon();
    let mut c = phoenix::connect(n[1].addr(), "1.0.0", &key).await;
    c.join("realtime:news", phoenix::join_payload(false, false, false))
        .await;
    c.expect_event("presence_state").await;
    let body = json!({"messages": [{"topic": "news", "event": "headline", "payload": {"n": 1}}]})
        .to_string();
    let (status, _, _) = phoenix::http(
        n[0].addr(),
        "POST",
        "/realtime/v1/api/broadcast",
        &[("apikey", &key), ("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 202);
    let m = c.expect_event("broadcast").await;
    assert_eq!(m.payload["event"], "headline");
    assert_eq!(m.payload["payload"], json!({"n": 1}));
    c.silent(Duration::from_millis(300)).await;
}
