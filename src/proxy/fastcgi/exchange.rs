//! One request over one FastCGI connection: BEGIN_REQUEST and PARAMS out,
//! the request body streamed out as STDIN while STDOUT/STDERR come back,
//! the CGI response head parsed, the rest streamed to the client.
//!
//! Runs as its own task (on the shutdown tracker) so a streaming response
//! outlives the handler; the handler waits only for the head
//! ([`Head`] through a oneshot) under the route's `response_timeout`.
//!
//! Owns: the record loop, the CGI head (`Status:`, several `Set-Cookie`),
//! stderr logging, and whether the connection goes back to the pool.
//! Receives: a [`Conn`], the encoded params, the client body. Hands on: the
//! head and a body channel.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::pool::{Conn, Pool, Stream};
use super::records::{self, CodecError, Record};
pub(crate) use super::spool::BodyError;
use super::spool::{self, Spooled};
use crate::http::body::BoxError;

/// The request id used on every connection (one request at a time).
const ID: u16 = 1;
/// The longest CGI response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Body chunks buffered between php-fpm and a slow client.
const BODY_QUEUE: usize = 8;

/// Why an exchange failed before a response head.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// A reused connection was found closed before anything came back;
    /// the request had no body, so it may be repeated on a fresh one.
    #[error("the kept-alive connection was closed by php-fpm")]
    Stale,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("invalid FastCGI record: {0}")]
    Codec(#[from] CodecError),
    #[error("php-fpm closed the connection before a response head")]
    Closed,
    #[error("the response head is over {MAX_HEAD} bytes or malformed")]
    BadHead,
    #[error("php-fpm refused the request (protocol status {0})")]
    Refused(u8),
    /// The client's body broke or went over the limit.
    #[error("request body: {0}")]
    Body(BodyError),
}

/// The response head and the channel its body arrives on.
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: ChannelBody,
}

/// A response body fed by the exchange task.
pub(crate) struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, BoxError>>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// Where stderr lines are attributed.
#[derive(Clone)]
pub(crate) struct LogCtx {
    pub(crate) route: Arc<str>,
    pub(crate) script: String,
    pub(crate) uri: String,
    pub(crate) peer: std::net::IpAddr,
}

/// The client's body.
pub(crate) enum Upload {
    /// Streamed as it arrives, refused past `limit` bytes.
    Stream { body: Incoming, limit: u64 },
    /// Read to its end first (a body without a declared length).
    Spooled(Spooled),
}

/// Runs one request. `head_tx` gets the head or the failure; the task
/// then streams the body and, after a clean END_REQUEST with the request
/// body fully sent, returns the connection to `pool`.
pub(crate) async fn run(
    pool: Pool,
    mut conn: Conn,
    params: Vec<u8>,
    upload: Option<Upload>,
    log: LogCtx,
    head_tx: oneshot::Sender<Result<Head, ExchangeError>>,
) {
    let reused = conn.reused;
    let has_body = upload.is_some();
    let mut out = BytesMut::with_capacity(params.len() + 64);
    records::begin_request(&mut out, ID, true);
    records::put_stream(&mut out, records::PARAMS, ID, &params);
    records::end_stream(&mut out, records::PARAMS, ID);
    if !has_body {
        records::end_stream(&mut out, records::STDIN, ID);
    }
    if let Err(e) = conn.io.write_all(&out).await {
        let e = if reused && !has_body {
            ExchangeError::Stale
        } else {
            ExchangeError::Io(e)
        };
        let _ = head_tx.send(Err(e));
        return;
    }
    let Conn { io, reused, slot } = conn;
    let (mut rd, wr) = tokio::io::split(io);
    let writer = write_body(wr, upload);
    tokio::pin!(writer);
    let mut written: Option<WriteHalf<Stream>> = None;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut stdout = BytesMut::new();

    // Phase 1: the head, while the body goes out.
    let head = {
        let read = read_head(&mut rd, &mut buf, &mut stdout, &log);
        tokio::pin!(read);
        loop {
            tokio::select! {
                w = &mut writer, if written.is_none() => match w {
                    Ok(wr) => written = Some(wr),
                    Err(e) => {
                        let _ = head_tx.send(Err(e));
                        return;
                    }
                },
                h = &mut read => break h,
            }
        }
    };
    let (status, headers, ended) = match head {
        Ok(h) => h,
        Err(ExchangeError::Closed) if reused && !has_body && buf.is_empty() => {
            let _ = head_tx.send(Err(ExchangeError::Stale));
            return;
        }
        Err(e) => {
            let _ = head_tx.send(Err(e));
            return;
        }
    };
    let (tx, rx) = mpsc::channel(BODY_QUEUE);
    let head = Head {
        status,
        headers,
        body: ChannelBody { rx },
    };
    if head_tx.send(Ok(head)).is_err() {
        return; // the client is gone
    }
    // Phase 2: the rest of STDOUT, as php flushes it.
    let end = match ended {
        Some(end) => {
            if !stdout.is_empty() {
                let _ = tx.send(Ok(stdout.split().freeze())).await;
            }
            Ok(end)
        }
        None => {
            let rest = stream_body(&mut rd, &mut buf, stdout, &tx, &log);
            tokio::pin!(rest);
            loop {
                tokio::select! {
                    w = &mut writer, if written.is_none() => match w {
                        Ok(wr) => written = Some(wr),
                        Err(e) => {
                            // The body is cut; so is the connection.
                            let _ = tx.send(Err(Box::new(e))).await;
                            return;
                        }
                    },
                    r = &mut rest => break r,
                }
            }
        }
    };
    match end {
        Ok(end) if end.protocol_status == records::REQUEST_COMPLETE && buf.is_empty() => {
            if let Some(wr) = written {
                let io = rd.unsplit(wr);
                pool.put(Conn { io, reused, slot });
            }
        }
        Ok(_) => {}
        Err(e) => {
            let _ = tx.send(Err(Box::new(e))).await;
        }
    }
}

