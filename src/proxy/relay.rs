//! One bodiless request over a bare upstream connection, for the
//! hand-written HTTP/1.1 path ([`crate::http::h1`]): write the request
//! head, read the response head, relay the response to the client as it
//! comes (the body's framing is tracked, never re-encoded), and put the
//! connection back in the pool when the message ended cleanly.
//!
//! A reused connection that turns out closed before any response byte
//! arrived is replaced and the request repeated, when its method is
//! idempotent (as nginx does); a fresh connection is never retried.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Buf, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Upstream;
use super::chunked::ChunkedEnd;
use super::forward::dial_failure;
use super::headers::strip_hop_by_hop;
use super::pool::UpstreamIo;
use crate::http::error::{ErrorKind, HttpError};

/// A response head larger than this is refused (hyper's client limit).
const MAX_HEAD: usize = 64 * 1024;
/// Header slots for one response head.
const MAX_HEADERS: usize = 100;

/// The request to relay.
pub(crate) struct Outgoing<'a> {
    /// The serialised request head (no body follows).
    pub head: &'a [u8],
    pub method: &'a Method,
    /// The client connection closes after this response.
    pub close: bool,
}

/// A response that went out whole.
#[derive(Debug)]
pub(crate) struct Relayed {
    pub status: StatusCode,
    /// Body bytes sent, framing included.
    pub bytes: u64,
    /// The client connection must close now (asked for, or the body was
    /// delimited by the upstream closing).
    pub close: bool,
}

/// Why a relay failed.
#[derive(Debug)]
pub(crate) enum RelayError {
    /// Nothing reached the client yet: answer with this error.
    Unsent(HttpError),
    /// The client was sent part of a response with this status (`bytes`
    /// of its body), or went away: close it.
    Cut { status: StatusCode, bytes: u64 },
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes (no length and not chunked).
    Close,
}

/// What the response head says.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    /// The upstream keeps the connection open after this response.
    keep_alive: bool,
    /// Bytes of the head in the read buffer.
    len: usize,
}

