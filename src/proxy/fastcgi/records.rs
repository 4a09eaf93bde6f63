//! The FastCGI record codec (FastCGI 1.0 spec): bytes in, records out, and
//! records out as bytes. Pure: no I/O, no tokio.
//!
//! Owns: the 8-byte record header, padding, BEGIN_REQUEST and
//! END_REQUEST bodies, and the name-value pair encoding (1-byte lengths
//! below 128, else 4 bytes with the top bit set). Receives: byte buffers.
//! Hands on: [`Record`]s to the exchange, encoded bytes to the socket.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The only protocol version.
pub const VERSION: u8 = 1;
/// Bytes in a record header.
pub const HEADER_LEN: usize = 8;
/// The most content one record carries.
pub const MAX_CONTENT: usize = 0xffff;

pub const BEGIN_REQUEST: u8 = 1;
pub const ABORT_REQUEST: u8 = 2;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;

/// BEGIN_REQUEST role: a responder (the only one php-fpm implements).
const ROLE_RESPONDER: u16 = 1;
/// BEGIN_REQUEST flag: keep the connection open after the request.
const FLAG_KEEP_CONN: u8 = 1;

/// END_REQUEST protocol status: the request completed normally.
pub const REQUEST_COMPLETE: u8 = 0;

/// Why bytes are not a valid record stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("FastCGI version {0} is not 1")]
    Version(u8),
    #[error("END_REQUEST body is {0} bytes, not 8")]
    EndRequestLength(usize),
    #[error("a name-value pair is cut short")]
    TruncatedPair,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: u8,
    pub request_id: u16,
    pub content: Bytes,
}

/// The body of an END_REQUEST record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndRequest {
    pub app_status: u32,
    pub protocol_status: u8,
}

/// Appends one record header for `len` content bytes and `padding`.
fn header(out: &mut BytesMut, kind: u8, id: u16, len: usize, padding: u8) {
    debug_assert!(len <= MAX_CONTENT);
    out.put_u8(VERSION);
    out.put_u8(kind);
    out.put_u16(id);
    out.put_u16(len as u16);
    out.put_u8(padding);
    out.put_u8(0);
}

/// Padding that brings `len` to a multiple of 8, as php-fpm and nginx do.
fn padding_for(len: usize) -> u8 {
    ((8 - len % 8) % 8) as u8
}

/// Appends `content` as records of `kind`, split at [`MAX_CONTENT`] and
/// padded. Empty content appends nothing (use [`end_stream`]).
pub fn put_stream(out: &mut BytesMut, kind: u8, id: u16, content: &[u8]) {
    for chunk in content.chunks(MAX_CONTENT) {
        let pad = padding_for(chunk.len());
        out.reserve(HEADER_LEN + chunk.len() + pad as usize);
        header(out, kind, id, chunk.len(), pad);
        out.put_slice(chunk);
        out.put_bytes(0, pad as usize);
    }
}

/// Appends the empty record that ends a PARAMS or STDIN stream.
pub fn end_stream(out: &mut BytesMut, kind: u8, id: u16) {
    header(out, kind, id, 0, 0);
}

/// Appends a BEGIN_REQUEST for a responder; `keep_conn` asks the
/// application to keep the connection open afterwards.
pub fn begin_request(out: &mut BytesMut, id: u16, keep_conn: bool) {
    header(out, BEGIN_REQUEST, id, 8, 0);
    out.put_u16(ROLE_RESPONDER);
    out.put_u8(if keep_conn { FLAG_KEEP_CONN } else { 0 });
    out.put_bytes(0, 5);
}

/// Appends an ABORT_REQUEST.
pub fn abort_request(out: &mut BytesMut, id: u16) {
    header(out, ABORT_REQUEST, id, 0, 0);
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
    }
}

/// Appends one name-value pair to a PARAMS byte stream. Lengths over
/// 2³¹-1 cannot be encoded; callers never come near (heads are bounded).
pub fn put_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    put_len(out, name.len());
    put_len(out, value.len());
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

fn take_len(buf: &mut &[u8]) -> Result<usize, CodecError> {
    let first = *buf.first().ok_or(CodecError::TruncatedPair)?;
    if first < 0x80 {
        buf.advance(1);
        return Ok(first as usize);
    }
    if buf.len() < 4 {
        return Err(CodecError::TruncatedPair);
    }
    Ok((buf.get_u32() & 0x7fff_ffff) as usize)
}

