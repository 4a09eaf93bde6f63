//! The property the `pusher_frames` fuzz target checks, kept in the library
//! so the unit tests run the very same code on stable Rust.
//!
//! Owns: the round-trip rules of the client-frame parser. Receives: any
//! bytes. Hands on: nothing; it panics when a rule breaks.

use serde_json::{Map, Value, json};

use super::{ClientMessage, client_event, parse, parse_channel_data, parse_user_data};

/// Checks one arbitrary inbound frame:
/// - [`parse`] never panics and is deterministic;
/// - a client event re-encoded by the relay encoder ([`client_event`], what
///   the hub sends the other subscribers) parses back to the same message;
/// - every other parsed message re-encoded as a client would send it, with
///   `data` as an object and as a JSON-encoded string (both are accepted),
///   parses back to the same message;
/// - `channel_data`/`user_data` parsers never panic and never accept an
///   empty user id.
pub fn check_client_frame(frame: &[u8]) {
    let first = parse(frame);
    assert_eq!(first, parse(frame), "parse is not deterministic");
    if let Ok(msg) = &first {
        for encoded in client_encodings(msg) {
            let again = parse(encoded.as_bytes());
            assert_eq!(again.as_ref(), Ok(msg), "round trip of {encoded}");
        }
        match msg {
            ClientMessage::Subscribe {
                channel_data: Some(cd),
                ..
            } => check_channel_data(cd),
            ClientMessage::Signin { user_data, .. } => check_user_data(user_data),
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(frame);
    check_channel_data(&text);
    check_user_data(&text);
}

fn check_channel_data(s: &str) {
    if let Some(cd) = parse_channel_data(s) {
        assert!(!cd.user_id.is_empty(), "empty presence user_id accepted");
        assert!(
            serde_json::from_str::<Value>(&cd.user_info).is_ok(),
            "user_info is not JSON: {}",
            cd.user_info
        );
    }
}

fn check_user_data(s: &str) {
    if let Some(ud) = parse_user_data(s) {
        assert!(!ud.id.is_empty(), "empty sign-in id accepted");
        assert!(ud.watchlist.iter().all(|w| !w.is_empty()));
    }
}

/// The ways a client may put `msg` on the wire.
fn client_encodings(msg: &ClientMessage) -> Vec<String> {
    let with_data = |event: &str, fields: &[(&str, Option<&String>)]| {
        let mut d = Map::new();
        for (k, v) in fields {
            if let Some(v) = v {
                d.insert((*k).to_owned(), Value::String((*v).clone()));
            }
        }
        let d = Value::Object(d);
        vec![
            json!({ "event": event, "data": d }).to_string(),
            json!({ "event": event, "data": d.to_string() }).to_string(),
        ]
    };
    match msg {
        ClientMessage::Subscribe {
            channel,
            auth,
            channel_data,
        } => with_data(
            "pusher:subscribe",
            &[
                ("channel", Some(channel)),
                ("auth", auth.as_ref()),
                ("channel_data", channel_data.as_ref()),
            ],
        ),
        ClientMessage::Unsubscribe { channel } => {
            with_data("pusher:unsubscribe", &[("channel", Some(channel))])
        }
        ClientMessage::Signin { auth, user_data } => with_data(
            "pusher:signin",
            &[("auth", Some(auth)), ("user_data", Some(user_data))],
        ),
        ClientMessage::Ping => vec![json!({"event": "pusher:ping", "data": {}}).to_string()],
        ClientMessage::Pong => vec![json!({"event": "pusher:pong", "data": {}}).to_string()],
        ClientMessage::ClientEvent {
            event,
            channel,
            data,
        } => {
            let relayed = client_event(channel, event, data, None);
            vec![String::from_utf8_lossy(relayed.as_bytes()).into_owned()]
        }
        ClientMessage::Other { event } => vec![json!({ "event": event }).to_string()],
    }
}
