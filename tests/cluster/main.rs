//! Several portico nodes sharing one Redis (`[cluster]`) are one hub: a
//! real `redis-server` on an ephemeral loopback port and real portico
//! processes (`nodes`), Pusher protocol 7 clients over WebSockets and the
//! signed REST API (`../pusher/support.rs`).
//!
//! - delivery across nodes exactly once and in publish order, with
//!   `socket_id` exclusion across nodes;
//! - client events (whisper) on a private channel across nodes;
//! - a Supabase broadcast reaching a node's Supabase subscribers;
//! - two deployments (prefixes) on one Redis never see each other;
//! - Redis stopped and restarted: local delivery goes on, the buffered
//!   cross-node copy is delivered once when the link is back;
//! - cluster-wide REST counts, presence across nodes, webhooks exactly
//!   once, a SIGKILLed node reaped within its lease (`state`);
//! - Supabase presence and REST broadcast across nodes (`supabase`);
//! - cache channels' last event on every node, REST publish `info`
//!   cluster-wide (`cache`);
//! - Redis restarted empty, a node reaped while alive (stopped past its
//!   lease), a drain handing users over without a presence flap
//!   (`recovery`).
//!
//! "Nothing more arrived" is proved without sleeping: a later message from
//! the same publisher, or a `pusher:ping` answered by the very next
//! `pusher:pong`. Skips (with a message) only when `redis-server` is not
//! installed.

#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../edge/support/binary.rs"]
mod binary;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/config.rs"]
mod config;
mod hooks;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/inproc.rs"]
mod inproc;
mod nodes;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../phoenix/support.rs"]
mod phoenix;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../pusher/support.rs"]
mod support;

mod cache;
mod recovery;
mod state;
mod supabase;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/wait.rs"]
mod wait;

use serde_json::{Value, json};

use inproc::TempDir;
use nodes::{Redis, have_redis, nodes};
use support::{APP, Socket, WAIT, publish, within};

/// Publishes `event` with `data` on `channel` through `node`'s REST API.
async fn rest_event(
    addr: std::net::SocketAddr,
    channel: &str,
    event: &str,
    d: &str,
    except: Option<&str>,
) {
    let mut body = json!({"name": event, "channel": channel, "data": d});
    if let Some(s) = except {
        body["socket_id"] = Value::String(s.to_string());
    }
    let (status, answer) = publish(addr, APP, &body).await;
    assert_eq!(status, 200, "{answer}");
}

/// The next message must be `event` on `channel` with data `d`.
async fn expect_data(s: &mut Socket, channel: &str, event: &str, d: &str) {
    let m = s.expect(event, Some(channel)).await;
    assert_eq!(m["data"], Value::String(d.to_string()), "{m}");
}

#[tokio::test]
async fn rest_publishes_reach_every_node_once_in_order_with_exclusion() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let n = nodes(&redis, "t-order", 3).await;
    let mut subs = Vec::new();
    for addr in [n[0].addr(), n[0].addr(), n[1].addr(), n[2].addr()] {
        let mut s = Socket::connect(addr, APP.key).await;
        s.subscribe("news").await;
        subs.push(s);
    }
    for i in 0..20 {
        rest_event(n[1].addr(), "news", "tick", &i.to_string(), None).await;
    }
    for s in &mut subs {
        for i in 0..20 {
            expect_data(s, "news", "tick", &i.to_string()).await;
        }
        s.ping_pong().await;
    }
    // Excluding a socket on node 2 from a publish made on node 0.
    let excluded = subs[3].socket_id.clone();
    rest_event(n[0].addr(), "news", "not-you", "x", Some(&excluded)).await;
    rest_event(n[0].addr(), "news", "marker", "m", None).await;
    for (i, s) in subs.iter_mut().enumerate() {
        if i != 3 {
            expect_data(s, "news", "not-you", "x").await;
        }
        expect_data(s, "news", "marker", "m").await;
        s.ping_pong().await;
    }
}

#[tokio::test]
async fn client_events_on_private_channels_cross_nodes() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let n = nodes(&redis, "t-whisper", 3).await;
    let mut socks = Vec::new();
    for node in &n {
        let mut s = Socket::connect(node.addr(), APP.key).await;
        s.subscribe_private(APP, "private-room").await;
        socks.push(s);
    }
    for i in 0..5 {
        socks[0]
            .send(json!({"event": "client-typing", "channel": "private-room", "data": {"n": i}}))
            .await;
    }
    for s in &mut socks[1..] {
        for i in 0..5 {
            let m = s.expect("client-typing", Some("private-room")).await;
            assert_eq!(m["data"], json!({"n": i}), "{m}");
        }
        s.ping_pong().await;
    }
    // The sender never gets its own client event, from any node.
    socks[0].ping_pong().await;
}

