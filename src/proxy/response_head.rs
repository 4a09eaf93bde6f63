//! The upstream's response head on the hand-written path: parsed in place
//! (httparse), its body framing decided by RFC 9112 §6.3, and the
//! client-bound head written from the upstream's own header lines minus
//! the hop-by-hop ones.

use std::io;

use http::{Method, StatusCode};

use super::headers::{ConnectionTokens, HOP_BY_HOP_NAMES, content_length};
use super::wire::{push_date, push_line, push_status_line, valid_value};

/// Header slots for one response head.
const MAX_HEADERS: usize = 100;

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes (no length and not chunked).
    Close,
}

/// What the response head says.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) status: StatusCode,
    pub(super) framing: Framing,
    /// The upstream keeps the connection open after this response.
    pub(super) keep_alive: bool,
    /// A body delimited by the upstream's close goes to the client chunked,
    /// so the client's connection stays open (as nginx and hyper do).
    pub(super) rechunk: bool,
    /// Bytes of the head in the read buffer.
    pub(super) len: usize,
}

/// Why no response head was read.
#[derive(Debug)]
pub(super) enum HeadError {
    /// The connection ended or failed; `heard` is whether any byte of a
    /// response arrived first.
    Lost {
        heard: bool,
        error: Option<io::Error>,
    },
    Malformed(&'static str),
}

/// Parses a response head at the start of `buf` (`None` until complete)
/// and, for a final response, writes the client-bound head into `out`:
/// the upstream's header lines as they came, minus hop-by-hop ones, with
/// the framing restated for this hop and `connection: close` when `close`
/// (or the body runs to the upstream's close).
pub(super) fn parse_head(
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
    }
}
