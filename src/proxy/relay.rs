//! One request, bodiless or with its whole body in hand, over a bare
//! upstream connection, for the hand-written HTTP/1.1 path
//! ([`crate::server::h1`]): write the request, read the response head, relay
//! the response to the client as it comes (the body's framing is tracked,
//! never re-encoded), and put the connection back in the pool when the
//! message ended cleanly.
//!
//! A reused connection that turns out closed before any response byte
//! arrived is replaced and the request repeated, when its method is
//! idempotent (as nginx does); a fresh connection is never retried.

use std::io::{self, Write as _};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Buf, BytesMut};
use http::header::HeaderMap;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Upstream;
use super::chunked::ChunkedEnd;
use super::forward::dial_failure;
use super::headers::{ConnectionTokens, HOP_BY_HOP_NAMES, content_length};
use super::pool::UpstreamIo;
use crate::http::error::{ErrorKind, HttpError};

/// A response head larger than this is refused (hyper's client limit).
const MAX_HEAD: usize = 64 * 1024;
/// Header slots for one response head.
const MAX_HEADERS: usize = 100;

/// The request to relay.
pub(crate) struct Outgoing<'a> {
    /// The serialised request: its head and, if it has one, its whole
    /// `Content-Length` body.
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
#[derive(Debug)]
struct Head {
    status: StatusCode,
    framing: Framing,
    /// The upstream keeps the connection open after this response.
    keep_alive: bool,
    /// A body delimited by the upstream's close goes to the client chunked,
    /// so the client's connection stays open (as nginx and hyper do).
    rechunk: bool,
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
            read_head(&mut io, rbuf, req.method, req.close, out).await
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
    let close = req.close || (head.framing == Framing::Close && !head.rechunk);

