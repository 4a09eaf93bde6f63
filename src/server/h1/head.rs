//! Reads a request head and decides whether the hand-written path can
//! serve it: HTTP/1.1, origin-form target, no body or a `Content-Length`
//! one of at most [`MAX_BODY`] bytes, no upgrade, no `Expect`. Anything
//! else is left to hyper. Header lines stay in the read
//! buffer (as [`Field`] offsets) and are copied to the upstream request
//! without being parsed into a map.

use std::ops::Range;

use http::Method;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;

use crate::config::{HostHeader, ProxyTarget};
use crate::proxy::headers::{
    ClientSide, ConnectionTokens, FORWARDING_NAMES, HOP_BY_HOP_NAMES, content_length, push_decimal,
    push_ip,
};
use crate::proxy::wire::{push_line, valid_value, write_headers};

/// The largest `Content-Length` body this path takes; it is read whole
/// before the request goes upstream, so a retry can repeat it. Larger
/// bodies, and chunked ones, are streamed by hyper.
pub(super) const MAX_BODY: usize = 64 * 1024;

/// Header slots for one request head (hyper's own limit is 100).
const MAX_HEADERS: usize = 100;

/// One header line of the head, as offsets into the read buffer.
#[derive(Debug, Clone)]
pub(super) struct Field {
    name: Range<usize>,
    value: Range<usize>,
}

impl Field {
    fn name<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.name.clone()]
    }
    fn value<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.value.clone()]
    }
}

/// A request head the hand-written path serves; its header lines are in
/// the `fields` given to [`parse`].
#[derive(Debug)]
pub(super) struct RequestHead {
    pub method: Method,
    pub target: PathAndQuery,
    /// The client asked to close the connection after this response.
    pub close: bool,
    /// Bytes of the head at the start of the buffer.
    pub len: usize,
    /// Bytes of body after the head (`Content-Length`, at most [`MAX_BODY`]).
    pub body: usize,
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

/// Parses the head at the start of `buf`, filling `fields` with its
/// header lines; a target longer than `max_target` is left to hyper.
pub(super) fn parse(buf: &[u8], fields: &mut Vec<Field>, max_target: usize) -> Parsed {
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
    // Over the target limit: hyper's path answers 414 ([`crate::server::strict`]).
    if path.len() > max_target {
        return Parsed::Other;
    }
    let Ok(target) = PathAndQuery::try_from(path) else {
        return Parsed::Other;
    };
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    fields.clear();
    let mut close = false;
    let mut body = None;
    let mut hosts = 0;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
            || !valid_value(h.value)
        {
            return Parsed::Other;
        }
        if name.eq_ignore_ascii_case("content-length") {
            // One plain decimal value: repeats, lists and signs are hyper's
            // to refuse.
            match (body, content_length(h.value)) {
                (None, Some(n)) if n <= MAX_BODY as u64 => body = Some(n as usize),
                _ => return Parsed::Other,
            }
        }
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        }
        if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"upgrade")
                    || token.eq_ignore_ascii_case(b"content-length")
                {
                    // The body's length must reach the upstream.
                    return Parsed::Other;
                }
            }
        }
        fields.push(Field {
            name: at(name.as_bytes()),
            value: at(h.value),
        });
    }
    // Exactly one Host (RFC 9112 §3.2); anything else is refused by
    // hyper's path.
    if hosts != 1 {
        return Parsed::Other;
    }
    Parsed::Served(RequestHead {
        method,
        target,
        close,
        len,
        body: body.unwrap_or(0),
    })
}

/// The path and `Host` value of a whole head at the start of `buf`, for a
/// head [`parse`] left to hyper: enough to route it.
pub(super) fn path_and_host(buf: &[u8]) -> Option<(&str, Option<&str>)> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    if !matches!(req.parse(buf), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let path = req.path?.split('?').next()?;
    if !path.starts_with('/') {
        return None;
    }
    let host = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| std::str::from_utf8(h.value).ok());
    Some((path, host))
}

/// The first value of header `name` (lower-case), if any.
pub(super) fn value<'a>(buf: &'a [u8], fields: &[Field], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|f| f.name(buf).eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| f.value(buf))
}

