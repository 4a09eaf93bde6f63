//! The cross-node message: a compact binary envelope and its decoder.
//!
//! Owns: the wire format of one published hub [`Message`] as it travels
//! through Redis between nodes, with the sending node's id and sequence
//! number. Receives: a message on the publishing side ([`encode`]), the
//! bytes of a Redis message on the receiving side ([`decode`], fuzzed by
//! `fuzz/fuzz_targets/cluster_envelope.rs`). Hands on: bytes to publish, or
//! an [`Envelope`] whose data and frames are slices of the received buffer
//! (no copy). Pure: no I/O, no tokio.
//!
//! Layout (integers big-endian; `s8`/`s16` are a UTF-8 string after a u8 /
//! u16 length, `b32` bytes after a u32 length):
//!
//! ```text
//! u8  version (1)
//! u8  flags: bits 0-1 data kind (0 text, 1 json, 2 binary),
//!            bits 2-3 origin (0 socket, 1 rest, 2 bridge),
//!            bit 4 an excluded socket follows; other bits 0
//! u64 sequence number of the sending node (1, 2, …)
//! s8  node id   s16 app id   s16 channel   s16 event
//! s16 except (bit 4)         s16 origin socket id (origin = socket)
//! b32 data
//! u8  frames: 0 = one frame for every codec, 1 = one per codec
//!     one:      u8 type (1 text, 2 binary), b32 payload
//!     per codec: u8 count, then per codec u8 type (0 none, 1 text,
//!                2 binary) and, unless none, b32 payload
//! ```
//!
//! Nothing may follow the frames. Text frames and strings must be UTF-8.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::hub::{DataKind, Frames, Message, Origin};
use crate::ws::Frame;

/// The format version written and accepted.
pub const VERSION: u8 = 1;

const EXCEPT: u8 = 1 << 4;

/// Where a message entered the cluster, as carried between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireOrigin<'a> {
    /// A client's event, with its socket id.
    Socket(&'a str),
    /// A REST publish.
    Rest,
    /// The bridge's republish.
    Bridge,
}

/// A decoded cross-node message; strings borrow the received buffer, data
/// and frames share it.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// The sending node's sequence number.
    pub seq: u64,
    /// The sending node's id.
    pub node: &'a str,
    /// The app namespace it was published in.
    pub app: &'a str,
    pub channel: &'a str,
    pub event: &'a str,
    pub except: Option<&'a str>,
    pub origin: WireOrigin<'a>,
    pub kind: DataKind,
    pub data: Bytes,
    pub frames: Frames,
}