/// One name-value pair, borrowed from the stream.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// Decodes a whole PARAMS (or GET_VALUES) byte stream into pairs.
pub fn pairs(mut buf: &[u8]) -> Result<Vec<Pair<'_>>, CodecError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let n = take_len(&mut buf)?;
        let v = take_len(&mut buf)?;
        if buf.len() < n.saturating_add(v) {
            return Err(CodecError::TruncatedPair);
        }
        let (name, rest) = buf.split_at(n);
        let (value, rest) = rest.split_at(v);
        out.push((name, value));
        buf = rest;
    }
    Ok(out)
}

/// Takes one whole record off the front of `buf`, or `None` when more
/// bytes are needed. Padding is consumed and dropped.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Record>, CodecError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[0] != VERSION {
        return Err(CodecError::Version(buf[0]));
    }
    let kind = buf[1];
    let request_id = u16::from_be_bytes([buf[2], buf[3]]);
    let len = u16::from_be_bytes([buf[4], buf[5]]) as usize;
    let pad = buf[6] as usize;
    if buf.len() < HEADER_LEN + len + pad {
        buf.reserve(HEADER_LEN + len + pad - buf.len());
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let content = buf.split_to(len).freeze();
    buf.advance(pad);
    Ok(Some(Record {
        kind,
        request_id,
        content,
    }))
}

/// Reads an END_REQUEST body.
pub fn end_request(content: &[u8]) -> Result<EndRequest, CodecError> {
    if content.len() != 8 {
        return Err(CodecError::EndRequestLength(content.len()));
    }
    Ok(EndRequest {
        app_status: u32::from_be_bytes([content[0], content[1], content[2], content[3]]),
        protocol_status: content[4],
    })
}

/// Encodes an END_REQUEST record (what a responder sends; for tests and
/// the fuzz round trip).
pub fn put_end_request(out: &mut BytesMut, id: u16, end: EndRequest) {
    header(out, END_REQUEST, id, 8, 0);
    out.put_u32(end.app_status);
    out.put_u8(end.protocol_status);
    out.put_bytes(0, 3);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_records_round_trip_split_and_padded() {
        let data: Vec<u8> = (0..MAX_CONTENT + 10).map(|i| i as u8).collect();
        let mut out = BytesMut::new();
        put_stream(&mut out, STDOUT, 1, &data);
        end_stream(&mut out, STDOUT, 1);
        let mut got = Vec::new();
        let mut records = 0;
        while let Some(r) = decode(&mut out).unwrap() {
            assert_eq!((r.kind, r.request_id), (STDOUT, 1));
            got.extend_from_slice(&r.content);
            records += 1;
        }
        assert_eq!(records, 3);
        assert_eq!(got, data);
        assert!(out.is_empty());
    }

    #[test]
    fn partial_records_wait_for_more() {
        let mut out = BytesMut::new();
        put_stream(&mut out, STDERR, 7, b"hello");
        let whole = out.clone();
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert_eq!(decode(&mut part).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(whole.len() % 8, 0);
    }

    #[test]
    fn pairs_use_one_and_four_byte_lengths() {
        let long = vec![b'x'; 200];
        let mut buf = Vec::new();
        put_pair(&mut buf, b"SCRIPT_NAME", b"/index.php");
        put_pair(&mut buf, b"HTTP_COOKIE", &long);
        put_pair(&mut buf, b"EMPTY", b"");
        assert_eq!(buf[0], 11);
        assert_eq!(&buf[24..28], &[0x80, 0, 0, 200]);
        let got = pairs(&buf).unwrap();
        assert_eq!(
            got,
            vec![
                (&b"SCRIPT_NAME"[..], &b"/index.php"[..]),
                (&b"HTTP_COOKIE"[..], &long[..]),
                (&b"EMPTY"[..], &b""[..]),
            ]
        );
        assert_eq!(pairs(&buf[..20]), Err(CodecError::TruncatedPair));
    }

    #[test]
    fn end_request_and_bad_version() {
        let mut out = BytesMut::new();
        let end = EndRequest {
            app_status: 3,
            protocol_status: REQUEST_COMPLETE,
        };
        put_end_request(&mut out, 1, end);
        let r = decode(&mut out).unwrap().unwrap();
        assert_eq!(r.kind, END_REQUEST);
        assert_eq!(end_request(&r.content), Ok(end));
        let mut bad = BytesMut::from(&[2u8, 6, 0, 1, 0, 0, 0, 0][..]);
        assert_eq!(decode(&mut bad), Err(CodecError::Version(2)));
    }

    #[test]
    fn begin_request_asks_to_keep_the_connection() {
        let mut out = BytesMut::new();
        begin_request(&mut out, 1, true);
        assert_eq!(&out[..], &[1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    }
}
