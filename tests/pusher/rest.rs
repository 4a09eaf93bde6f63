//! The REST API under `/apps/{id}/`: signed publishes reach subscribers
//! (with `socket_id` excluding the publisher's own socket), channel queries
//! count subscriptions, and a bad signature is a 401 that publishes nothing.

use http::{Method, StatusCode};
use serde_json::json;

use crate::support::{APP, QUIET, Socket, publish, query, rest, signed, start};

#[tokio::test]
async fn a_signed_publish_reaches_the_subscribers() {
    let e = start().await;
    let mut news = Socket::connect(e.plain(), APP.key).await;
    news.subscribe("news").await;
    let mut both = Socket::connect(e.plain(), APP.key).await;
    both.subscribe("news").await;
    both.subscribe("sports").await;

    let (status, body) = publish(
        e.plain(),
        APP,
        &json!({"name": "hello", "channel": "news", "data": "{\"a\":1}"}),
    )
    .await;
    assert_eq!((status, &body), (StatusCode::OK, &json!({})));
    // The event as published: `data` is the string the server sent.
    let want = json!({"event": "hello", "channel": "news", "data": "{\"a\":1}"});
    assert_eq!(news.next().await, want);
    assert_eq!(both.next().await, want);

    // One publish to several channels: one copy per channel subscribed.
    let (status, _) = publish(
        e.plain(),
        APP,
        &json!({"name": "score", "channels": ["news", "sports"], "data": "2-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let m = news.expect("score", Some("news")).await;
    assert_eq!(m["data"], "2-1");
    let mut got: Vec<String> = Vec::new();
    for _ in 0..2 {
        let m = both.expect("score", None).await;
        got.push(m["channel"].as_str().expect("channel").to_string());
    }
    got.sort();
    assert_eq!(got, ["news", "sports"]);
    news.ping_pong().await;
    both.ping_pong().await;
}

#[tokio::test]
async fn socket_id_excludes_the_publishers_own_socket() {
    let e = start().await;
    let mut me = Socket::connect(e.plain(), APP.key).await;
    let mut other = Socket::connect(e.plain(), APP.key).await;
    me.subscribe("room").await;
    other.subscribe("room").await;

    let (status, _) = publish(
        e.plain(),
        APP,
        &json!({"name": "said", "channel": "room", "data": "hi", "socket_id": me.socket_id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let m = other.expect("said", Some("room")).await;
    assert_eq!(m["data"], "hi");
    // The excluded socket's next message is the pong: it got nothing.
    me.ping_pong().await;

    // Without socket_id it gets the next one.
    let (status, _) = publish(
        e.plain(),
        APP,
        &json!({"name": "all", "channel": "room", "data": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    me.expect("all", Some("room")).await;
    other.expect("all", Some("room")).await;
}

#[tokio::test]
async fn channel_queries_count_subscriptions() {
    let e = start().await;
    let addr = e.plain();
    let mut a = Socket::connect(addr, APP.key).await;
    let mut b = Socket::connect(addr, APP.key).await;
    a.subscribe("news").await;
    b.subscribe("news").await;
    b.subscribe("sports").await;
    let channel_data = json!({"user_id": "u1", "user_info": {}}).to_string();
    let auth =
        crate::support::channel_auth(APP, &a.socket_id, "presence-room", Some(&channel_data));
    let m = a
        .subscribe_with(
            json!({"channel": "presence-room", "auth": auth, "channel_data": channel_data}),
        )
        .await;
    assert_eq!(m["event"], "pusher_internal:subscription_succeeded", "{m}");
    // Another app's channels are its own.
    let mut q = Socket::connect(addr, QUIET.key).await;
    q.subscribe("quiet-news").await;

    let (status, list) = query(addr, APP, "/channels", &[]).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        list,
        json!({"channels": {"news": {}, "sports": {}, "presence-room": {}}})
    );
    let (_, presence) = query(
        addr,
        APP,
        "/channels",
        &[("filter_by_prefix", "presence-"), ("info", "user_count")],
    )
    .await;
    assert_eq!(
        presence,
        json!({"channels": {"presence-room": {"user_count": 1}}})
    );

    let (status, news) = query(
        addr,
        APP,
        "/channels/news",
        &[("info", "subscription_count")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{news}");
    assert_eq!(news, json!({"occupied": true, "subscription_count": 2}));
    let (_, empty) = query(addr, APP, "/channels/nobody-here", &[]).await;
    assert_eq!(empty, json!({"occupied": false}));

    // An unsubscribe is counted at once.
    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}}))
        .await;
    b.ping_pong().await;
    let (_, news) = query(
        addr,
        APP,
        "/channels/news",
        &[("info", "subscription_count")],
    )
    .await;
    assert_eq!(news, json!({"occupied": true, "subscription_count": 1}));
    let (_, quiet) = query(addr, QUIET, "/channels", &[]).await;
    assert_eq!(quiet, json!({"channels": {"quiet-news": {}}}));
}

#[tokio::test]
async fn a_bad_signature_is_401_and_publishes_nothing() {
    let e = start().await;
    let addr = e.plain();
    let mut s = Socket::connect(addr, APP.key).await;
    s.subscribe("news").await;
    let path = format!("/apps/{}/events", APP.id);
    let body = json!({"name": "forged", "channel": "news", "data": "x"}).to_string();

    // Signed with another app's secret.
    let wrong = crate::support::App {
        secret: QUIET.secret,
        ..APP
    };
    let forged = signed(wrong, &Method::POST, &path, &[], &body);
    // A correct signature over another body (body_md5 no longer matches).
    let swapped = signed(APP, &Method::POST, &path, &[], "{}");
    // No signature at all.
    let unsigned = path.clone();
    for uri in [forged, swapped, unsigned] {
        let (status, answer) = rest(addr, Method::POST, &uri, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|m| !m.is_empty()),
            "a JSON error: {answer}"
        );
    }
    // Queries are checked the same way.
    let list = format!("/apps/{}/channels", APP.id);
    let uri = signed(wrong, &Method::GET, &list, &[], "");
    let (status, _) = rest(addr, Method::GET, &uri, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Nothing was published: the subscriber's next event is a good one.
    let (status, _) = publish(
        addr,
        APP,
        &json!({"name": "real", "channel": "news", "data": "y"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let m = s.expect("real", Some("news")).await;
    assert_eq!(m["data"], "y");
}
