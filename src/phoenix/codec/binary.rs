//! vsn 2.0.0 binary user broadcasts (supabase/realtime `V2Serializer`).
//!
//! Kind 3, client → server:
//! `03|jr_len|ref_len|topic_len|ev_len|meta_len|enc|join_ref|ref|topic|event|meta|payload`.
//! Kind 4, server → client:
//! `04|topic_len|ev_len|meta_len|enc|topic|event|meta|payload`.
//! Every length is one byte counting UTF-8 bytes, so each header field is at
//! most 255 bytes. Kinds 0–2 (Phoenix's own binary push/reply/broadcast) are
//! never produced: realtime-js cannot decode them.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::value::RawValue;

use super::{CodecError, Encoding};

const USER_BROADCAST_PUSH: u8 = 3;
const USER_BROADCAST: u8 = 4;

/// A decoded kind-3 frame.
#[derive(Debug)]
pub struct UserBroadcastPush {
    /// The channel's join ref; an empty field decodes as `None`.
    pub join_ref: Option<String>,
    /// The message ref; an empty field decodes as `None`.
    pub r#ref: Option<String>,
    /// `realtime:<name>`.
    pub topic: String,
    /// The user event.
    pub event: String,
    /// Metadata object, if any.
    pub meta: Option<Box<RawValue>>,
    /// How the payload is to be read.
    pub encoding: Encoding,
    /// The user payload.
    pub payload: Bytes,
}

/// A decoded kind-4 frame (what a v2 subscriber receives).
#[derive(Debug, PartialEq, Eq)]
pub struct UserBroadcast {
    /// `realtime:<name>`.
    pub topic: String,
    /// The user event.
    pub event: String,
    /// Metadata JSON text, if any.
    pub meta: Option<String>,
    /// How the payload is to be read.
    pub encoding: Encoding,
    /// The user payload.
    pub payload: Bytes,
}

