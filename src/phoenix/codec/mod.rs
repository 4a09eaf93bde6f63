//! The Phoenix channels serializer, pure: bytes in, messages out, and back.
//!
//! Owns: the two wire encodings Supabase Realtime clients speak — vsn 1.0.0
//! (a JSON object per message) and vsn 2.0.0 (a JSON array
//! `[join_ref, ref, topic, event, payload]`, plus the binary user-broadcast
//! frames: kind 3 from clients, kind 4 to clients). Receives: one WebSocket
//! text or binary message at a time. Hands on: a decoded [`Push`] to the
//! session, and encoded frames (text `String`s, binary `Bytes`) to whoever
//! fans them out. No tokio, no sockets, no hub: everything here is a function
//! of its arguments, so it is unit tested against the serializer fixtures of
//! supabase/realtime and realtime-js and fuzzed (`fuzz/`).
//!
//! Payloads stay raw JSON text ([`RawValue`]) from decode to encode: a
//! broadcast's user payload is never parsed into a tree and re-printed.

mod binary;
mod encode;
mod roundtrip;

pub use binary::{
    UserBroadcast, UserBroadcastPush, decode_user_broadcast, encode_user_broadcast,
    encode_user_broadcast_push,
};
pub use encode::{Outgoing, encode_text};
pub use roundtrip::{check_binary, check_frame};

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A negotiated protocol version (the `vsn` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vsn {
    /// `1.0.0`: JSON objects, no binary frames.
    V1,
    /// `2.0.0`: JSON arrays, binary user broadcasts.
    V2,
}

impl Vsn {
    /// Parses the `vsn` query parameter; a missing one means 1.0.0.
    ///
    /// Phoenix accepts `~> 1.0.0` and `~> 2.0.0`, i.e. any `1.0.x` / `2.0.x`.
    pub fn negotiate(vsn: Option<&str>) -> Result<Vsn, CodecError> {
        let Some(v) = vsn else { return Ok(Vsn::V1) };
        let mut parts = v.split('.');
        let (major, minor, patch) = (parts.next(), parts.next(), parts.next());
        let numeric = |p: Option<&str>| {
            p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        if parts.next().is_some() || !numeric(major) || !numeric(minor) || !numeric(patch) {
            return Err(CodecError::UnsupportedVsn { vsn: v.to_string() });
        }
        match (major, minor) {
            (Some("1"), Some("0")) => Ok(Vsn::V1),
            (Some("2"), Some("0")) => Ok(Vsn::V2),
            _ => Err(CodecError::UnsupportedVsn { vsn: v.to_string() }),
        }
    }

    /// Index of this encoding in a per-codec frame set (the hub's
    /// `Frames::PerCodec`).
    pub const fn codec(self) -> u8 {
        match self {
            Vsn::V1 => 0,
            Vsn::V2 => 1,
        }
    }

    /// The version string, as clients send it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Vsn::V1 => "1.0.0",
            Vsn::V2 => "2.0.0",
        }
    }
}

/// Why a message could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The `vsn` is not one Phoenix serves.
    #[error("unsupported protocol version `{vsn}`: use vsn=1.0.0 or vsn=2.0.0")]
    UnsupportedVsn {
        /// What the client asked for.
        vsn: String,
    },
    /// The text was not JSON of the expected shape.
    #[error("malformed {vsn} message: {detail}")]
    Json {
        /// Which encoding was expected.
        vsn: &'static str,
        /// serde_json's description (line/column included).
        detail: String,
    },
    /// A vsn 1.0.0 client sent a binary frame.
    #[error("binary frames are not part of vsn 1.0.0")]
    BinaryOnV1,
    /// A binary frame is shorter than its header says.
    #[error("binary frame truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes the header requires.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A binary frame of a kind this side does not accept.
    #[error("binary frame kind {kind} is not accepted here")]
    UnknownKind {
        /// Byte 0 of the frame.
        kind: u8,
    },
    /// A binary frame's payload encoding byte is neither 0 nor 1.
    #[error("unknown payload encoding {0}")]
    UnknownEncoding(u8),
    /// A length-prefixed field is not UTF-8.
    #[error("{field} is not UTF-8")]
    NotUtf8 {
        /// Which field.
        field: &'static str,
    },
    /// A binary frame's metadata is not a JSON object.
    #[error("binary frame metadata is not a JSON object")]
    BadMetadata,
    /// A JSON-encoded binary payload is not valid JSON.
    #[error("binary frame payload is marked JSON but is not")]
    BadJsonPayload,
    /// A field is longer than the 255 bytes a u8 length allows.
    #[error("{field} length {len} exceeds maximum of 255")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its UTF-8 byte length.
        len: usize,
    },
}

/// How a binary user payload is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Opaque bytes (`ArrayBuffer` in realtime-js); never reaches v1 sockets.
    Raw,
    /// UTF-8 JSON text.
    Json,
}

impl Encoding {
    /// The wire byte.
    pub const fn byte(self) -> u8 {
        match self {
            Encoding::Raw => 0,
            Encoding::Json => 1,
        }
    }