impl Envelope<'_> {
    /// The message to publish on the receiving node, marked as coming from
    /// the sending node so no observer acts on it again. An exclusion of
    /// the sending socket itself is dropped: that socket lives on the
    /// sending node, and socket ids need only be unique per node (Phoenix's
    /// are a per-process counter), so here it could name another socket.
    pub fn message(&self) -> Message<'_> {
        let except = match (self.except, self.origin) {
            (Some(e), WireOrigin::Socket(s)) if e == s => None,
            (e, _) => e,
        };
        Message {
            channel: self.channel,
            event: self.event,
            data: &self.data,
            kind: self.kind,
            except,
            origin: Origin::Node(self.node),
            frames: &self.frames,
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Messages from other nodes are never sent on.
    #[error("a message from another node is not sent on")]
    FromNode,
    /// A field is longer than its length prefix allows.
    #[error("`{field}` is too long for the cluster envelope")]
    TooLong { field: &'static str },
}

/// Why bytes are not an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("envelope truncated")]
    Truncated,
    #[error("unknown envelope version {0}")]
    Version(u8),
    #[error("bad envelope flags {0:#04x}")]
    Flags(u8),
    #[error("`{0}` is not UTF-8")]
    Utf8(&'static str),
    #[error("unknown frame type {0}")]
    FrameType(u8),
    #[error("{0} bytes after the envelope")]
    Trailing(usize),
}

fn put_s8(out: &mut BytesMut, field: &'static str, s: &str) -> Result<(), EncodeError> {
    let n = u8::try_from(s.len()).map_err(|_| EncodeError::TooLong { field })?;
    out.put_u8(n);
    out.put_slice(s.as_bytes());
    Ok(())
}

fn put_s16(out: &mut BytesMut, field: &'static str, s: &str) -> Result<(), EncodeError> {
    let n = u16::try_from(s.len()).map_err(|_| EncodeError::TooLong { field })?;
    out.put_u16(n);
    out.put_slice(s.as_bytes());
    Ok(())
}

fn put_b32(out: &mut BytesMut, field: &'static str, b: &[u8]) -> Result<(), EncodeError> {
    let n = u32::try_from(b.len()).map_err(|_| EncodeError::TooLong { field })?;
    out.put_u32(n);
    out.put_slice(b);
    Ok(())
}

fn put_frame(out: &mut BytesMut, f: &Frame) -> Result<(), EncodeError> {
    match f {
        Frame::Text(t) => {
            out.put_u8(1);
            put_b32(out, "frame", t.as_bytes())
        }
        Frame::Binary(b) => {
            out.put_u8(2);
            put_b32(out, "frame", b)
        }
    }
}

/// Encodes `msg`, published in `app` on this node (`node`, its `seq`-th
/// cross-node message).
pub fn encode(node: &str, seq: u64, app: &str, msg: &Message<'_>) -> Result<Bytes, EncodeError> {
    let (origin, socket) = match msg.origin {
        Origin::Socket(s) => (0u8, Some(s)),
        Origin::Rest => (1, None),
        Origin::Bridge => (2, None),
        Origin::Node(_) => return Err(EncodeError::FromNode),
    };
    let kind = match msg.kind {
        DataKind::Text => 0u8,
        DataKind::Json => 1,
        DataKind::Binary => 2,
    };
    let frames_len = match msg.frames {
        Frames::One(f) => 5 + f.len(),
        Frames::PerCodec(v) => v
            .iter()
            .map(|f| f.as_ref().map_or(1, |f| 5 + f.len()))
            .sum(),
    };
    let mut out = BytesMut::with_capacity(
        32 + node.len()
            + app.len()
            + msg.channel.len()
            + msg.event.len()
            + msg.except.map_or(0, str::len)
            + socket.map_or(0, str::len)
            + msg.data.len()
            + frames_len,
    );
    out.put_u8(VERSION);
    let except = if msg.except.is_some() { EXCEPT } else { 0 };
    out.put_u8(kind | origin << 2 | except);
    out.put_u64(seq);
    put_s8(&mut out, "node", node)?;
    put_s16(&mut out, "app", app)?;
    put_s16(&mut out, "channel", msg.channel)?;
    put_s16(&mut out, "event", msg.event)?;
    if let Some(e) = msg.except {
        put_s16(&mut out, "except", e)?;
    }
    if let Some(s) = socket {
        put_s16(&mut out, "socket", s)?;
    }
    put_b32(&mut out, "data", msg.data)?;
    match msg.frames {
        Frames::One(f) => {
            out.put_u8(0);
            put_frame(&mut out, f)?;
        }
        Frames::PerCodec(v) => {
            out.put_u8(1);
            let n = u8::try_from(v.len()).map_err(|_| EncodeError::TooLong { field: "frames" })?;
            out.put_u8(n);
            for f in v.iter() {
                match f {
                    None => out.put_u8(0),
                    Some(f) => put_frame(&mut out, f)?,
                }
            }
        }
    }
    Ok(out.freeze())
}

/// A cursor over the received buffer.
struct Reader<'a> {
    buf: &'a Bytes,
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let buf: &'a [u8] = self.buf;
        let end = self.at.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = buf.get(self.at..end).ok_or(DecodeError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn str(&mut self, n: usize, field: &'static str) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.take(n)?).map_err(|_| DecodeError::Utf8(field))
    }

    fn s8(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let n = usize::from(self.u8()?);
        self.str(n, field)
    }

    fn s16(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let n = self.u16()?;
        self.str(n, field)
    }

    /// `n` bytes as a slice of the shared buffer.
    fn shared(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.at;
        self.take(n)?;
        Ok(self.buf.slice(start..self.at))
    }

    fn b32(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.u32()?;
        self.shared(n)
    }

    /// A frame of type `t` (1 text, 2 binary).
    fn frame(&mut self, t: u8) -> Result<Frame, DecodeError> {
        match t {
            1 => Utf8Bytes::try_from(self.b32()?)
                .map(Frame::Text)
                .map_err(|_| DecodeError::Utf8("frame")),
            2 => Ok(Frame::Binary(self.b32()?)),
            t => Err(DecodeError::FrameType(t)),
        }
    }
}

/// Decodes one envelope; data and frames are slices of `buf`.
pub fn decode(buf: &Bytes) -> Result<Envelope<'_>, DecodeError> {
    let mut r = Reader { buf, at: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let flags = r.u8()?;
    let kind = match flags & 0b11 {
        0 => DataKind::Text,
        1 => DataKind::Json,
        2 => DataKind::Binary,
        _ => return Err(DecodeError::Flags(flags)),
    };
    let origin = (flags >> 2) & 0b11;
    if origin == 3 || flags & !(0b1111 | EXCEPT) != 0 {
        return Err(DecodeError::Flags(flags));
    }
    let seq = r.u64()?;
    let node = r.s8("node")?;
    let app = r.s16("app")?;
    let channel = r.s16("channel")?;
    let event = r.s16("event")?;
    let except = if flags & EXCEPT != 0 {
        Some(r.s16("except")?)
    } else {
        None
    };
    let origin = match origin {
        0 => WireOrigin::Socket(r.s16("socket")?),
        1 => WireOrigin::Rest,
        _ => WireOrigin::Bridge,
    };
    let data = r.b32()?;
    let frames = match r.u8()? {
        0 => {
            let t = r.u8()?;
            Frames::One(r.frame(t)?)
        }
        1 => {
            let n = r.u8()?;
            let mut v = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                v.push(match r.u8()? {
                    0 => None,
                    t => Some(r.frame(t)?),
                });
            }
            Frames::PerCodec(v.into())
        }
        t => return Err(DecodeError::FrameType(t)),
    };
    if r.at != buf.len() {
        return Err(DecodeError::Trailing(buf.len() - r.at));
    }
    Ok(Envelope {
        seq,
        node,
        app,
        channel,
        event,
        except,
        origin,
        kind,
        data,
        frames,
    })
}

/// The message an envelope was made from, as [`encode`] takes it (the
/// origin as the sending node saw it).
pub fn original<'e>(e: &'e Envelope<'_>) -> Message<'e> {
    Message {
        except: e.except,
        origin: match e.origin {
            WireOrigin::Socket(s) => Origin::Socket(s),
            WireOrigin::Rest => Origin::Rest,
            WireOrigin::Bridge => Origin::Bridge,
        },
        ..e.message()
    }
}

#[cfg(test)]
mod tests;