#[tokio::test]
async fn supabase_broadcasts_cross_nodes() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let n = nodes(&redis, "t-supabase", 2).await;
    // Each node's first socket: `phx.1` on both, so an exclusion of the
    // sender must not exclude the other node's socket of the same id.
    let mut a = phoenix::connect(n[0].addr(), "2.0.0", &phoenix::anon()).await;
    let mut b = phoenix::connect(n[1].addr(), "1.0.0", &phoenix::anon()).await;
    let mut c = phoenix::connect(n[1].addr(), "2.0.0", &phoenix::anon()).await;
    let join = phoenix::join_payload(false, false, false);
    let (ja, _) = a.join("realtime:room", join.clone()).await;
    a.expect_event("presence_state").await;
    for cl in [&mut b, &mut c] {
        cl.join("realtime:room", join.clone()).await;
        cl.expect_event("presence_state").await;
    }
    for i in 0..3 {
        let body = json!({"type": "broadcast", "event": "cursor", "payload": {"x": i}});
        a.send(
            Some(&ja),
            &format!("1{i}"),
            "realtime:room",
            "broadcast",
            body,
        )
        .await;
    }
    for cl in [&mut b, &mut c] {
        for i in 0..3 {
            let m = cl.expect_event("broadcast").await;
            assert_eq!(m.payload["payload"], json!({"x": i}), "{:?}", m.payload);
        }
    }
}

#[tokio::test]
async fn deployments_with_different_prefixes_never_see_each_other() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let blue = nodes(&redis, "blue", 2).await;
    let green = nodes(&redis, "green", 1).await;
    let mut b1 = Socket::connect(blue[1].addr(), APP.key).await;
    let mut g = Socket::connect(green[0].addr(), APP.key).await;
    b1.subscribe("news").await;
    g.subscribe("news").await;
    rest_event(blue[0].addr(), "news", "blue-only", "b", None).await;
    expect_data(&mut b1, "news", "blue-only", "b").await;
    // Green's own publish is the first thing green's subscriber sees.
    rest_event(green[0].addr(), "news", "green-only", "g", None).await;
    expect_data(&mut g, "news", "green-only", "g").await;
    g.ping_pong().await;
    b1.ping_pong().await;
}

#[tokio::test]
async fn redis_outage_local_delivery_goes_on_and_buffered_messages_arrive_once() {
    if !have_redis() {
        return;
    }
    let mut redis = Redis::start().await;
    let mut n = nodes(&redis, "t-outage", 2).await;
    let mut local = Socket::connect(n[0].addr(), APP.key).await;
    let mut remote = Socket::connect(n[1].addr(), APP.key).await;
    local.subscribe("news").await;
    remote.subscribe("news").await;
    rest_event(n[0].addr(), "news", "before", "0", None).await;
    expect_data(&mut local, "news", "before", "0").await;
    expect_data(&mut remote, "news", "before", "0").await;

    redis.stop().await;
    for node in &mut n {
        node.wait_link("cluster link down").await;
    }
    // Local delivery never waits on Redis.
    for i in 1..=3 {
        rest_event(n[0].addr(), "news", "during", &i.to_string(), None).await;
        expect_data(&mut local, "news", "during", &i.to_string()).await;
    }
    local.ping_pong().await;

    redis.restart().await;
    for node in &mut n {
        node.wait_link("cluster link up again").await;
    }
    // The buffered copies, once each and in order, then what follows.
    rest_event(n[0].addr(), "news", "after", "4", None).await;
    for i in 1..=3 {
        expect_data(&mut remote, "news", "during", &i.to_string()).await;
    }
    expect_data(&mut remote, "news", "after", "4").await;
    remote.ping_pong().await;
    expect_data(&mut local, "news", "after", "4").await;
    local.ping_pong().await;
}

#[tokio::test]
async fn the_checked_config_names_the_prefix_and_warns_at_the_default() {
    let dir = TempDir::new("cluster-check");
    let path = dir.path().join("portico.toml");
    let text = nodes::node_config("redis://:pw@127.0.0.1:6390/3", "portico");
    std::fs::write(&path, &text).expect("write config");
    let (status, out, err) =
        binary::run_cmd(&["check", "--config", path.to_str().unwrap()], dir.path()).await;
    assert!(status.success(), "{out}{err}");
    assert!(
        out.contains("cluster: redis redis://:<hidden>@127.0.0.1:6390/3"),
        "{out}"
    );
    assert!(out.contains("needs a restart"), "{out}");
    assert!(
        out.contains("warning: `cluster.prefix` is the default"),
        "{out}"
    );
    assert!(!out.contains(":pw@"), "{out}");
}
