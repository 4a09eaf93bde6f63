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

use bytes::{Buf, BytesMut};
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Upstream;
use super::chunked::ChunkedEnd;
use super::forward::dial_failure;
use super::pool::UpstreamIo;
use super::response_head::{Framing, Head, HeadError, parse_head};
use crate::http::error::{ErrorKind, HttpError};

/// A response head larger than this is refused (hyper's client limit).
const MAX_HEAD: usize = 64 * 1024;

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

    #[test]
    fn a_rechunked_body_goes_out_in_chunks() {
        let mut out = b"head".to_vec();
        assert_eq!(push_body(&mut out, b"0123456789abcdefg", true), 23);
        assert_eq!(out, b"head11\r\n0123456789abcdefg\r\n");
        assert_eq!(push_body(&mut out, b"", true), 0, "no empty chunk mid-body");
        assert_eq!(push_body(&mut out, b"xy", false), 2);
    }
}
