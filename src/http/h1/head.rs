//! Reads a request head and decides whether the hand-written path can
//! serve it: HTTP/1.1, origin-form target, no body, no upgrade, no
//! `Expect`. Anything else is left to hyper.

use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;

/// Header slots for one request head (hyper's own limit is 100).
const MAX_HEADERS: usize = 100;

/// A request head the hand-written path serves.
#[derive(Debug)]
pub(super) struct RequestHead {
    pub method: Method,
    pub target: PathAndQuery,
    pub headers: HeaderMap,
    /// The client asked to close the connection after this response.
    pub close: bool,
    /// Bytes of the head at the start of the buffer.
    pub len: usize,
}

/// What the start of the read buffer holds.
#[derive(Debug)]
pub(super) enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A head this path serves.
    Served(RequestHead),
    /// Something for hyper: another protocol version, a body, an upgrade,
    /// or a head hyper must refuse with its own error.
    Other,
}

/// Parses the head at the start of `buf`.
pub(super) fn parse(buf: &[u8]) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    if req.version != Some(1) {
        return Parsed::Other;
    }
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Parsed::Other;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::Other;
    };
    if method == Method::CONNECT || !path.starts_with('/') {
        return Parsed::Other;
    }
    let Ok(target) = PathAndQuery::try_from(path) else {
        return Parsed::Other;
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    let mut close = false;
    for h in req.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
            return Parsed::Other;
        };
        if name == header::TRANSFER_ENCODING
            || name == header::EXPECT
            || name == header::UPGRADE
            || (name == header::CONTENT_LENGTH && h.value != b"0")
        {
            return Parsed::Other;
        }
        let Ok(value) = HeaderValue::from_bytes(h.value) else {
            return Parsed::Other;
        };
        if name == header::CONNECTION {
            for token in value.to_str().unwrap_or("").split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("upgrade") {
                    return Parsed::Other;
                }
            }
        }
        headers.append(name, value);
    }
    Parsed::Served(RequestHead {
        method,
        target,
        headers,
        close,
        len,
    })
}

/// Serialises the request head the upstream gets: `path` and `query` (the
/// route's rewrite applied), HTTP/1.1, `headers` as given.
pub(super) fn write_request(
    out: &mut Vec<u8>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    if let Some(q) = query {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    crate::proxy::relay::write_headers(out, headers);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(raw: &str) -> RequestHead {
        match parse(raw.as_bytes()) {
            Parsed::Served(h) => h,
            other => panic!("{raw:?} → {other:?}"),
        }
    }

    #[test]
    fn a_plain_get_is_served() {
        let raw = "GET /a/b?x=1 HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\nGET /next";
        let h = served(raw);
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.target.path(), "/a/b");
        assert_eq!(h.target.query(), Some("x=1"));
        assert_eq!(h.headers["host"], "example.test");
        assert!(!h.close);
        assert_eq!(&raw[h.len..], "GET /next");
    }

    #[test]
    fn connection_close_is_noted() {
        let h = served("HEAD / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n");
        assert!(h.close);
        let h = served("DELETE /x HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(h.method, Method::DELETE);
    }

    #[test]
    fn others_go_to_hyper() {
        for raw in [
            "GET / HTTP/1.0\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
            "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET /ws HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            "CONNECT example.test:443 HTTP/1.1\r\n\r\n",
            "GET http://example.test/ HTTP/1.1\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "BR@KEN\r\n\r\n",
        ] {
            assert!(matches!(parse(raw.as_bytes()), Parsed::Other), "{raw:?}");
        }
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: a"),
            Parsed::Partial
        ));
    }

    #[test]
    fn the_upstream_head_is_origin_form_http11() {
        let h = served("GET /old/x?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let mut out = Vec::new();
        write_request(&mut out, &h.method, "/new/x", h.target.query(), &h.headers);
        assert_eq!(out, b"GET /new/x?q=1 HTTP/1.1\r\nhost: a.test\r\n\r\n");
    }
}