/// The header lines as a map, for the rules that need one.
pub(super) fn header_map(buf: &[u8], fields: &[Field]) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(fields.len());
    for f in fields {
        // Both were checked by `parse` (httparse's token rules and
        // `valid_value`), so neither conversion fails.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(f.name(buf)),
            HeaderValue::from_bytes(f.value(buf)),
        ) {
            map.append(n, v);
        }
    }
    map
}

/// The header lines named in `names` (lower-case) as a map: what a rule
/// reads, without building the whole map.
pub(super) fn header_map_of(buf: &[u8], fields: &[Field], names: &[&str]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for f in fields {
        let name = f.name(buf);
        if !names
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_bytes(f.value(buf)),
        ) {
            map.append(n, v);
        }
    }
    map
}

/// Writes the request line the upstream gets: `path` and `query` (the
/// route's rewrite applied), HTTP/1.1.
fn write_request_line(out: &mut Vec<u8>, method: &Method, path: &str, query: Option<&str>) {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    if let Some(q) = query {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
}

/// Serialises the upstream request from headers already rewritten by
/// [`crate::proxy::rewrite_request_headers`].
pub(super) fn write_request(
    out: &mut Vec<u8>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) {
    write_request_line(out, method, path, query);
    write_headers(out, headers);
    out.extend_from_slice(b"\r\n");
}

/// Serialises the upstream request straight from the client's header
/// lines, for a peer that is not a trusted proxy: the same result as
/// [`crate::proxy::rewrite_request_headers`] (whose tests pin the rules)
/// without building a map. Hop-by-hop headers, everything a `Connection`
/// header lists, the client's forwarding headers, `Proxy` and `Host` are
/// dropped; `Host`, `X-Forwarded-*` and `X-Real-IP` are written anew, and
/// `TE: trailers` is kept. `original_host` is the client's first `Host`
/// value, already looked up for routing.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_request_untrusted(
    out: &mut Vec<u8>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    buf: &[u8],
    fields: &[Field],
    original_host: Option<&[u8]>,
    client: ClientSide<'_>,
    t: &ProxyTarget,
) {
    write_request_line(out, method, path, query);
    let connection = || {
        fields
            .iter()
            .filter(|f| f.name(buf).eq_ignore_ascii_case(b"connection"))
            .map(|f| f.value(buf))
    };
    let tokens = ConnectionTokens::gather(connection());
    let listed = |name: &[u8]| {
        tokens.lists(name).unwrap_or_else(|| {
            connection()
                .flat_map(|v| v.split(|&b| b == b','))
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(name))
        })
    };
    let mut te_trailers = false;
    for f in fields {
        let name = f.name(buf);
        if name.eq_ignore_ascii_case(b"te") {
            te_trailers |= f
                .value(buf)
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"));
            continue;
        }
        if HOP_BY_HOP_NAMES
            .iter()
            .chain(FORWARDING_NAMES.iter())
            .chain(["proxy", "host"].iter())
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            || listed(name)
        {
            continue;
        }
        push_line(out, name, f.value(buf));
    }
    let host = match &t.host_header {
        HostHeader::PassThrough => original_host,
        HostHeader::Upstream => None,
        HostHeader::Fixed(v) => Some(v.as_bytes()),
    };
    // HTTP/1.1 requires a Host: the upstream's authority when there is no
    // other.
    push_line(
        out,
        b"host",
        host.unwrap_or(t.authority.as_str().as_bytes()),
    );
    for name in ["x-forwarded-for: ", "x-real-ip: "] {
        out.extend_from_slice(name.as_bytes());
        push_ip(out, client.peer);
        out.extend_from_slice(b"\r\n");
    }
    let proto: &[u8] = if client.tls { b"https" } else { b"http" };
    push_line(out, b"x-forwarded-proto", proto);
    if let Some(h) = original_host {
        push_line(out, b"x-forwarded-host", h);
    }
    out.extend_from_slice(b"x-forwarded-port: ");
    push_decimal(out, u64::from(client.local_port));
    out.extend_from_slice(b"\r\n");
    if te_trailers {
        out.extend_from_slice(b"te: trailers\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The target limit of [`check_parse`]'s main pass (the default).
const CHECK_MAX_TARGET: usize = 8 * 1024;

/// The properties the `h1_head` fuzz target checks, on any bytes (kept
/// here so `tests/fuzz_corpus.rs` replays the corpus through the same
/// code). [`parse`] never panics, and a head it serves:
/// - has an origin-form target that [`PathAndQuery`] takes back as is,
///   within the target limit, a method other than `CONNECT`, a body of at
///   most [`MAX_BODY`], and a length within the buffer;
/// - parses the same from its own bytes alone, and is left to hyper under
///   a target limit one byte shorter than its target;
/// - has header lines that all make it into [`header_map`], one `Host`,
///   and the same path and host for [`path_and_host`];
/// - passes [`crate::server::strict::check`] (both paths answer alike),
///   and the raw-head watch sees it whole, with one framing.
pub(crate) fn check_parse(buf: &[u8]) {
    let mut fields = Vec::new();
    let h = match parse(buf, &mut fields, CHECK_MAX_TARGET) {
        Parsed::Served(h) => h,
        Parsed::Partial => {
            assert!(path_and_host(buf).is_none(), "a partial head routes");
            return;
        }
        Parsed::Other => {
            let _ = path_and_host(buf);
            return;
        }
    };
    let target = h.target.as_str();
    assert!(h.len <= buf.len() && h.body <= MAX_BODY, "{h:?}");
    assert!(target.starts_with('/') && target.len() <= CHECK_MAX_TARGET);
    assert_ne!(h.method, Method::CONNECT);
    assert_eq!(
        PathAndQuery::try_from(target).ok().as_ref(),
        Some(&h.target)
    );

    let mut again = Vec::new();
    match parse(&buf[..h.len], &mut again, CHECK_MAX_TARGET) {
        Parsed::Served(h2) => assert_eq!(
            (&h2.method, &h2.target, h2.close, h2.len, h2.body),
            (&h.method, &h.target, h.close, h.len, h.body)
        ),
        other => panic!("the head alone parses as {other:?}"),
    }
    assert_eq!(again.len(), fields.len());
    let path_len = httparse_path_len(buf);
    assert!(matches!(
        parse(buf, &mut again, path_len - 1),
        Parsed::Other
    ));

    let map = header_map(buf, &fields);
    assert_eq!(map.len(), fields.len(), "a header line was lost");
    assert_eq!(map.get_all(http::header::HOST).iter().count(), 1);
    let (path, host) = path_and_host(buf).expect("a served head routes");
    assert!(path.starts_with(h.target.path()), "{path:?} vs {target:?}");
    let want_host = value(buf, &fields, "host").and_then(|v| std::str::from_utf8(v).ok());
    assert_eq!(host, want_host);

    let mut req = http::Request::new(());
    *req.method_mut() = h.method.clone();
    *req.uri_mut() = http::Uri::from(h.target.clone());
    *req.version_mut() = http::Version::HTTP_11;
    *req.headers_mut() = map;
    if let Err(e) = crate::server::strict::check(&req, CHECK_MAX_TARGET, false) {
        panic!("served here, refused by the strict rules: {e:?}");
    }
    let (notes, _) = crate::server::sniff::notes_of([&buf[..h.len]]);
    assert_eq!(notes, [false], "the watch sees the head otherwise");
}

/// The length of the request target of a whole head, as sent.
fn httparse_path_len(buf: &[u8]) -> usize {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let _ = req.parse(buf);
    req.path.map_or(0, str::len)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::proxy::rewrite_request_headers;

    fn served(raw: &str) -> (RequestHead, Vec<Field>) {
        let mut fields = Vec::new();
        match parse(raw.as_bytes(), &mut fields, 8192) {
            Parsed::Served(h) => (h, fields),
            other => panic!("{raw:?} → {other:?}"),
        }
    }

    #[test]
    fn a_plain_get_is_served() {
        let raw = "GET /a/b?x=1 HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\nGET /next";
        let (h, fields) = served(raw);
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.target.path(), "/a/b");
        assert_eq!(h.target.query(), Some("x=1"));
        assert_eq!(
            value(raw.as_bytes(), &fields, "host"),
            Some(&b"example.test"[..])
        );
        assert!(!h.close);
        assert_eq!(&raw[h.len..], "GET /next");
        let map = header_map(raw.as_bytes(), &fields);
        assert_eq!((map.len(), map["accept"].as_bytes()), (2, &b"*/*"[..]));
    }

    #[test]
    fn connection_close_is_noted() {
        let (h, _) = served("HEAD / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n");
        assert!(h.close);
        let (h, _) = served("DELETE /x HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n");
        assert_eq!((h.method, h.body), (Method::DELETE, 0));
    }

    #[test]
    fn a_small_content_length_body_is_served() {
        let raw = "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel";
        let (h, _) = served(raw);
        assert_eq!((h.body, &raw[h.len..]), (5, "hel"), "counted, not yet read");
        let max = format!("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: {MAX_BODY}\r\n\r\n");
        assert_eq!(served(&max).0.body, MAX_BODY);
    }

    #[test]
    fn others_go_to_hyper() {
        for raw in [
            "GET / HTTP/1.0\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello",
            "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
            "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET /ws HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            "CONNECT example.test:443 HTTP/1.1\r\n\r\n",
            "GET http://example.test/ HTTP/1.1\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "GET / HTTP/1.1\r\nX-Bell: \x07\r\n\r\n",
            "BR@KEN\r\n\r\n",
            "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw.as_bytes(), &mut Vec::new(), 8192), Parsed::Other),
                "{raw:?}"
            );
        }
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(8192));
        assert!(matches!(
            parse(long.as_bytes(), &mut Vec::new(), 8192),
            Parsed::Other
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: a", &mut Vec::new(), 8192),
            Parsed::Partial
        ));
    }

    fn target(host_header: HostHeader) -> ProxyTarget {
        ProxyTarget {
            url: Arc::from("http://127.0.0.1:8000"),
            scheme: http::uri::Scheme::HTTP,
            authority: http::uri::Authority::from_static("127.0.0.1:8000"),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            websocket: true,
            websocket_idle_timeout: None,
            host_header,
            max_body: 1,
        }
    }

    /// The head as a sorted list of lower-cased `name: value` lines.
    fn lines(head: &[u8]) -> Vec<String> {
        let text = String::from_utf8(head.to_vec()).unwrap();
        let mut lines: Vec<String> = text
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                format!("{}: {v}", n.to_ascii_lowercase())
            })
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn the_raw_writer_matches_the_header_map_rules() {
        let heads = [
            // (A head without Host is never served here: hyper's path
            // refuses it.)
            "GET /x?q=1 HTTP/1.1\r\nHost: app.test\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: app.test:8443\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n\
             X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Port: 1\r\nForwarded: for=6.6.6.6\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n\
             Proxy: http://evil\r\nProxy-Authorization: x\r\nTE: trailers, deflate\r\nAccept: a\r\nAccept: b\r\n\r\n",
            "HEAD / HTTP/1.1\r\nHost: a\r\nTE: deflate\r\nTrailer: x\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
        ];
        let policies = [
            HostHeader::PassThrough,
            HostHeader::Upstream,
            HostHeader::Fixed(HeaderValue::from_static("tenant")),
        ];
        let peers: [IpAddr; 2] = [
            "203.0.113.9".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        ];
        for raw in heads {
            for policy in &policies {
                for (peer, tls) in [(peers[0], false), (peers[1], true)] {
                    let t = target(policy.clone());
                    let client = ClientSide {
                        peer,
                        tls,
                        local_port: 8443,
                        trusted_proxies: &[],
                    };
                    let (h, fields) = served(raw);
                    let buf = raw.as_bytes();
                    let mut direct = Vec::new();
                    write_request_untrusted(
                        &mut direct,
                        &h.method,
                        "/p",
                        None,
                        buf,
                        &fields,
                        value(buf, &fields, "host"),
                        client,
                        &t,
                    );
                    let mut map = header_map(buf, &fields);
                    let original = map.get(http::header::HOST).cloned();
                    rewrite_request_headers(&mut map, original, &t, client, false);
                    let mut via_map = Vec::new();
                    write_request(&mut via_map, &h.method, "/p", None, &map);
                    assert_eq!(lines(&direct), lines(&via_map), "{raw:?} {policy:?} {peer}");
                    assert!(direct.starts_with(format!("{} /p HTTP/1.1\r\n", h.method).as_bytes()));
                    assert!(direct.ends_with(b"\r\n\r\n"));
                }
            }
        }
    }
}
