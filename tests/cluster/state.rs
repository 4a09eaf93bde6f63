//! Cluster-wide state: REST counts and channels equal from every node,
//! one presence membership per user across nodes (member added/removed
//! and their webhooks exactly once), and a SIGKILLed node reaped within
//! its lease (3 s in these nodes' config).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::hooks::Hooks;
use crate::nodes::{Redis, have_redis, nodes, nodes_with};
use http::Method;

use crate::support::{APP, Socket, channel_auth, data, query, rest, signed};

/// Asks `addr` for `path` until `want` holds of the answer (bounded:
/// 50 × 100 ms; the nodes write their share asynchronously).
pub(crate) async fn eventually(
    addr: SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
    want: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..50 {
        let (status, v) = query(addr, APP, path, extra).await;
        assert_eq!(status, 200, "{v}");
        if want(&v) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{addr}{path}: never as wanted; last answer {last}");
}

pub(crate) async fn subscription_count(addr: SocketAddr, channel: &str, n: u64) {
    let path = format!("/channels/{channel}");
    eventually(addr, &path, &[("info", "subscription_count")], |v| {
        v["subscription_count"] == n && v["occupied"] == (n > 0)
    })
    .await;
}

/// Joins `channel` as `user`; returns the cluster-wide member ids the
/// subscription_succeeded listed.
pub(crate) async fn join(s: &mut Socket, channel: &str, user: &str) -> Vec<String> {
    let cd = json!({"user_id": user, "user_info": {"name": user}}).to_string();
    let auth = channel_auth(APP, &s.socket_id, channel, Some(&cd));
    let m = s
        .subscribe_with(json!({"channel": channel, "auth": auth, "channel_data": cd}))
        .await;
    assert_eq!(m["event"], "pusher_internal:subscription_succeeded", "{m}");
    let p = &data(&m)["presence"];
    let mut ids: Vec<String> = p["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no ids: {m}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    assert_eq!(p["count"], ids.len(), "{m}");
    assert_eq!(p["hash"][user]["name"], user, "{m}");
    ids
}

async fn leave(s: &mut Socket, channel: &str) {
    s.send(json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}))
        .await;
}

pub(crate) async fn expect_member(s: &mut Socket, event: &str, channel: &str, user: &str) {
    let m = s.expect(event, Some(channel)).await;
    assert_eq!(data(&m)["user_id"], user, "{m}");
}

pub(crate) async fn users(addr: SocketAddr, channel: &str, want: &[&str]) {
    let path = format!("/channels/{channel}/users");
    eventually(addr, &path, &[], |v| {
        let mut got: Vec<&str> = v["users"]
            .as_array()
            .map(|a| a.iter().filter_map(|u| u["id"].as_str()).collect())
            .unwrap_or_default();
        got.sort();
        got == want
    })
    .await;
}

#[tokio::test]
async fn counts_and_channels_are_cluster_wide_from_every_node() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let n = nodes(&redis, "t-counts", 3).await;
    let mut subs = Vec::new();
    for addr in [n[0].addr(), n[0].addr(), n[1].addr(), n[2].addr()] {
        let mut s = Socket::connect(addr, APP.key).await;
        s.subscribe("news").await;
        subs.push(s);
    }
    let mut other = Socket::connect(n[2].addr(), APP.key).await;
    other.subscribe("other").await;
    for node in &n {
        subscription_count(node.addr(), "news", 4).await;
        subscription_count(node.addr(), "other", 1).await;
        eventually(node.addr(), "/channels", &[], |v| {
            v["channels"] == json!({"news": {}, "other": {}})
        })
        .await;
    }
    // One leaves on node 1: every node counts 3.
    subs.remove(2).close().await;
    for node in &n {
        subscription_count(node.addr(), "news", 3).await;
    }
    for s in subs {
        s.close().await;
    }
    for node in &n {
        subscription_count(node.addr(), "news", 0).await;
        eventually(node.addr(), "/channels", &[], |v| {
            v["channels"] == json!({"other": {}})
        })
        .await;
    }
}

#[tokio::test]
async fn one_user_on_two_nodes_is_one_member_and_webhooks_go_out_once() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let hooks = Hooks::start().await;
    let n = nodes_with(&redis, "t-presence", 3, Some(&hooks.url())).await;
    let room = "presence-room";
    let mut obs = Socket::connect(n[2].addr(), APP.key).await;
    assert_eq!(join(&mut obs, room, "obs").await, ["obs"]);

    // The user's first tab, on node 0: a new member everywhere.
    let mut tab1 = Socket::connect(n[0].addr(), APP.key).await;
    assert_eq!(join(&mut tab1, room, "u").await, ["obs", "u"]);
    expect_member(&mut obs, "pusher_internal:member_added", room, "u").await;
    // Its second tab, on node 1: the same member, announced to no one.
    let mut tab2 = Socket::connect(n[1].addr(), APP.key).await;
    assert_eq!(join(&mut tab2, room, "u").await, ["obs", "u"]);
    for node in &n {
        users(node.addr(), room, &["obs", "u"]).await;
        let path = format!("/channels/{room}");
        eventually(
            node.addr(),
            &path,
            &[("info", "user_count,subscription_count")],
            |v| v["user_count"] == 2 && v["subscription_count"] == 3,
        )
        .await;
    }
    obs.ping_pong().await;
    tab1.ping_pong().await;

    // The first tab leaves: u is still a member (tab 2).
    leave(&mut tab1, room).await;
    for node in &n {
        let path = format!("/channels/{room}");
        eventually(node.addr(), &path, &[("info", "subscription_count")], |v| {
            v["subscription_count"] == 2
        })
        .await;
        users(node.addr(), room, &["obs", "u"]).await;
    }
    // The last tab leaves: one member_removed, then nothing.
    leave(&mut tab2, room).await;
    expect_member(&mut obs, "pusher_internal:member_removed", room, "u").await;
    for node in &n {
        users(node.addr(), room, &["obs"]).await;
    }
    obs.ping_pong().await;
    leave(&mut obs, room).await;
    hooks.wait_for("channel_vacated", room, None).await;
    hooks.wait_for("member_removed", room, Some("obs")).await;
    // Anything sent twice would have arrived within a batch window or two.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for (name, user) in [
        ("channel_occupied", None),
        ("member_added", Some("obs")),
        ("member_added", Some("u")),
        ("member_removed", Some("u")),
        ("member_removed", Some("obs")),
        ("channel_vacated", None),
    ] {
        assert_eq!(hooks.count(name, room, user), 1, "{name} {user:?}");
    }
    obs.ping_pong().await;
}

