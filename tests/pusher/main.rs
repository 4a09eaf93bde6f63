//! The Pusher front end to end: the real edge in-process on `127.0.0.1:0`
//! (`../common/inproc.rs`) with `[[apps]]`, Pusher protocol 7 clients over
//! real WebSockets and the REST API over hyper, signed here.
//!
//! - here: the handshake (`connection_established`), ping/pong, an
//!   unknown app key.
//! - `channels`: public, private (auth accepted and refused) and presence
//!   channels; client events.
//! - `rest`: publishing, `socket_id` exclusion, channel queries, bad
//!   signatures.
//!
//! Field names and values follow `tests/node/pusher.test.mjs` (pusher-js,
//! the `pusher` REST library) and the Pusher protocol notes.

mod channels;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/config.rs"]
mod config;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/inproc.rs"]
mod inproc;
mod rest;
mod support;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/wait.rs"]
mod wait;

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use support::{APP, Socket, next_json, open, start};

#[tokio::test]
async fn connection_established_names_the_socket_and_the_activity_timeout() {
    let e = start().await;
    let a = Socket::connect(e.plain(), APP.key).await;
    let b = Socket::connect(e.plain(), APP.key).await;
    for s in [&a, &b] {
        let (left, right) = s
            .socket_id
            .split_once('.')
            .unwrap_or_else(|| panic!("socket_id is `%d.%d`: {}", s.socket_id));
        assert!(
            [left, right]
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())),
            "socket_id is two integers: {}",
            s.socket_id
        );
        // pusher-js refuses a handshake without a truthy activity_timeout;
        // an app without one configured announces 120 s, as Pusher does.
        assert_eq!(s.established["activity_timeout"], 120, "{}", s.established);
    }
    assert_ne!(a.socket_id, b.socket_id, "each connection its own id");
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let e = start().await;
    let mut s = Socket::connect(e.plain(), APP.key).await;
    s.send(json!({"event": "pusher:ping", "data": {}})).await;
    let pong = s.next().await;
    assert_eq!(pong["event"], "pusher:pong", "{pong}");
    // The socket stays usable.
    s.ping_pong().await;
}

#[tokio::test]
async fn an_unknown_app_key_gets_error_4001_and_a_4001_close() {
    let e = start().await;
    let mut ws = open(e.plain(), "no-such-key").await;
    let err = next_json(&mut ws)
        .await
        .unwrap_or_else(|c| panic!("closed without pusher:error: {c:?}"));
    assert_eq!(err["event"], "pusher:error", "{err}");
    assert_eq!(err["data"]["code"], 4001, "{err}");
    assert!(
        err["data"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{err}"
    );
    let close = next_json(&mut ws)
        .await
        .expect_err("the socket closes after the error");
    let frame = close.expect("a close frame with a code");
    assert_eq!(frame.code, CloseCode::from(4001), "{frame:?}");
}
