//! Codec tests: parsing, encoder shapes, and one test per error-mapping row.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::*;
use crate::pusher::auth::AuthError;
use crate::pusher::channel::ChannelNameError;

fn v(f: &Frame) -> Value {
    serde_json::from_slice(f.as_bytes()).unwrap_or(Value::Null)
}

/// Decodes `data` the way pusher-js does: parse strings if they are JSON.
fn data(f: &Frame) -> Value {
    match &v(f)["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        other => other.clone(),
    }
}

#[test]
fn parses_subscribe_with_object_or_string_data() {
    let obj = br#"{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":1}"}}"#;
    let want = ClientMessage::Subscribe {
        channel: "presence-a".into(),
        auth: Some("k:s".into()),
        channel_data: Some("{\"user_id\":1}".into()),
    };
    assert_eq!(parse(obj), Ok(want.clone()));
    let s = br#"{"event":"pusher:subscribe","data":"{\"channel\":\"presence-a\",\"auth\":\"k:s\",\"channel_data\":\"{\\\"user_id\\\":1}\"}"}"#;
    assert_eq!(parse(s), Ok(want));
    assert_eq!(
        parse(br#"{"event":"pusher:subscribe","data":{}}"#),
        Err(ParseError::MissingField {
            event: "pusher:subscribe",
            field: "channel"
        })
    );
}

#[test]
fn parses_other_client_messages() {
    assert_eq!(
        parse(br#"{"event":"pusher:ping","data":{}}"#),
        Ok(ClientMessage::Ping)
    );
    assert_eq!(
        parse(br#"{"event":"pusher:pong"}"#),
        Ok(ClientMessage::Pong)
    );
    assert_eq!(
        parse(br#"{"event":"pusher:unsubscribe","data":{"channel":"a"}}"#),
        Ok(ClientMessage::Unsubscribe {
            channel: "a".into()
        })
    );
    assert_eq!(
        parse(br#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}"#),
        Ok(ClientMessage::Signin {
            auth: "k:s".into(),
            user_data: "{\"id\":\"1\"}".into()
        })
    );
    assert_eq!(
        parse(br#"{"event":"client-typing","channel":"private-a","data":{"x":1}}"#),
        Ok(ClientMessage::ClientEvent {
            event: "client-typing".into(),
            channel: "private-a".into(),
            data: r#"{"x":1}"#.into()
        })
    );
    // Relayed verbatim: long decimals keep every digit.
    let exact = br#"{"event":"client-x","channel":"private-a","data":{"v":0.30000000000000004441,"big":123456789012345678901234567890}}"#;
    let Ok(ClientMessage::ClientEvent { data, .. }) = parse(exact) else {
        panic!("client event");
    };
    assert_eq!(
        data,
        r#"{"v":0.30000000000000004441,"big":123456789012345678901234567890}"#
    );
    let relayed = client_event("private-a", "client-x", &data, None);
    assert!(
        std::str::from_utf8(relayed.as_bytes()).unwrap().contains(
            r#""data":{"v":0.30000000000000004441,"big":123456789012345678901234567890}"#
        )
    );
    assert!(matches!(
        parse(br#"{"event":"client-typing","data":{}}"#),
        Err(ParseError::MissingField {
            field: "channel",
            ..
        })
    ));
    assert_eq!(
        parse(br#"{"event":"whatever"}"#),
        Ok(ClientMessage::Other {
            event: "whatever".into()
        })
    );
    assert_eq!(parse(b"nope"), Err(ParseError::NotJson));
    assert_eq!(parse(b"[1]"), Err(ParseError::NotJson));
    assert_eq!(parse(br#"{"event":1}"#), Err(ParseError::NoEvent));
}

#[test]
fn channel_data_and_user_data() {
    assert_eq!(
        parse_channel_data(r#"{"user_id":10,"user_info":{"name":"A"}}"#),
        Some(ChannelData {
            user_id: "10".into(),
            user_info: r#"{"name":"A"}"#.into()
        })
    );
    assert_eq!(
        parse_channel_data(r#"{"user_id":"u"}"#).map(|c| c.user_info),
        Some("null".into())
    );
    assert_eq!(parse_channel_data(r#"{"user_id":""}"#), None);
    assert_eq!(parse_channel_data(r#"{"user_info":{}}"#), None);
    assert_eq!(parse_channel_data("x"), None);
    assert_eq!(
        parse_user_data(r#"{"id":"7","watchlist":["1",2]}"#),
        Some(UserData {
            id: "7".into(),
            watchlist: vec!["1".into(), "2".into()]
        })
    );
    assert_eq!(parse_user_data(r#"{"id":7}"#), None);
    assert_eq!(parse_user_data(r#"{"id":""}"#), None);
}

#[test]
fn protocol_query() {
    assert_eq!(check_protocol(Some("7")), Ok(7));
    assert_eq!(check_protocol(None), Err(SessionError::NoProtocol));
    assert_eq!(
        check_protocol(Some("x")),
        Err(SessionError::InvalidVersionFormat)
    );
    assert_eq!(
        check_protocol(Some("3")),
        Err(SessionError::UnsupportedProtocol { version: 3 })
    );
}

#[test]
fn server_message_shapes() {
    let f = connection_established("1.2", 120);
    assert_eq!(v(&f)["event"], "pusher:connection_established");
    assert_eq!(data(&f), json!({"socket_id":"1.2","activity_timeout":120}));
    // data is an encoded string, as pusher-js expects.
    assert!(v(&f)["data"].is_string());

    let f = subscription_succeeded("a");
    assert_eq!(
        v(&f),
        json!({"event":"pusher_internal:subscription_succeeded","channel":"a","data":"{}"})
    );

    let members = vec![
        (Arc::from("1"), Bytes::from_static(br#"{"name":"A"}"#)),
        (Arc::from("2"), Bytes::from_static(b"null")),
    ];
    let f = presence_subscription_succeeded("presence-r", &members);
    assert_eq!(
        data(&f),
        json!({"presence":{"ids":["1","2"],"hash":{"1":{"name":"A"},"2":null},"count":2}})
    );
    assert_eq!(
        data(&presence_subscription_succeeded("presence-r", &[])),
        json!({"presence":{"ids":[],"hash":{},"count":0}})
    );

    let f = member_added("presence-r", "1", br#"{"name":"A"}"#);
    assert_eq!(v(&f)["event"], "pusher_internal:member_added");
    assert_eq!(data(&f), json!({"user_id":"1","user_info":{"name":"A"}}));
    assert_eq!(
        data(&member_removed("presence-r", "1")),
        json!({"user_id":"1"})
    );

    assert_eq!(
        v(&error(Some(4001), "x")),
        json!({"event":"pusher:error","data":{"code":4001,"message":"x"}})
    );
    assert_eq!(v(&error(None, "x"))["data"]["code"], Value::Null);

    assert_eq!(
        v(&subscription_error("private-a", "AuthError", "bad", 401)),
        json!({"event":"pusher:subscription_error","channel":"private-a",
               "data":{"type":"AuthError","error":"bad","status":401}})
    );
    assert_eq!(
        v(&cache_miss("cache-a")),
        json!({"event":"pusher:cache_miss","channel":"cache-a"})
    );
    assert_eq!(
        data(&subscription_count("a", 12)),
        json!({"subscription_count":12})
    );
    assert_eq!(
        v(&subscription_count("a", 12))["event"],
        "pusher_internal:subscription_count"
    );
    assert_eq!(
        v(&signin_success(r#"{"id":"1"}"#)),
        json!({"event":"pusher:signin_success","data":{"user_data":"{\"id\":\"1\"}"}})
    );
    assert_eq!(
        v(&watchlist_event(Watch::Online, &["2"])),
        json!({"event":"pusher_internal:watchlist_events","data":{"events":[{"name":"online","user_ids":["2"]}]}})
    );
    assert_eq!(v(&pong())["event"], "pusher:pong");
    assert_eq!(v(&ping())["event"], "pusher:ping");
    assert_eq!(
        v(&event("a", "App\\Events\\X", "{\"k\":1}", None)),
        json!({"event":"App\\Events\\X","channel":"a","data":"{\"k\":1}"})
    );
    assert_eq!(
        v(&client_event(
            "presence-a",
            "client-t",
            r#"{"x":1}"#,
            Some("7")
        )),
        json!({"event":"client-t","channel":"presence-a","data":{"x":1},"user_id":"7"})
    );
}

#[test]
fn subscription_errors_carry_channel_and_status() {
    let e = SessionError::SubscriptionAuth {
        channel: "private-a".into(),
        source: AuthError::Missing,
    };
    let f = e.to_frame().unwrap();
    assert_eq!(v(&f)["event"], "pusher:subscription_error");
    assert_eq!(v(&f)["channel"], "private-a");
    assert_eq!(v(&f)["data"]["status"], 401);
    assert!(SessionError::AppNotFound.to_frame().is_none());
    assert_eq!(
        v(&SessionError::RateLimited.to_frame().unwrap())["data"]["code"],
        4301
    );
}

fn ch() -> String {
    "c".into()
}

fn check(e: SessionError, want: Action) {
    assert_eq!(e.action(), want, "{e:?}");
}

#[test]
fn action_app_not_found() {
    check(SessionError::AppNotFound, Action::Close(4001));
}
#[test]
fn action_app_disabled() {
    check(SessionError::AppDisabled, Action::Close(4003));
}
#[test]
fn action_over_quota() {
    check(SessionError::OverQuota, Action::Close(4004));
}
#[test]
fn action_path_not_found() {
    check(SessionError::PathNotFound, Action::Close(4005));
}
#[test]
fn action_invalid_version_format() {
    check(SessionError::InvalidVersionFormat, Action::Close(4006));
}
#[test]
fn action_unsupported_protocol() {
    check(
        SessionError::UnsupportedProtocol { version: 3 },
        Action::Close(4007),
    );
}
#[test]
fn action_no_protocol() {
    check(SessionError::NoProtocol, Action::Close(4008));
}
#[test]
fn action_origin_not_allowed() {
    check(SessionError::OriginNotAllowed, Action::Close(4009));
}
#[test]
fn action_signin_timeout() {
    check(SessionError::SigninTimeout, Action::Close(4009));
}
#[test]
fn action_slow_consumer() {
    check(SessionError::SlowConsumer, Action::Close(4100));
}
#[test]
fn action_shutting_down() {
    check(SessionError::ShuttingDown, Action::Close(4200));
    check(SessionError::AppRemoved, Action::Close(4200));
}
#[test]
fn action_pong_timeout() {
    check(SessionError::PongTimeout, Action::Close(4201));
}
#[test]
fn action_terminated() {
    check(SessionError::Terminated, Action::Close(4009));
}
#[test]
fn action_message_too_large() {
    check(
        SessionError::MessageTooLarge { size: 2, max: 1 },
        Action::Close(1009),
    );
}
#[test]
fn action_websocket_protocol() {
    check(SessionError::WebSocketProtocol, Action::Close(1002));
    check(SessionError::InvalidUtf8, Action::Close(1007));
}
#[test]
fn action_invalid_message() {
    check(
        SessionError::InvalidMessage(ParseError::NotJson),
        Action::Error(Some(4200)),
    );
}
#[test]
fn action_invalid_channel() {
    check(
        SessionError::InvalidChannel {
            channel: ch(),
            source: ChannelNameError::Empty,
        },
        Action::SubscriptionError {
            kind: "InvalidChannel",
            status: 400,
        },
    );
}
#[test]
fn action_subscription_auth() {
    check(
        SessionError::SubscriptionAuth {
            channel: ch(),
            source: AuthError::Malformed,
        },
        Action::SubscriptionError {
            kind: "AuthError",
            status: 401,
        },
    );
}
#[test]
fn action_invalid_channel_data() {
    check(
        SessionError::InvalidChannelData { channel: ch() },
        Action::SubscriptionError {
            kind: "AuthError",
            status: 400,
        },
    );
}
#[test]
fn action_member_too_large() {
    check(
        SessionError::MemberTooLarge {
            channel: ch(),
            what: "user_info",
            size: 2,
            max: 1,
        },
        Action::SubscriptionError {
            kind: "LimitReached",
            status: 413,
        },
    );
}
#[test]
fn action_presence_full() {
    check(
        SessionError::PresenceFull {
            channel: ch(),
            max: 100,
        },
        Action::SubscriptionError {
            kind: "LimitReached",
            status: 403,
        },
    );
}
#[test]
fn action_not_your_user_channel() {
    check(
        SessionError::NotYourUserChannel { channel: ch() },
        Action::SubscriptionError {
            kind: "AuthError",
            status: 403,
        },
    );
}
#[test]
fn action_too_many_subscriptions() {
    check(
        SessionError::TooManySubscriptions {
            channel: ch(),
            max: 1,
        },
        Action::SubscriptionError {
            kind: "LimitReached",
            status: 403,
        },
    );
}
#[test]
fn action_client_events_disabled() {
    check(SessionError::ClientEventsDisabled, Action::Error(None));
}
#[test]
fn action_client_events_not_allowed() {
    check(
        SessionError::ClientEventsNotAllowed { channel: ch() },
        Action::Error(None),
    );
}
#[test]
fn action_not_subscribed() {
    check(
        SessionError::NotSubscribed { channel: ch() },
        Action::Error(None),
    );
}
#[test]
fn action_client_event_too_large() {
    check(
        SessionError::ClientEventTooLarge {
            what: "data",
            size: 2,
            max: 1,
        },
        Action::Error(None),
    );
}
#[test]
fn action_rate_limited() {
    check(SessionError::RateLimited, Action::Error(Some(4301)));
}
#[test]
fn action_rate_limited_terminate() {
    check(SessionError::RateLimitedTerminate, Action::Close(4301));
}
#[test]
fn action_signin_auth() {
    check(
        SessionError::SigninAuth(AuthError::Missing),
        Action::Error(Some(4009)),
    );
}
#[test]
fn action_signin_user_data() {
    check(SessionError::SigninUserData, Action::Error(Some(4009)));
}
#[test]
fn action_watchlist_too_large() {
    check(
        SessionError::WatchlistTooLarge { size: 2, max: 1 },
        Action::Error(Some(4302)),
    );
}

/// The `pusher_frames` fuzz target's check ([`check_client_frame`]) on
/// stable: seeds, then random mutations of them (byte flips, deletions,
/// truncations, spliced JSON fragments) never panic, and every frame that
/// parses round-trips through the encoders.
#[test]
fn parse_never_panics_on_garbage() {
    let seeds: [&[u8]; 8] = [
        br#"{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":1}"}}"#,
        br#"{"event":"pusher:subscribe","data":{"channel":"presence-a","channel_data":{"user_id":"u","user_info":{"n":[1,2.5]}}}}"#,
        br#"{"event":"client-x","channel":"private-a","data":"{\"a\":1}"}"#,
        br#"{"event":"client-x","channel":"presence-a","data":{"a":[null,true,-3,"\u00e9"]}}"#,
        br#"{"event":"pusher:signin","data":{"auth":"a","user_data":"{\"id\":\"1\",\"watchlist\":[\"2\",3]}"}}"#,
        br#"{"event":"pusher:unsubscribe","data":"{\"channel\":\"x\"}"}"#,
        br#"{"event":"pusher:ping","data":{}}"#,
        br#"{"event":"other","data":null,"channel":1}"#,
    ];
    let splices: [&[u8]; 6] = [
        b"{",
        b"}",
        b"\"",
        b"null",
        b",\"channel\":\"c\"",
        b"\\u0000",
    ];
    for seed in seeds {
        check_client_frame(seed);
        assert!(parse(seed).is_ok(), "{}", String::from_utf8_lossy(seed));
    }
    for i in 0..20_000usize {
        let mut buf = seeds[i % seeds.len()].to_vec();
        let edits = rand::random_range(1..4);
        for _ in 0..edits {
            if buf.is_empty() {
                break;
            }
            let at = rand::random_range(0..buf.len());
            match rand::random_range(0..4) {
                0 => buf[at] = rand::random(),
                1 => {
                    buf.remove(at);
                }
                2 => buf.truncate(at),
                _ => {
                    let s = splices[rand::random_range(0..splices.len())];
                    buf.splice(at..at, s.iter().copied());
                }
            }
        }
        check_client_frame(&buf);
    }
}