/// Streams the client's body as STDIN records, then the empty one.
async fn write_body(
    mut wr: WriteHalf<Stream>,
    upload: Option<Upload>,
) -> Result<WriteHalf<Stream>, ExchangeError> {
    let mut out = BytesMut::with_capacity(records::MAX_CONTENT + 16);
    let (mut body, limit) = match upload {
        None => return Ok(wr),
        Some(Upload::Spooled(Spooled::Memory(data))) => {
            records::put_stream(&mut out, records::STDIN, ID, &data);
            records::end_stream(&mut out, records::STDIN, ID);
            wr.write_all(&out).await?;
            return Ok(wr);
        }
        Some(Upload::Spooled(Spooled::File { mut file, .. })) => {
            let mut chunk = BytesMut::with_capacity(records::MAX_CONTENT);
            while spool::read_chunk(&mut file, &mut chunk, records::MAX_CONTENT).await? > 0 {
                out.clear();
                records::put_stream(&mut out, records::STDIN, ID, &chunk);
                wr.write_all(&out).await?;
            }
            out.clear();
            records::end_stream(&mut out, records::STDIN, ID);
            wr.write_all(&out).await?;
            return Ok(wr);
        }
        Some(Upload::Stream { body, limit }) => (body, limit),
    };
    let mut sent: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ExchangeError::Body(BodyError::Broken))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: FastCGI has no place for them
        };
        sent += data.len() as u64;
        if sent > limit {
            return Err(ExchangeError::Body(BodyError::TooLarge(limit)));
        }
        out.clear();
        records::put_stream(&mut out, records::STDIN, ID, &data);
        wr.write_all(&out).await?;
    }
    out.clear();
    records::end_stream(&mut out, records::STDIN, ID);
    wr.write_all(&out).await?;
    Ok(wr)
}

