//! The cluster's state after things go wrong: Redis restarted empty (the
//! nodes write their share again, silently), a node reaped while alive
//! (stopped past its lease: it announces its members again, webhooks
//! consistent), and a drain whose clients reconnect elsewhere without a
//! presence flap for a user with a tab on another node.

use std::time::Duration;

use serde_json::json;

use crate::hooks::Hooks;
use crate::nodes::{Redis, have_redis, nodes_with};
use crate::state::{expect_member, join, subscription_count, users};
use crate::support::{APP, Socket};

#[tokio::test]
async fn redis_restarted_empty_gets_every_nodes_state_again() {
    if !have_redis() {
        return;
    }
    let mut redis = Redis::start().await;
    let hooks = Hooks::start().await;
    let mut n = nodes_with(&redis, "t-flushed", 2, Some(&hooks.url())).await;
    let room = "presence-room";
    let mut obs = Socket::connect(n[0].addr(), APP.key).await;
    join(&mut obs, room, "obs").await;
    let mut u = Socket::connect(n[1].addr(), APP.key).await;
    join(&mut u, room, "u").await;
    u.subscribe("news").await;
    expect_member(&mut obs, "pusher_internal:member_added", room, "u").await;
    for node in &n {
        users(node.addr(), room, &["obs", "u"]).await;
        subscription_count(node.addr(), "news", 1).await;
    }

    // Without persistence a restarted Redis is empty.
    redis.stop().await;
    for node in &mut n {
        node.wait_link("cluster link down").await;
    }
    redis.restart().await;
    for node in &mut n {
        node.wait_link("cluster link up again").await;
    }
    for node in &n {
        users(node.addr(), room, &["obs", "u"]).await;
        subscription_count(node.addr(), "news", 1).await;
    }
    // A newcomer sees both nodes' members; nobody heard a change.
    let mut v = Socket::connect(n[0].addr(), APP.key).await;
    assert_eq!(join(&mut v, room, "v").await, ["obs", "u", "v"]);
    expect_member(&mut obs, "pusher_internal:member_added", room, "v").await;
    obs.ping_pong().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(hooks.count("member_added", room, Some("u")), 1);
    assert_eq!(hooks.count("member_removed", room, None), 0);
    assert_eq!(hooks.count("channel_occupied", "news", None), 1);
    assert_eq!(hooks.count("channel_vacated", "news", None), 0);
}

#[tokio::test]
async fn a_node_reaped_while_alive_announces_its_members_again() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let hooks = Hooks::start().await;
    let n = nodes_with(&redis, "t-stopped", 2, Some(&hooks.url())).await;
    let room = "presence-room";
    let mut obs = Socket::connect(n[0].addr(), APP.key).await;
    join(&mut obs, room, "obs").await;
    let mut u = Socket::connect(n[1].addr(), APP.key).await;
    join(&mut u, room, "u").await;
    u.subscribe("only-on-1").await;
    expect_member(&mut obs, "pusher_internal:member_added", room, "u").await;
    subscription_count(n[0].addr(), "only-on-1", 1).await;

    // Stopped past its lease (3 s): node 0 reaps it.
    n[1].proc.signal("STOP");
    tokio::time::sleep(Duration::from_secs(2)).await;
    expect_member(&mut obs, "pusher_internal:member_removed", room, "u").await;
    users(n[0].addr(), room, &["obs"]).await;
    subscription_count(n[0].addr(), "only-on-1", 0).await;
    hooks.wait_for("member_removed", room, Some("u")).await;

    // Alive after all: its members and subscriptions come back, announced.
    n[1].proc.signal("CONT");
    expect_member(&mut obs, "pusher_internal:member_added", room, "u").await;
    users(n[0].addr(), room, &["obs", "u"]).await;
    subscription_count(n[0].addr(), "only-on-1", 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    obs.ping_pong().await;
    assert_eq!(hooks.count("member_added", room, Some("u")), 2);
    assert_eq!(hooks.count("member_removed", room, Some("u")), 1);
    assert_eq!(hooks.count("channel_occupied", "only-on-1", None), 2);
    assert_eq!(hooks.count("channel_vacated", "only-on-1", None), 1);
    // Its socket never noticed: it still answers.
    pong_after_any(&mut u).await;
}

/// A ping answered, whatever frames were queued before the pong.
async fn pong_after_any(s: &mut Socket) {
    s.send(json!({"event": "pusher:ping", "data": {}})).await;
    // Bounded: a few presence frames at most before the pong.
    for _ in 0..10 {
        if s.next().await["event"] == "pusher:pong" {
            return;
        }
    }
    panic!("no pong");
}

#[tokio::test]
async fn a_drain_hands_users_over_without_a_presence_flap() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let hooks = Hooks::start().await;
    let mut n = nodes_with(&redis, "t-handoff", 3, Some(&hooks.url())).await;
    let room = "presence-room";
    let mut obs = Socket::connect(n[0].addr(), APP.key).await;
    join(&mut obs, room, "obs").await;
    let mut tab1 = Socket::connect(n[1].addr(), APP.key).await;
    join(&mut tab1, room, "u").await;
    expect_member(&mut obs, "pusher_internal:member_added", room, "u").await;
    let mut tab2 = Socket::connect(n[2].addr(), APP.key).await;
    join(&mut tab2, room, "u").await;
    for node in &n {
        users(node.addr(), room, &["obs", "u"]).await;
    }

    // Node 1 drains: its socket is told to reconnect (4200) and does, to
    // node 0; u is a member throughout (tab 2).
    n[1].proc.signal("TERM");
    assert_eq!(tab1.close_code().await, Some(4200));
    let mut again = Socket::connect(n[0].addr(), APP.key).await;
    assert_eq!(join(&mut again, room, "u").await, ["obs", "u"]);
    let _ = n[1].proc.wait_exit(Duration::from_secs(15)).await;
    // Past the lease (3 s) and a heartbeat: nothing more is announced.
    tokio::time::sleep(Duration::from_secs(4)).await;
    obs.ping_pong().await;
    for node in [&n[0], &n[2]] {
        users(node.addr(), room, &["obs", "u"]).await;
    }
    assert_eq!(hooks.count("member_added", room, Some("u")), 1);
    assert_eq!(hooks.count("member_removed", room, Some("u")), 0);
    drop(tab2);
}