    /// From the wire byte.
    pub fn from_byte(b: u8) -> Result<Encoding, CodecError> {
        match b {
            0 => Ok(Encoding::Raw),
            1 => Ok(Encoding::Json),
            other => Err(CodecError::UnknownEncoding(other)),
        }
    }
}

/// One inbound message from a client.
#[derive(Debug)]
pub struct Push {
    /// The channel's join ref (the `ref` of its `phx_join`), if sent.
    pub join_ref: Option<String>,
    /// This message's ref; replies echo it.
    pub r#ref: Option<String>,
    /// `phoenix` or `realtime:<name>`.
    pub topic: String,
    /// `heartbeat`, `phx_join`, `broadcast`, `presence`, ...
    pub event: String,
    /// The payload as sent.
    pub payload: Payload,
}

/// An inbound payload.
#[derive(Debug)]
pub enum Payload {
    /// A JSON text message's payload, raw.
    Json(Box<RawValue>),
    /// A kind-3 binary user broadcast (event is always `broadcast`).
    UserBroadcast {
        /// The user event name (`send({event})`).
        event: String,
        /// How `data` is to be read.
        encoding: Encoding,
        /// Allowed envelope keys as a JSON object, if any were sent.
        meta: Option<Box<RawValue>>,
        /// The user payload bytes.
        data: Bytes,
    },
}

/// Decodes a text message of `vsn`.
pub fn decode_text(vsn: Vsn, text: &str) -> Result<Push, CodecError> {
    match vsn {
        Vsn::V1 => {
            let m: V1In = serde_json::from_str(text).map_err(|e| json_error(vsn, &e))?;
            Ok(Push {
                join_ref: m.join_ref.map(RefStr::into_string),
                r#ref: m.r#ref.map(RefStr::into_string),
                topic: m.topic,
                event: m.event,
                payload: Payload::Json(m.payload),
            })
        }
        Vsn::V2 => {
            let V2In(join_ref, r#ref, topic, event, payload) =
                serde_json::from_str(text).map_err(|e| json_error(vsn, &e))?;
            Ok(Push {
                join_ref: join_ref.map(RefStr::into_string),
                r#ref: r#ref.map(RefStr::into_string),
                topic,
                event,
                payload: Payload::Json(payload),
            })
        }
    }
}

/// Decodes a binary message of `vsn` (only kind 3 is accepted from clients).
pub fn decode_binary(vsn: Vsn, data: &Bytes) -> Result<Push, CodecError> {
    if vsn == Vsn::V1 {
        return Err(CodecError::BinaryOnV1);
    }
    let p = binary::decode_user_broadcast_push(data)?;
    Ok(Push {
        join_ref: p.join_ref,
        r#ref: p.r#ref,
        topic: p.topic,
        event: "broadcast".to_string(),
        payload: Payload::UserBroadcast {
            event: p.event,
            encoding: p.encoding,
            meta: p.meta,
            data: p.payload,
        },
    })
}

fn json_error(vsn: Vsn, e: &serde_json::Error) -> CodecError {
    CodecError::Json {
        vsn: vsn.as_str(),
        detail: e.to_string(),
    }
}

/// A ref as clients send it: a string, though some clients send numbers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RefStr {
    S(String),
    N(serde_json::Number),
}

impl RefStr {
    fn into_string(self) -> String {
        match self {
            RefStr::S(s) => s,
            RefStr::N(n) => n.to_string(),
        }
    }
}

/// vsn 1.0.0 inbound object. `ref` must be present but may be null; unknown
/// keys are ignored as Phoenix does.
#[derive(Deserialize)]
struct V1In {
    topic: String,
    event: String,
    payload: Box<RawValue>,
    #[serde(rename = "ref", deserialize_with = "present_nullable")]
    r#ref: Option<RefStr>,
    #[serde(default)]
    join_ref: Option<RefStr>,
}

fn present_nullable<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<RefStr>, D::Error> {
    Option::<RefStr>::deserialize(d)
}

/// vsn 2.0.0 inbound array: five elements, extra trailing ones ignored (as
/// Phoenix's `[join_ref, ref, topic, event, payload | _]` does).
struct V2In(
    Option<RefStr>,
    Option<RefStr>,
    String,
    String,
    Box<RawValue>,
);

impl<'de> Deserialize<'de> for V2In {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = V2In;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array [join_ref, ref, topic, event, payload]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V2In, A::Error> {
                let missing = |i| de::Error::invalid_length(i, &self);
                let jr = seq.next_element()?.ok_or_else(|| missing(0))?;
                let r = seq.next_element()?.ok_or_else(|| missing(1))?;
                let t = seq.next_element()?.ok_or_else(|| missing(2))?;
                let e = seq.next_element()?.ok_or_else(|| missing(3))?;
                let p = seq.next_element()?.ok_or_else(|| missing(4))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(V2In(jr, r, t, e, p))
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests;
