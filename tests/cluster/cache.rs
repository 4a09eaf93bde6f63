//! Cache channels across nodes (a subscriber on any node gets the last
//! event published on any node; `cache_miss` once, from the node the
//! subscriber is on, only when no node has one) and REST publish `info`
//! answered with cluster-wide counts.

use std::time::Duration;

use serde_json::{Value, json};

use crate::hooks::Hooks;
use crate::nodes::{Redis, have_redis, nodes, nodes_with};
use crate::state::{eventually, join, subscription_count};
use crate::support::{APP, Socket, publish};

#[tokio::test]
async fn a_cache_channels_last_event_is_every_nodes() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let hooks = Hooks::start().await;
    let n = nodes_with(&redis, "t-cache", 2, Some(&hooks.url())).await;
    // Published on node 0 while nobody anywhere listens.
    let body = json!({"name": "price", "channel": "cache-ticker", "data": "42"});
    let (status, v) = publish(n[0].addr(), APP, &body).await;
    assert_eq!(status, 200, "{v}");
    // A later message from the same publisher, seen on node 1, proves
    // node 1 has received the first.
    let mut watch = Socket::connect(n[1].addr(), APP.key).await;
    watch.subscribe("marker").await;
    let body = json!({"name": "m", "channel": "marker", "data": "m"});
    assert_eq!(publish(n[0].addr(), APP, &body).await.0, 200);
    watch.expect("m", Some("marker")).await;

    let mut late = Socket::connect(n[1].addr(), APP.key).await;
    late.subscribe("cache-ticker").await;
    let m = late.expect("price", Some("cache-ticker")).await;
    assert_eq!(m["data"], "42", "{m}");
    late.ping_pong().await;

    // No event on any node: one cache_miss, from the subscriber's node.
    let mut miss = Socket::connect(n[1].addr(), APP.key).await;
    miss.subscribe("cache-empty").await;
    miss.expect("pusher:cache_miss", Some("cache-empty")).await;
    hooks.wait_for("cache_miss", "cache-empty", None).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(hooks.count("cache_miss", "cache-empty", None), 1);
    assert_eq!(hooks.count("cache_miss", "cache-ticker", None), 0);
}

/// `channels` of a publish answer, asserting it succeeded.
async fn publish_info(addr: std::net::SocketAddr, body: Value) -> Value {
    let (status, v) = publish(addr, APP, &body).await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test]
async fn rest_publish_info_is_cluster_wide() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start().await;
    let n = nodes(&redis, "t-info", 3).await;
    let room = "presence-room";
    let mut socks = Vec::new();
    for (node, user) in [(1, "u1"), (2, "u2"), (2, "u2")] {
        let mut s = Socket::connect(n[node].addr(), APP.key).await;
        s.subscribe("news").await;
        join(&mut s, room, user).await;
        socks.push(s);
    }
    subscription_count(n[0].addr(), "news", 3).await;
    let path = format!("/channels/{room}");
    eventually(
        n[0].addr(),
        &path,
        &[("info", "user_count,subscription_count")],
        |v| v["user_count"] == 2 && v["subscription_count"] == 3,
    )
    .await;
    // Node 0 has no subscriber at all: the counts are the cluster's.
    let v = publish_info(
        n[0].addr(),
        json!({"name": "e", "channels": ["news", room], "data": "{}",
               "info": "subscription_count,user_count"}),
    )
    .await;
    assert_eq!(
        v["channels"],
        json!({"news": {"subscription_count": 3},
               room: {"subscription_count": 3, "user_count": 2}}),
        "{v}"
    );
    let body = json!({"batch": [
        {"name": "e", "channel": "news", "data": "{}", "info": "subscription_count"},
        {"name": "e", "channel": room, "data": "{}", "info": "user_count"},
        {"name": "e", "channel": "nobody", "data": "{}"},
    ]});
    let path = format!("/apps/{}/batch_events", APP.id);
    let uri = crate::support::signed(APP, &http::Method::POST, &path, &[], &body.to_string());
    let (status, v) =
        crate::support::rest(n[0].addr(), http::Method::POST, &uri, &body.to_string()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["batch"],
        json!([{"subscription_count": 3}, {"user_count": 2}, {}]),
        "{v}"
    );
    drop(socks);
}
