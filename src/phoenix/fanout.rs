//! Frames the Supabase front fans out, serialised once per vsn.
//!
//! Owns: the rule of which subscriber gets what — vsn 1.0.0 sockets get
//! JSON objects and never a binary frame (a raw-bytes broadcast is dropped
//! for them, as Supabase does); vsn 2.0.0 sockets get JSON arrays for JSON
//! broadcasts and kind-4 binary frames for user broadcasts. Receives: a
//! broadcast or presence diff and its topic. Hands on: a hub `Frames` set
//! indexed by [`Vsn::codec`], shared by every subscriber. Fanned-out frames
//! carry a null `join_ref` (it differs per subscriber, and realtime-js only
//! drops frames whose non-null join_ref is stale).

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use super::codec::{CodecError, Encoding, Outgoing, Vsn, encode_text, encode_user_broadcast};
use crate::hub::Frames;
use crate::ws::Frame;

/// A broadcast to fan out.
#[derive(Debug, Clone, Copy)]
pub enum Broadcast<'a> {
    /// A text push's whole payload: `{"type":"broadcast","event":..,"payload":..}`.
    Json(&'a RawValue),
    /// A binary (kind 3) or REST user broadcast.
    User {
        /// The user event.
        event: &'a str,
        /// How `data` is to be read.
        encoding: Encoding,
        /// Metadata JSON object, if any.
        meta: Option<&'a str>,
        /// The user payload.
        data: &'a [u8],
    },
}

fn text(vsn: Vsn, topic: &str, event: &str, payload: &RawValue) -> Frame {
    Frame::from(encode_text(
        vsn,
        &Outgoing {
            join_ref: None,
            r#ref: None,
            topic,
            event,
            payload,
        },
    ))
}

fn per_codec(v1: Option<Frame>, v2: Option<Frame>) -> Frames {
    Frames::PerCodec(Arc::from(vec![v1, v2]))
}

/// The JSON payload a vsn 1.0.0 socket gets for a user broadcast:
/// `{"type":"broadcast","event":..,"meta":..,"payload":..}`.
pub fn user_broadcast_json(event: &str, meta: Option<&str>, data: &str) -> Option<Box<RawValue>> {
    #[derive(Serialize)]
    struct B<'a> {
        r#type: &'static str,
        event: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        meta: Option<&'a RawValue>,
        payload: &'a RawValue,
    }
    let meta = match meta {
        Some(m) => Some(serde_json::from_str::<&RawValue>(m).ok()?),
        None => None,
    };
    let payload = serde_json::from_str::<&RawValue>(data).ok()?;
    let s = serde_json::to_string(&B {
        r#type: "broadcast",
        event,
        meta,
        payload,
    })
    .ok()?;
    RawValue::from_string(s).ok()
}

/// Frames of a broadcast on `topic` for both vsns.
pub fn broadcast(topic: &str, b: Broadcast<'_>) -> Result<Frames, CodecError> {
    match b {
        Broadcast::Json(payload) => Ok(per_codec(
            Some(text(Vsn::V1, topic, "broadcast", payload)),
            Some(text(Vsn::V2, topic, "broadcast", payload)),
        )),
        Broadcast::User {
            event,
            encoding,
            meta,
            data,
        } => {
            let v2 = Frame::Binary(encode_user_broadcast(topic, event, meta, encoding, data)?);
            let v1 = match encoding {
                Encoding::Raw => None,
                Encoding::Json => std::str::from_utf8(data)
                    .ok()
                    .and_then(|d| user_broadcast_json(event, meta, d))
                    .map(|p| text(Vsn::V1, topic, "broadcast", &p)),
            };
            Ok(per_codec(v1, Some(v2)))
        }
    }
}

/// Frames of a `presence_diff` (or any other JSON push) on `topic`.
pub fn push(topic: &str, event: &str, payload: &RawValue) -> Frames {
    per_codec(
        Some(text(Vsn::V1, topic, event, payload)),
        Some(text(Vsn::V2, topic, event, payload)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(f: &Frames, vsn: Vsn) -> Option<&Frame> {
        f.for_codec(vsn.codec())
    }

    #[test]
    fn json_broadcast_is_text_for_both() {
        let p = RawValue::from_string(
            r#"{"type":"broadcast","event":"cursor","payload":{"x":1}}"#.into(),
        )
        .unwrap();
        let f = broadcast("realtime:room1", Broadcast::Json(&p)).unwrap();
        assert_eq!(
            get(&f, Vsn::V1).unwrap().as_bytes(),
            br#"{"topic":"realtime:room1","event":"broadcast","payload":{"type":"broadcast","event":"cursor","payload":{"x":1}},"ref":null}"#
        );
        assert_eq!(
            get(&f, Vsn::V2).unwrap().as_bytes(),
            br#"[null,null,"realtime:room1","broadcast",{"type":"broadcast","event":"cursor","payload":{"x":1}}]"#
        );
    }

    #[test]
    fn user_json_broadcast_is_kind4_for_v2_and_text_for_v1() {
        let f = broadcast(
            "realtime:room1",
            Broadcast::User {
                event: "cursor",
                encoding: Encoding::Json,
                meta: None,
                data: br#"{"x":1}"#,
            },
        )
        .unwrap();
        assert_eq!(
            get(&f, Vsn::V2),
            Some(&Frame::Binary(bytes::Bytes::from_static(
                b"\x04\x0e\x06\x00\x01realtime:room1cursor{\"x\":1}"
            )))
        );
        assert_eq!(
            get(&f, Vsn::V1).unwrap().as_bytes(),
            br#"{"topic":"realtime:room1","event":"broadcast","payload":{"type":"broadcast","event":"cursor","payload":{"x":1}},"ref":null}"#
        );
    }

    #[test]
    fn raw_broadcast_skips_v1_and_meta_is_kept() {
        let f = broadcast(
            "realtime:r",
            Broadcast::User {
                event: "e",
                encoding: Encoding::Raw,
                meta: Some(r#"{"id":"1"}"#),
                data: &[1, 4],
            },
        )
        .unwrap();
        assert_eq!(get(&f, Vsn::V1), None);
        assert!(matches!(get(&f, Vsn::V2), Some(Frame::Binary(_))));
        let p = user_broadcast_json("e", Some(r#"{"id":"1"}"#), "[1]").unwrap();
        assert_eq!(
            p.get(),
            r#"{"type":"broadcast","event":"e","meta":{"id":"1"},"payload":[1]}"#
        );
    }

    #[test]
    fn oversized_topic_is_an_error() {
        let t = "t".repeat(300);
        assert!(
            broadcast(
                &t,
                Broadcast::User {
                    event: "e",
                    encoding: Encoding::Raw,
                    meta: None,
                    data: b""
                }
            )
            .is_err()
        );
    }
}