#[tokio::test]
async fn a_killed_node_is_reaped_within_its_lease() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let hooks = Hooks::start().await;
    let n = nodes_with(&redis, "t-reap", 3, Some(&hooks.url())).await;
    let room = "presence-room";
    let mut obs0 = Socket::connect(n[0].addr(), APP.key).await;
    let mut obs2 = Socket::connect(n[2].addr(), APP.key).await;
    join(&mut obs0, room, "obs0").await;
    join(&mut obs2, room, "obs2").await;
    expect_member(&mut obs0, "pusher_internal:member_added", room, "obs2").await;
    let mut victim = Socket::connect(n[1].addr(), APP.key).await;
    join(&mut victim, room, "victim").await;
    victim.subscribe("only-on-1").await;
    for s in [&mut obs0, &mut obs2] {
        expect_member(s, "pusher_internal:member_added", room, "victim").await;
    }
    for node in [&n[0], &n[2]] {
        subscription_count(node.addr(), "only-on-1", 1).await;
        users(node.addr(), room, &["obs0", "obs2", "victim"]).await;
    }

    n[1].proc.signal("KILL");
    // The lease (3 s) runs out, a heartbeat (1 s) later a survivor reaps.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for s in [&mut obs0, &mut obs2] {
        expect_member(s, "pusher_internal:member_removed", room, "victim").await;
    }
    for node in [&n[0], &n[2]] {
        users(node.addr(), room, &["obs0", "obs2"]).await;
        subscription_count(node.addr(), "only-on-1", 0).await;
        let path = format!("/channels/{room}");
        eventually(node.addr(), &path, &[("info", "subscription_count")], |v| {
            v["subscription_count"] == 2
        })
        .await;
    }
    hooks.wait_for("channel_vacated", "only-on-1", None).await;
    hooks.wait_for("member_removed", room, Some("victim")).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(hooks.count("member_removed", room, Some("victim")), 1);
    assert_eq!(hooks.count("channel_vacated", "only-on-1", None), 1);
    for s in [&mut obs0, &mut obs2] {
        s.ping_pong().await;
    }
    drop(victim);
}

#[tokio::test]
async fn terminate_connections_closes_the_users_sockets_on_every_node() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let n = nodes(&redis, "t-terminate", 2).await;
    let room = "presence-room";
    let mut obs = Socket::connect(n[0].addr(), APP.key).await;
    join(&mut obs, room, "obs").await;
    let mut tab = Socket::connect(n[1].addr(), APP.key).await;
    join(&mut tab, room, "t").await;
    expect_member(&mut obs, "pusher_internal:member_added", room, "t").await;
    // Asked on node 0, the user's socket on node 1 is closed.
    let path = format!("/apps/{}/users/t/terminate_connections", APP.id);
    let uri = signed(APP, &Method::POST, &path, &[], "{}");
    let (status, v) = rest(n[0].addr(), Method::POST, &uri, "{}").await;
    assert_eq!(status, 200, "{v}");
    expect_member(&mut obs, "pusher_internal:member_removed", room, "t").await;
    for node in &n {
        users(node.addr(), room, &["obs"]).await;
    }
    drop(tab);
}

#[tokio::test]
async fn a_drained_node_removes_its_members_once() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let hooks = Hooks::start().await;
    let mut n = nodes_with(&redis, "t-drain", 2, Some(&hooks.url())).await;
    let room = "presence-room";
    let mut obs = Socket::connect(n[0].addr(), APP.key).await;
    join(&mut obs, room, "obs").await;
    let mut leaving = Socket::connect(n[1].addr(), APP.key).await;
    join(&mut leaving, room, "leaving").await;
    expect_member(&mut obs, "pusher_internal:member_added", room, "leaving").await;

    // SIGTERM: the node gives up its lease and removes its own share; its
    // sockets' later goodbyes and the lease running out add nothing.
    n[1].proc.signal("TERM");
    expect_member(&mut obs, "pusher_internal:member_removed", room, "leaving").await;
    users(n[0].addr(), room, &["obs"]).await;
    let _ = n[1].proc.wait_exit(Duration::from_secs(15)).await;
    // Past the lease (3 s) and a heartbeat: no reaper announces it again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    obs.ping_pong().await;
    assert_eq!(hooks.count("member_removed", room, Some("leaving")), 1);
    drop(leaving);
}