/// Why no response head was read.
#[derive(Debug)]
enum HeadError {
    /// The connection ended or failed; `heard` is whether any byte of a
    /// response arrived first.
    Lost {
        heard: bool,
        error: Option<io::Error>,
    },
    Malformed(&'static str),
}

/// Sends `req` to `up` and relays the answer to `client`. `rbuf` and `out`
/// are the connection's scratch buffers.
pub(crate) async fn relay<C>(
    up: &Upstream,
    req: Outgoing<'_>,
    client: &mut C,
    rbuf: &mut BytesMut,
    out: &mut Vec<u8>,
) -> Result<Relayed, RelayError>
where
    C: AsyncWrite + Unpin,
{
    let t = &up.target;
    let url = &t.url;
    // Bounded: every retry consumed one idle connection, and a fresh
    // connection is never retried.
    let (mut io, head) = loop {
        let (mut io, reused) = up
            .pool
            .checkout_raw()
            .await
            .map_err(|d| RelayError::Unsent(dial_failure(&d, url)))?;
        rbuf.clear();
        let exchange = async {
            send(&mut io, req.head).await.map_err(|e| HeadError::Lost {
                heard: false,
                error: Some(e),
            })?;
            read_head(&mut io, rbuf, req.method).await
        };
        match tokio::time::timeout(t.response_timeout, exchange).await {
            Err(_) => {
                return Err(unsent(ErrorKind::UpstreamResponseTimeout, url));
            }
            Ok(Ok(head)) => break (io, head),
            Ok(Err(HeadError::Lost { heard: false, .. }))
                if reused && req.method.is_idempotent() =>
            {
                tracing::debug!(upstream = %url, "pooled upstream connection was closed; repeating the request");
            }
            Ok(Err(e)) => {
                let reason: Arc<str> = match e {
                    HeadError::Lost { error: Some(e), .. } => e.to_string().into(),
                    HeadError::Lost { error: None, .. } => {
                        "connection closed before message completed".into()
                    }
                    HeadError::Malformed(why) => why.into(),
                };
                return Err(unsent(ErrorKind::UpstreamBroken { reason }, url));
            }
        }
    };
    rbuf.advance(head.len);
    let close = req.close || head.framing == Framing::Close;
    write_head(out, &head, close);

    // The body bytes that came with the head go out in the same write.
    let mut body = BodyState::new(head.framing);
    let mut sent: u64 = 0;
    let cut = |bytes| RelayError::Cut {
        status: head.status,
        bytes,
    };
    let used = body.take(rbuf).map_err(|_| cut(0))?;
    out.extend_from_slice(&rbuf[..used]);
    rbuf.advance(used);
    client.write_all(out).await.map_err(|_| cut(0))?;
    sent += used as u64;
    while !body.done() {
        rbuf.clear();
        rbuf.reserve(16 * 1024);
        match io.read_buf(rbuf).await {
            Ok(0) if head.framing == Framing::Close => break,
            Ok(0) | Err(_) => {
                tracing::debug!(upstream = %url, "upstream connection ended mid-body");
                return Err(cut(sent));
            }
            Ok(_) => {}
        }
        let used = body.take(rbuf).map_err(|_| cut(sent))?;
        client
            .write_all(&rbuf[..used])
            .await
            .map_err(|_| cut(sent))?;
        rbuf.advance(used);
        sent += used as u64;
    }
    client.flush().await.map_err(|_| cut(sent))?;
    // Reusable only when the upstream keeps it open and sent nothing
    // beyond this message.
    if head.keep_alive && head.framing != Framing::Close && rbuf.is_empty() {
        up.pool.checkin_raw(io);
    }
    Ok(Relayed {
        status: head.status,
        bytes: sent,
        close,
    })
}

fn unsent(kind: ErrorKind, url: &Arc<str>) -> RelayError {
    RelayError::Unsent(HttpError::with_upstream(kind, url.clone()))
}

async fn send(io: &mut UpstreamIo, head: &[u8]) -> io::Result<()> {
    io.write_all(head).await?;
    io.flush().await
}

/// Reads until a final (non-1xx) response head is complete.
async fn read_head(
    io: &mut UpstreamIo,
    rbuf: &mut BytesMut,
    method: &Method,
) -> Result<Head, HeadError> {
    let mut heard = false;
    loop {
        if !rbuf.is_empty() {
            match parse_head(rbuf, method)? {
                Some(h) if h.status.is_informational() => {
                    // 103 Early Hints and the like: not relayed.
                    rbuf.advance(h.len);
                    continue;
                }
                Some(h) => return Ok(h),
                None if rbuf.len() >= MAX_HEAD => {
                    return Err(HeadError::Malformed("its response head is too large"));
                }
                None => {}
            }
        }
        rbuf.reserve(8 * 1024);
        match io.read_buf(rbuf).await {
            Ok(0) => return Err(HeadError::Lost { heard, error: None }),
            Ok(_) => heard = true,
            Err(e) => {
                return Err(HeadError::Lost {
                    heard,
                    error: Some(e),
                });
            }
        }
    }
}

/// Parses a response head at the start of `buf`; `None` until complete.
fn parse_head(buf: &[u8], method: &Method) -> Result<Option<Head>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HeadError::Malformed("it sent an invalid response head")),
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(HeadError::Malformed("it sent an invalid status code"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(HeadError::Malformed(
            "it switched protocols without a matching WebSocket upgrade",
        ));
    }
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HeadError::Malformed("it sent an invalid header name"))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| HeadError::Malformed("it sent an invalid header value"))?;
        headers.append(name, value);
    }
    // HTTP/1.0 upstreams are not reused: their keep-alive is opt-in and
    // rare enough not to bother.
    let keep_alive = resp.version == Some(1) && !has_token(&headers, header::CONNECTION, "close");
    let framing = framing(&headers, status, method)?;
    strip_hop_by_hop(&mut headers);
    if framing == Framing::Chunked {
        // A length next to chunked is void (RFC 9112 §6.3).
        headers.remove(header::CONTENT_LENGTH);
    }
    Ok(Some(Head {
        status,
        headers,
        framing,
        keep_alive,
        len,
    }))
}