/// Reads the next record, or `None` at EOF.
async fn next_record(
    rd: &mut ReadHalf<Stream>,
    buf: &mut BytesMut,
) -> Result<Option<Record>, ExchangeError> {
    loop {
        if let Some(r) = records::decode(buf)? {
            return Ok(Some(r));
        }
        if rd.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

fn log_stderr(log: &LogCtx, content: &[u8]) {
    let text = String::from_utf8_lossy(content);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        tracing::warn!(
            target: "portico::fastcgi::stderr",
            route = %log.route,
            script = %log.script,
            uri = %log.uri,
            peer = %log.peer,
            "php: {line}"
        );
    }
}

type Parsed = (StatusCode, HeaderMap, Option<records::EndRequest>);

/// Reads records until the CGI head is complete; what STDOUT bytes follow
/// it stay in `stdout`. An END_REQUEST before the head ends is returned
/// with it.
async fn read_head(
    rd: &mut ReadHalf<Stream>,
    buf: &mut BytesMut,
    stdout: &mut BytesMut,
    log: &LogCtx,
) -> Result<Parsed, ExchangeError> {
    loop {
        let Some(r) = next_record(rd, buf).await? else {
            return Err(ExchangeError::Closed);
        };
        if r.request_id != ID {
            continue;
        }
        match r.kind {
            records::STDOUT => {
                stdout.extend_from_slice(&r.content);
                if let Some((len, status, headers)) = parse_head(stdout)? {
                    let _ = stdout.split_to(len);
                    return Ok((status, headers, None));
                }
                if stdout.len() > MAX_HEAD {
                    return Err(ExchangeError::BadHead);
                }
            }
            records::STDERR => log_stderr(log, &r.content),
            records::END_REQUEST => {
                let end = records::end_request(&r.content)?;
                if end.protocol_status != records::REQUEST_COMPLETE {
                    return Err(ExchangeError::Refused(end.protocol_status));
                }
                // A script that printed nothing at all: an empty 200, as
                // nginx answers; one that printed only header lines: those.
                if stdout.is_empty() {
                    return Ok((StatusCode::OK, HeaderMap::new(), Some(end)));
                }
                return match parse_head_at_eof(stdout) {
                    Some((s, h)) => Ok((s, h, Some(end))),
                    None => Err(ExchangeError::BadHead),
                };
            }
            _ => {}
        }
    }
}

/// Streams STDOUT to the client until END_REQUEST.
async fn stream_body(
    rd: &mut ReadHalf<Stream>,
    buf: &mut BytesMut,
    first: BytesMut,
    tx: &mpsc::Sender<Result<Bytes, BoxError>>,
    log: &LogCtx,
) -> Result<records::EndRequest, ExchangeError> {
    let mut client_gone = false;
    if !first.is_empty() {
        client_gone = tx.send(Ok(first.freeze())).await.is_err();
    }
    loop {
        if client_gone {
            return Err(ExchangeError::Closed);
        }
        let Some(r) = next_record(rd, buf).await? else {
            return Err(ExchangeError::Closed);
        };
        if r.request_id != ID {
            continue;
        }
        match r.kind {
            records::STDOUT if !r.content.is_empty() => {
                client_gone = tx.send(Ok(r.content)).await.is_err();
            }
            records::STDERR => log_stderr(log, &r.content),
            records::END_REQUEST => return Ok(records::end_request(&r.content)?),
            _ => {}
        }
    }
}

/// The head of a response that ended without the blank line: all of it is
/// header lines (a script that only sent headers).
fn parse_head_at_eof(stdout: &mut BytesMut) -> Option<(StatusCode, HeaderMap)> {
    let mut owned = stdout.to_vec();
    owned.extend_from_slice(b"\r\n");
    let b = BytesMut::from(&owned[..]);
    let (_, s, h) = parse_head(&b).ok()??;
    stdout.clear();
    Some((s, h))
}

/// Parses a CGI response head: `Status:` sets the code (else 302 with a
/// `Location`, else 200); other lines are response headers, repeated ones
/// (`Set-Cookie`) kept. Hop-by-hop headers and `X-Powered-By` are dropped.
pub(crate) fn parse_head(
    stdout: &BytesMut,
) -> Result<Option<(usize, StatusCode, HeaderMap)>, ExchangeError> {
    let mut raw = [httparse::EMPTY_HEADER; 128];
    let (len, lines) = match httparse::parse_headers(stdout, &mut raw) {
        Ok(httparse::Status::Complete((len, lines))) => (len, lines),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ExchangeError::BadHead),
    };
    let mut status = None;
    let mut headers = HeaderMap::with_capacity(lines.len());
    for l in lines.iter() {
        if l.name.eq_ignore_ascii_case("status") {
            let code = l.value.get(..3).ok_or(ExchangeError::BadHead)?;
            status = Some(StatusCode::from_bytes(code).map_err(|_| ExchangeError::BadHead)?);
            continue;
        }
        let name = HeaderName::from_bytes(l.name.as_bytes()).map_err(|_| ExchangeError::BadHead)?;
        let value = HeaderValue::from_bytes(l.value).map_err(|_| ExchangeError::BadHead)?;
        headers.append(name, value);
    }
    crate::proxy::headers::strip_hop_by_hop(&mut headers);
    headers.remove("x-powered-by");
    let status = status.unwrap_or(if headers.contains_key(header::LOCATION) {
        StatusCode::FOUND
    } else {
        StatusCode::OK
    });
    Ok(Some((len, status, headers)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_heads() {
        let b = BytesMut::from(
            &b"Status: 404 Not Found\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Powered-By: PHP\r\nContent-type: text/html\r\n\r\nbody"[..],
        );
        let (len, s, h) = parse_head(&b).unwrap().unwrap();
        assert_eq!(&b[len..], b"body");
        assert_eq!(s, 404);
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);
        assert!(h.get("x-powered-by").is_none());
        let b = BytesMut::from(&b"Location: /x\r\n\r\n"[..]);
        assert_eq!(parse_head(&b).unwrap().unwrap().1, 302);
        let b = BytesMut::from(&b"Content-type: text/html\r\n"[..]);
        assert!(parse_head(&b).unwrap().is_none());
        let b = BytesMut::from(&b"Status: abc\r\n\r\n"[..]);
        assert!(parse_head(&b).is_err());
    }
}
