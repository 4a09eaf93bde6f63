//! Channels over the WebSocket: public subscriptions, private channel auth
//! (accepted, and refused with `pusher:subscription_error` on a socket that
//! stays open), presence members joining and leaving, and client events.

use serde_json::{Value, json};

use crate::support::{APP, QUIET, Socket, channel_auth, data, publish, start};

#[tokio::test]
async fn a_public_subscription_succeeds_with_empty_data() {
    let e = start().await;
    let mut s = Socket::connect(e.plain(), APP.key).await;
    let m = s.subscribe_with(json!({"channel": "news"})).await;
    assert_eq!(m["event"], "pusher_internal:subscription_succeeded", "{m}");
    assert_eq!(m["channel"], "news", "{m}");
    assert_eq!(data(&m), json!({}), "{m}");
}

#[tokio::test]
async fn private_channel_auth_is_checked() {
    let e = start().await;
    let mut s = Socket::connect(e.plain(), APP.key).await;

    // key:HMAC(secret, "socket_id:channel") is accepted.
    let auth = channel_auth(APP, &s.socket_id, "private-orders", None);
    let ok = s
        .subscribe_with(json!({"channel": "private-orders", "auth": auth}))
        .await;
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
    assert_eq!(ok["channel"], "private-orders", "{ok}");

    // A forged signature, one made for another socket, one made with
    // another app's secret, and none at all: each refused for its channel
    // with AuthError/401, and the socket stays open.
    let other = Socket::connect(e.plain(), APP.key).await;
    let refused = [
        (
            "private-forged",
            Some(format!("{}:{}", APP.key, "0".repeat(64))),
        ),
        (
            "private-stolen",
            Some(channel_auth(APP, &other.socket_id, "private-stolen", None)),
        ),
        (
            "private-wrong-secret",
            Some(format!(
                "{}:{}",
                APP.key,
                crate::support::hmac_hex(
                    QUIET.secret,
                    &format!("{}:private-wrong-secret", s.socket_id)
                )
            )),
        ),
        ("private-unsigned", None),
    ];
    for (channel, auth) in refused {
        let mut sub = json!({"channel": channel});
        if let Some(a) = auth {
            sub["auth"] = Value::String(a);
        }
        let err = s.subscribe_with(sub).await;
        assert_eq!(err["event"], "pusher:subscription_error", "{err}");
        assert_eq!(err["channel"], channel, "{err}");
        assert_eq!(err["data"]["type"], "AuthError", "{err}");
        assert_eq!(err["data"]["status"], 401, "{err}");
        assert!(
            err["data"]["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{err}"
        );
        s.ping_pong().await;
    }

    // The refused channels were never joined: a publish there reaches no
    // one, while the authorised one still works.
    let (status, _) = publish(
        e.plain(),
        APP,
        &json!({"name": "leak", "channel": "private-forged", "data": "x"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = publish(
        e.plain(),
        APP,
        &json!({"name": "ok", "channel": "private-orders", "data": "y"}),
    )
    .await;
    assert_eq!(status, 200);
    let m = s.expect("ok", Some("private-orders")).await;
    assert_eq!(m["data"], "y");
}

/// Subscribes `s` to `channel` as `user_id`; the succeeded message's data.
async fn join_presence(s: &mut Socket, channel: &str, user_id: &str, name: &str) -> Value {
    let channel_data = json!({"user_id": user_id, "user_info": {"name": name}}).to_string();
    let auth = channel_auth(APP, &s.socket_id, channel, Some(&channel_data));
    let m = s
        .subscribe_with(json!({"channel": channel, "auth": auth, "channel_data": channel_data}))
        .await;
    assert_eq!(m["event"], "pusher_internal:subscription_succeeded", "{m}");
    assert_eq!(m["channel"], channel, "{m}");
    data(&m)
}

#[tokio::test]
async fn presence_members_are_added_and_removed() {
    let e = start().await;
    let room = "presence-room";
    let mut ann = Socket::connect(e.plain(), APP.key).await;
    let joined = join_presence(&mut ann, room, "u1", "Ann").await;
    assert_eq!(
        joined,
        json!({"presence": {"ids": ["u1"], "hash": {"u1": {"name": "Ann"}}, "count": 1}})
    );

    let mut bob = Socket::connect(e.plain(), APP.key).await;
    let joined = join_presence(&mut bob, room, "u2", "Bob").await;
    assert_eq!(joined["presence"]["count"], 2, "{joined}");
    let mut ids: Vec<&str> = joined["presence"]["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["u1", "u2"]);
    assert_eq!(
        joined["presence"]["hash"],
        json!({"u1": {"name": "Ann"}, "u2": {"name": "Bob"}})
    );

    let added = ann.expect("pusher_internal:member_added", Some(room)).await;
    assert_eq!(
        data(&added),
        json!({"user_id": "u2", "user_info": {"name": "Bob"}})
    );
    // The newcomer is not told about itself.
    bob.ping_pong().await;

    bob.close().await;
    let removed = ann
        .expect("pusher_internal:member_removed", Some(room))
        .await;
    assert_eq!(data(&removed), json!({"user_id": "u2"}));
}

#[tokio::test]
async fn client_events_are_relayed_on_private_channels_of_apps_that_enable_them() {
    let e = start().await;
    let mut a = Socket::connect(e.plain(), APP.key).await;
    let mut b = Socket::connect(e.plain(), APP.key).await;
    a.subscribe_private(APP, "private-chat").await;
    b.subscribe_private(APP, "private-chat").await;

    a.send(json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "a"}}))
        .await;
    let got = b.expect("client-typing", Some("private-chat")).await;
    assert_eq!(data(&got), json!({"who": "a"}));
    // Not echoed to the sender.
    a.ping_pong().await;

    // On a public channel they are refused (code null), socket kept.
    a.subscribe("public-chat").await;
    b.subscribe("public-chat").await;
    a.send(json!({"event": "client-typing", "channel": "public-chat", "data": {}}))
        .await;
    let err = a.expect("pusher:error", None).await;
    assert_eq!(err["data"]["code"], Value::Null, "{err}");
    a.ping_pong().await;
    b.ping_pong().await;
}

#[tokio::test]
async fn client_events_are_refused_when_the_app_does_not_enable_them() {
    let e = start().await;
    let mut a = Socket::connect(e.plain(), QUIET.key).await;
    let mut b = Socket::connect(e.plain(), QUIET.key).await;
    a.subscribe_private(QUIET, "private-chat").await;
    b.subscribe_private(QUIET, "private-chat").await;

    a.send(json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "a"}}))
        .await;
    let err = a.expect("pusher:error", None).await;
    assert_eq!(err["data"]["code"], Value::Null, "{err}");
    assert!(
        err["data"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{err}"
    );
    // The other subscriber got nothing: its next message is the pong.
    b.ping_pong().await;
    a.ping_pong().await;
}