/// The body length rules of RFC 9112 §6.3.
fn framing(headers: &HeaderMap, status: StatusCode, method: &Method) -> Result<Framing, HeadError> {
    if method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational()
    {
        return Ok(Framing::Empty);
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        // Chunked only when it is the final coding; otherwise the body
        // runs until the connection closes.
        let last = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|t| !t.is_empty());
        return Ok(match last {
            Some(t) if t.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::Close,
        });
    }
    let mut length = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        let n = v
            .to_str()
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(HeadError::Malformed("it sent an invalid content-length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(HeadError::Malformed("it sent conflicting content-lengths"));
        }
        length = Some(n);
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::Close,
    })
}

fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The client-bound response head (hop-by-hop headers are already out),
/// with the framing restated for this hop.
fn write_head(out: &mut Vec<u8>, head: &Head, close: bool) {
    let headers = &head.headers;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(head.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    write_headers(out, headers);
    if head.framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(httpdate::fmt_http_date(SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: value` lines.
pub(crate) fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// How much of the body is still to come.
enum BodyState {
    Empty,
    Length(u64),
    Chunked(ChunkedEnd),
    Close,
}

impl BodyState {
    fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty => BodyState::Empty,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(ChunkedEnd::default()),
            Framing::Close => BodyState::Close,
        }
    }

    fn done(&self) -> bool {
        match self {
            BodyState::Empty => true,
            BodyState::Length(left) => *left == 0,
            BodyState::Chunked(c) => c.is_done(),
            BodyState::Close => false,
        }
    }

    /// How many bytes at the start of `buf` belong to the body.
    fn take(&mut self, buf: &[u8]) -> Result<usize, super::chunked::Malformed> {
        Ok(match self {
            BodyState::Empty => 0,
            BodyState::Length(left) => {
                let n = (*left).min(buf.len() as u64);
                *left -= n;
                n as usize
            }
            BodyState::Chunked(c) => c.feed(buf)?,
            BodyState::Close => buf.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str, method: Method) -> Head {
        parse_head(raw.as_bytes(), &method).unwrap().unwrap()
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", Method::GET);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", Method::HEAD);
        assert_eq!(h.framing, Framing::Empty);
        let h = head(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            Method::GET,
        );
        assert_eq!(h.framing, Framing::Chunked);
        let h = head(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            Method::GET,
        );
        assert_eq!(h.framing, Framing::Close);
        let h = head("HTTP/1.1 204 No Content\r\n\r\n", Method::GET);
        assert_eq!(h.framing, Framing::Empty);
        let h = head("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", Method::GET);
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        let h = head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n", Method::GET);
        assert!(!h.keep_alive);
    }

    #[test]
    fn bad_lengths_and_switches_are_refused() {
        for raw in [
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            assert!(parse_head(raw.as_bytes(), &Method::GET).is_err(), "{raw}");
        }
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-le", &Method::GET)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_client_head_drops_hop_by_hop_and_restates_framing() {
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
             Transfer-Encoding: chunked\r\nContent-Length: 3\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT\r\nX-App: yes\r\n\r\n",
            Method::GET,
        );
        let mut out = Vec::new();
        write_head(&mut out, &h, false);
        let text = String::from_utf8(out.clone()).unwrap();
        let mut lines: Vec<&str> = text.split("\r\n").collect();
        lines[1..4].sort_unstable();
        assert_eq!(
            lines,
            [
                "HTTP/1.1 200 OK",
                "date: Sun, 22 Nov 2026 10:00:00 GMT",
                "transfer-encoding: chunked",
                "x-app: yes",
                "",
                ""
            ]
        );
        let h = head(
            "HTTP/1.1 404 Nope\r\ncontent-length: 0\r\n\r\n",
            Method::GET,
        );
        write_head(&mut out, &h, true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: "));
        assert!(text.ends_with("connection: close\r\n\r\n"));
    }
}
