//! Frames the Supabase front fans out, serialised once per vsn.
//!
//! Owns: the rule of which subscriber gets what — vsn 1.0.0 sockets get
//! JSON objects and never a binary frame (a raw-bytes broadcast is dropped
//! for them, as Supabase does); vsn 2.0.0 sockets get JSON arrays for JSON
//! broadcasts and kind-4 binary frames for user broadcasts. Receives: a
//! broadcast or presence diff and its topic. Hands on: a hub `Frames` set
//! indexed by [`Vsn::codec`], shared by every subscriber, and the
//! broadcast described for the hub's observers ([`describe`]). Fanned-out
//! frames carry a null `join_ref` (it differs per subscriber, and
//! realtime-js only drops frames whose non-null join_ref is stale).

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::codec::{CodecError, Encoding, Outgoing, Vsn, encode_text, encode_user_broadcast};
use crate::hub::{DataKind, Frames};
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

/// A broadcast as the hub's observers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described<'a> {
    /// The user event (`send({event})`); empty when a JSON broadcast has
    /// none.
    pub event: Cow<'a, str>,
    /// The user payload (`{}` when a JSON broadcast has none).
    pub data: Bytes,
    /// How `data` is to be read.
    pub kind: DataKind,
}

/// `want` as a slice of `frame` at `at` when it is there (sharing the
/// frame's bytes), else a copy.
fn shared_slice(frame: Option<&Frame>, at: Option<usize>, want: &[u8]) -> Bytes {
    let bytes = match frame {
        Some(Frame::Text(t)) => Bytes::from(t.clone()),
        Some(Frame::Binary(b)) => b.clone(),
        None => Bytes::new(),
    };
    match at {
        Some(at) if bytes.get(at..at + want.len()) == Some(want) => {
            bytes.slice(at..at + want.len())
        }
        _ => Bytes::copy_from_slice(want),
    }
}

/// A JSON string token's text, borrowed unless it has escapes; `None` for
/// any other JSON value.
fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let inner = raw.get().strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw.get())
            .ok()
            .map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// The user event and payload of `b`, whose frames [`broadcast`] made:
/// the payload is a slice of the vsn 2.0.0 frame, so describing a
/// broadcast allocates nothing (it reads a JSON broadcast's envelope once,
/// borrowing the event name unless it has escapes).
pub fn describe<'a>(b: Broadcast<'a>, frames: &Frames) -> Described<'a> {
    let v2 = frames.for_codec(Vsn::V2.codec());
    match b {
        Broadcast::Json(raw) => {
            #[derive(Deserialize)]
            struct Envelope<'a> {
                #[serde(borrow)]
                event: Option<&'a RawValue>,
                #[serde(borrow)]
                payload: Option<&'a RawValue>,
            }
            let env = serde_json::from_str::<Envelope<'a>>(raw.get()).ok();
            let (event, payload) = env.map_or((None, None), |e| (e.event, e.payload));
            let event = event.and_then(json_str);
            let data = match payload {
                None => Bytes::from_static(b"{}"),
                Some(p) => {
                    // The v2 frame ends with the envelope verbatim, then `]`.
                    let env_at = v2.and_then(|f| f.len().checked_sub(raw.get().len() + 1));
                    let inner_at = p.get().as_ptr().addr() - raw.get().as_ptr().addr();
                    shared_slice(v2, env_at.map(|a| a + inner_at), p.get().as_bytes())
                }
            };
            Described {
                event: event.unwrap_or_default(),
                data,
                kind: DataKind::Json,
            }
        }
        Broadcast::User {
            event,
            encoding,
            data,
            ..
        } => {
            // The kind-4 frame ends with the payload.
            let at = v2.and_then(|f| f.len().checked_sub(data.len()));
            Described {
                event: Cow::Borrowed(event),
                data: shared_slice(v2, at, data),
                kind: match encoding {
                    Encoding::Json => DataKind::Json,
                    Encoding::Raw => DataKind::Binary,
                },
            }
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
    fn described_payload_shares_the_v2_frame() {
        let p = RawValue::from_string(
            r#"{"type":"broadcast","event":"cur\u0073or","payload":{"x":1}}"#.into(),
        )
        .unwrap();
        let b = Broadcast::Json(&p);
        let f = broadcast("realtime:room1", b).unwrap();
        let d = describe(b, &f);
        assert_eq!(d.event, "cursor");
        assert_eq!(&d.data[..], br#"{"x":1}"#);
        assert_eq!(d.kind, DataKind::Json);
        let v2 = get(&f, Vsn::V2).unwrap().as_bytes().as_ptr_range();
        assert!(
            v2.contains(&d.data.as_ptr()),
            "a slice of the frame, not a copy"
        );

        let b = Broadcast::Json(&RawValue::from_string(r#"{"type":"broadcast"}"#.into()).unwrap());
        let d = describe(b, &broadcast("realtime:r", b).unwrap());
        assert_eq!((d.event.as_ref(), &d.data[..]), ("", &b"{}"[..]));

        let b = Broadcast::User {
            event: "e",
            encoding: Encoding::Raw,
            meta: Some(r#"{"id":"1"}"#),
            data: &[1, 4],
        };
        let f = broadcast("realtime:r", b).unwrap();
        let d = describe(b, &f);
        assert_eq!((d.event.as_ref(), &d.data[..]), ("e", &[1u8, 4][..]));
        assert_eq!(d.kind, DataKind::Binary);
        let v2 = get(&f, Vsn::V2).unwrap().as_bytes().as_ptr_range();
        assert!(v2.contains(&d.data.as_ptr()));
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