/// Reads length-prefixed fields out of one frame.
struct Cursor<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn header(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        self.take(n).map(|r| &self.data[r])
    }

    fn take(&mut self, n: usize) -> Result<std::ops::Range<usize>, CodecError> {
        let end = self.pos + n;
        if end > self.data.len() {
            return Err(CodecError::Truncated {
                need: end,
                have: self.data.len(),
            });
        }
        let r = self.pos..end;
        self.pos = end;
        Ok(r)
    }

    fn string(&mut self, n: u8, field: &'static str) -> Result<String, CodecError> {
        let r = self.take(usize::from(n))?;
        std::str::from_utf8(&self.data[r])
            .map(str::to_string)
            .map_err(|_| CodecError::NotUtf8 { field })
    }

    fn rest(&self) -> Bytes {
        self.data.slice(self.pos..)
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn meta(cur: &mut Cursor<'_>, len: u8) -> Result<Option<Box<RawValue>>, CodecError> {
    if len == 0 {
        return Ok(None);
    }
    let text = cur.string(len, "metadata")?;
    let raw = RawValue::from_string(text).map_err(|_| CodecError::BadMetadata)?;
    if !raw.get().trim_start().starts_with('{') {
        return Err(CodecError::BadMetadata);
    }
    Ok(Some(raw))
}

fn check_json(encoding: Encoding, payload: &[u8]) -> Result<(), CodecError> {
    if encoding == Encoding::Json {
        serde_json::from_slice::<&RawValue>(payload).map_err(|_| CodecError::BadJsonPayload)?;
    }
    Ok(())
}

/// Decodes a kind-3 frame from a client.
pub(super) fn decode_user_broadcast_push(data: &Bytes) -> Result<UserBroadcastPush, CodecError> {
    let mut cur = Cursor { data, pos: 0 };
    let kind = cur.header(1)?[0];
    if kind != USER_BROADCAST_PUSH {
        return Err(CodecError::UnknownKind { kind });
    }
    let h = cur.header(6)?;
    let (jr, rf, tp, ev, ml, enc) = (h[0], h[1], h[2], h[3], h[4], h[5]);
    let encoding = Encoding::from_byte(enc)?;
    let join_ref = non_empty(cur.string(jr, "join_ref")?);
    let r#ref = non_empty(cur.string(rf, "ref")?);
    let topic = cur.string(tp, "topic")?;
    let event = cur.string(ev, "user_event")?;
    let meta = meta(&mut cur, ml)?;
    let payload = cur.rest();
    check_json(encoding, &payload)?;
    Ok(UserBroadcastPush {
        join_ref,
        r#ref,
        topic,
        event,
        meta,
        encoding,
        payload,
    })
}

fn len8(field: &'static str, s: &[u8]) -> Result<u8, CodecError> {
    u8::try_from(s.len()).map_err(|_| CodecError::FieldTooLong {
        field,
        len: s.len(),
    })
}

/// Encodes a kind-4 frame for v2 subscribers.
pub fn encode_user_broadcast(
    topic: &str,
    event: &str,
    meta: Option<&str>,
    encoding: Encoding,
    payload: &[u8],
) -> Result<Bytes, CodecError> {
    let meta = meta.unwrap_or("").as_bytes();
    let t = len8("topic", topic.as_bytes())?;
    let e = len8("userEvent", event.as_bytes())?;
    let m = len8("metadata", meta)?;
    let mut b = BytesMut::with_capacity(5 + topic.len() + event.len() + meta.len() + payload.len());
    b.put_slice(&[USER_BROADCAST, t, e, m, encoding.byte()]);
    b.put_slice(topic.as_bytes());
    b.put_slice(event.as_bytes());
    b.put_slice(meta);
    b.put_slice(payload);
    Ok(b.freeze())
}

/// Encodes a kind-3 frame, as realtime-js does (used by the upstream splice
/// and the round-trip fuzz target).
pub fn encode_user_broadcast_push(p: &UserBroadcastPush) -> Result<Bytes, CodecError> {
    let jr = p.join_ref.as_deref().unwrap_or("").as_bytes();
    let rf = p.r#ref.as_deref().unwrap_or("").as_bytes();
    let meta = p.meta.as_deref().map_or("", RawValue::get).as_bytes();
    let head = [
        USER_BROADCAST_PUSH,
        len8("joinRef", jr)?,
        len8("ref", rf)?,
        len8("topic", p.topic.as_bytes())?,
        len8("userEvent", p.event.as_bytes())?,
        len8("metadata", meta)?,
        p.encoding.byte(),
    ];
    let mut b = BytesMut::with_capacity(
        head.len()
            + jr.len()
            + rf.len()
            + p.topic.len()
            + p.event.len()
            + meta.len()
            + p.payload.len(),
    );
    b.put_slice(&head);
    for part in [
        jr,
        rf,
        p.topic.as_bytes(),
        p.event.as_bytes(),
        meta,
        &p.payload,
    ] {
        b.put_slice(part);
    }
    Ok(b.freeze())
}

/// Decodes a kind-4 frame (what realtime-js does; used by tests and the
/// upstream splice).
pub fn decode_user_broadcast(data: &Bytes) -> Result<UserBroadcast, CodecError> {
    let mut cur = Cursor { data, pos: 0 };
    let kind = cur.header(1)?[0];
    if kind != USER_BROADCAST {
        return Err(CodecError::UnknownKind { kind });
    }
    let h = cur.header(4)?;
    let (tp, ev, ml, enc) = (h[0], h[1], h[2], h[3]);
    let encoding = Encoding::from_byte(enc)?;
    let topic = cur.string(tp, "topic")?;
    let event = cur.string(ev, "user_event")?;
    let meta = non_empty(cur.string(ml, "metadata")?);
    Ok(UserBroadcast {
        topic,
        event,
        meta,
        encoding,
        payload: cur.rest(),
    })
}