    // The body bytes that came with the head go out in the same write.
    let mut body = BodyState::new(head.framing);
    let cut = |bytes| RelayError::Cut {
        status: head.status,
        bytes,
    };
    let used = body.take(rbuf).map_err(|_| cut(0))?;
    let mut sent = push_body(out, &rbuf[..used], head.rechunk);
    rbuf.advance(used);
    client.write_all(out).await.map_err(|_| cut(0))?;
    while !body.done() {
        rbuf.clear();
        rbuf.reserve(16 * 1024);
        match io.read_buf(rbuf).await {
            Ok(0) if head.framing == Framing::Close => {
                if head.rechunk {
                    client
                        .write_all(b"0\r\n\r\n")
                        .await
                        .map_err(|_| cut(sent))?;
                    sent += 5;
                }
                break;
            }
            Ok(0) | Err(_) => {
                tracing::debug!(upstream = %url, "upstream connection ended mid-body");
                return Err(cut(sent));
            }
            Ok(_) => {}
        }
        let used = body.take(rbuf).map_err(|_| cut(sent))?;
        let n = if head.rechunk {
            out.clear();
            let n = push_body(out, &rbuf[..used], true);
            client.write_all(out).await.map_err(|_| cut(sent))?;
            n
        } else {
            client
                .write_all(&rbuf[..used])
                .await
                .map_err(|_| cut(sent))?;
            used as u64
        };
        rbuf.advance(used);
        sent += n;
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

/// Appends body bytes to `out`, as one chunk when `chunk` (nothing for no
/// bytes: an empty chunk would end the body); returns the bytes appended.
fn push_body(out: &mut Vec<u8>, data: &[u8], chunk: bool) -> u64 {
    let before = out.len();
    if chunk && !data.is_empty() {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{:x}\r\n", data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else if !chunk {
        out.extend_from_slice(data);
    }
    (out.len() - before) as u64
}

fn unsent(kind: ErrorKind, url: &Arc<str>) -> RelayError {
    RelayError::Unsent(HttpError::with_upstream(kind, url.clone()))
}

async fn send(io: &mut UpstreamIo, head: &[u8]) -> io::Result<()> {
    io.write_all(head).await?;
    io.flush().await
}

/// Reads until a final (non-1xx) response head is complete, and writes
/// the client's version of it into `out`.
async fn read_head(
    io: &mut UpstreamIo,
    rbuf: &mut BytesMut,
    method: &Method,
    close: bool,
    out: &mut Vec<u8>,
) -> Result<Head, HeadError> {
    let mut heard = false;
    loop {
        if !rbuf.is_empty() {
            match parse_head(rbuf, method, close, out)? {
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

/// Parses a response head at the start of `buf` (`None` until complete)
/// and, for a final response, writes the client-bound head into `out`:
/// the upstream's header lines as they came, minus hop-by-hop ones, with
/// the framing restated for this hop and `connection: close` when `close`
/// (or the body runs to the upstream's close).
fn parse_head(
    buf: &[u8],
    method: &Method,
    close: bool,
    out: &mut Vec<u8>,
) -> Result<Option<Head>, HeadError> {
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
    if status.is_informational() {
        return Ok(Some(Head {
            status,
            framing: Framing::Empty,
            keep_alive: true,
            rechunk: false,
            len,
        }));
    }
    let headers: &[httparse::Header<'_>] = resp.headers;
    if headers.iter().any(|h| !valid_value(h.value)) {
        return Err(HeadError::Malformed("it sent an invalid header value"));
    }
    let framing = framing(headers, status, method)?;
    // HTTP/1.0 upstreams are not reused: their keep-alive is opt-in and
    // rare enough not to bother.
    let listed = ConnectionTokens::gather(
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("connection"))
            .map(|h| h.value),
    );
    let keep_alive = resp.version == Some(1)
        && !listed
            .lists(b"close")
            .unwrap_or_else(|| has_token(headers, "connection", "close"));
    // Unless a transfer coding other than chunked is in play, which would
    // have to reach the client as it is.
    let rechunk = framing == Framing::Close
        && !headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    let close = close || (framing == Framing::Close && !rechunk);

    out.clear();
    push_status_line(out, status);
    let mut has_date = false;
    for h in headers {
        let name = h.name;
        if HOP_BY_HOP_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
            || listed
                .lists(name.as_bytes())
                .unwrap_or_else(|| has_token(headers, "connection", name))
            // A length next to chunked is void (RFC 9112 §6.3).
            || (framing == Framing::Chunked && name.eq_ignore_ascii_case("content-length"))
        {
            continue;
        }
        has_date |= name.eq_ignore_ascii_case("date");
        push_line(out, name.as_bytes(), h.value);
    }
    if framing == Framing::Chunked || rechunk {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !has_date {
        push_date(out);
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(Head {
        status,
        framing,
        keep_alive,
        rechunk,
        len,
    }))
}

/// Whether a header value may be relayed: no control characters but tab
/// (what `http::HeaderValue` accepts).
pub(crate) fn valid_value(v: &[u8]) -> bool {
    v.iter().all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

/// The body length rules of RFC 9112 §6.3.
fn framing(
    headers: &[httparse::Header<'_>],
    status: StatusCode,
    method: &Method,
) -> Result<Framing, HeadError> {
    if method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    let mut te = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .peekable();
    if te.peek().is_some() {
        // Chunked only when it is the final coding; otherwise the body
        // runs until the connection closes.
        let last = te
            .flat_map(|h| h.value.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .rfind(|t| !t.is_empty());
        return Ok(match last {
            Some(t) if t.eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
            _ => Framing::Close,
        });
    }
    let mut length = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        let n = content_length(h.value)
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

/// Whether a `name` header lists `token` (comma-separated, any case).
fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Appends `HTTP/1.1 <code> <reason>` and its line end.
pub(crate) fn push_status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a `date` line for now (hyper's server adds one to every
/// response that has none).
pub(crate) fn push_date(out: &mut Vec<u8>) {
    push_line(
        out,
        b"date",
        httpdate::fmt_http_date(SystemTime::now()).as_bytes(),
    );
}

/// Appends one `name: value` line.
pub(crate) fn push_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: value` lines.
pub(crate) fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        push_line(out, name.as_str().as_bytes(), value.as_bytes());
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

    /// Parses `raw` as a complete head; returns it and the client's head.
    fn head(raw: &str, method: Method, close: bool) -> (Head, String) {
        let mut out = Vec::new();
        let h = parse_head(raw.as_bytes(), &method, close, &mut out)
            .unwrap()
            .unwrap();
        (h, String::from_utf8(out).unwrap())
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let cases = [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                Method::GET,
                Framing::Length(5),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                Method::HEAD,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                Method::GET,
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
                Method::GET,
                Framing::Close,
                true,
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                Method::GET,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n",
                Method::GET,
                Framing::Close,
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
                Method::GET,
                Framing::Length(1),
                false,
            ),
        ];
        for (raw, method, framing, keep_alive) in cases {
            let (h, _) = head(raw, method, false);
            assert_eq!((h.framing, h.keep_alive), (framing, keep_alive), "{raw}");
        }
    }

    #[test]
    fn bad_lengths_values_and_switches_are_refused() {
        for raw in [
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 200 OK\r\nx-bad: a\x01b\r\n\r\n",
        ] {
            assert!(
                parse_head(raw.as_bytes(), &Method::GET, false, &mut Vec::new()).is_err(),
                "{raw}"
            );
        }
        let partial = parse_head(
            b"HTTP/1.1 200 OK\r\ncontent-le",
            &Method::GET,
            false,
            &mut Vec::new(),
        );
        assert!(partial.unwrap().is_none());
    }

    #[test]
    fn the_client_head_drops_hop_by_hop_and_restates_framing() {
        let (_, text) = head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
             Transfer-Encoding: chunked\r\nContent-Length: 3\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT\r\nX-App: yes\r\n\r\n",
            Method::GET,
            false,
        );
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT\r\nX-App: yes\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
        let (_, text) = head(
            "HTTP/1.1 404 Nope\r\ncontent-length: 0\r\n\r\n",
            Method::GET,
            true,
        );
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: "));
        assert!(text.ends_with("connection: close\r\n\r\n"));
    }

    #[test]
    fn a_close_delimited_body_is_rechunked_unless_another_coding_is_in_play() {
        let (h, text) = head(
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
            Method::GET,
            false,
        );
        assert!(h.rechunk);
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
        assert!(!text.contains("connection: close"), "{text}");
        let (h, text) = head(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            Method::GET,
            false,
        );
        assert!(!h.rechunk);
        assert!(text.ends_with("connection: close\r\n\r\n"), "{text}");
        let mut out = b"head".to_vec();
        assert_eq!(push_body(&mut out, b"0123456789abcdefg", true), 23);
        assert_eq!(out, b"head11\r\n0123456789abcdefg\r\n");
        assert_eq!(push_body(&mut out, b"", true), 0, "no empty chunk mid-body");
        assert_eq!(push_body(&mut out, b"xy", false), 2);
    }
}
