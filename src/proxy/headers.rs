//! Header rules for proxying: hop-by-hop removal in both directions and the
//! `X-Forwarded-*` / `X-Real-IP` set the upstream sees.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1, plus the
/// non-standard ones every proxy strips).
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// [`HOP_BY_HOP`] and `TE` as text, for the hand-written HTTP/1.1 path,
/// which works on raw header lines (`TE: trailers` is restated there).
pub(crate) const HOP_BY_HOP_NAMES: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "te",
];

/// The headers [`set_forwarded`] replaces when the peer is not a trusted
/// proxy (`Forwarded` is dropped, not replaced).
pub(crate) const FORWARDING_NAMES: [&str; 6] = [
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "forwarded",
];

/// The names `Connection` header lines list, gathered once per message so
/// the hand-written path checks each header line against them without
/// rescanning the head. Holds up to 16; past that it cannot answer.
pub(crate) struct ConnectionTokens<'a> {
    tokens: [&'a [u8]; 16],
    len: usize,
    complete: bool,
}

impl<'a> ConnectionTokens<'a> {
    /// Gathers the tokens of these `Connection` values.
    pub(crate) fn gather(values: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut t = ConnectionTokens {
            tokens: [&[]; 16],
            len: 0,
            complete: true,
        };
        for token in values.flat_map(|v| v.split(|&b| b == b',')) {
            let token = token.trim_ascii();
            if token.is_empty() {
                continue;
            }
            if t.len == t.tokens.len() {
                t.complete = false;
                break;
            }
            t.tokens[t.len] = token;
            t.len += 1;
        }
        t
    }

    /// Whether `name` is listed; `None` when there were too many tokens
    /// to hold (the caller scans the head instead).
    pub(crate) fn lists(&self, name: &[u8]) -> Option<bool> {
        let found = self.tokens[..self.len]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name));
        (found || self.complete).then_some(found)
    }
}

/// Removes hop-by-hop headers, including every header named in `Connection`.
/// `TE: trailers` survives (gRPC needs it); other `TE` values do not.
///
/// One pass over the names finds what must go (enum compares for the
/// standard names, no allocation for `Connection` tokens); only those are
/// removed.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Looked up once; most messages have no `Connection` or only
    // `keep-alive`, which is hop-by-hop anyway.
    let connection = headers.get_all(header::CONNECTION);
    let has_connection = connection.iter().next().is_some();
    let listed = |name: &HeaderName| {
        has_connection
            && connection.iter().any(|v| {
                v.to_str().is_ok_and(|v| {
                    v.split(',')
                        .any(|t| t.trim().eq_ignore_ascii_case(name.as_str()))
                })
            })
    };
    let mut doomed: Vec<HeaderName> = Vec::new();
    let mut te_trailers = false;
    for name in headers.keys() {
        if name == header::TE {
            te_trailers = headers.get_all(header::TE).iter().any(|v| {
                v.to_str().is_ok_and(|v| {
                    v.split(',')
                        .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
                })
            });
            doomed.push(name.clone());
        } else if HOP_BY_HOP.contains(name) || listed(name) {
            doomed.push(name.clone());
        }
    }
    for name in doomed {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Whether a request asks for a WebSocket upgrade (RFC 6455 §4.1): a
/// `Connection` token `upgrade` and `Upgrade: websocket`.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let conn_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    conn_upgrade && upgrade_is_websocket(headers)
}

/// Whether `Upgrade` names `websocket`.
pub fn upgrade_is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
}

/// What the edge knows about the client side of a request.
#[derive(Debug, Clone, Copy)]
pub struct ClientSide<'a> {
    pub peer: IpAddr,
    /// Whether the client reached portico over TLS.
    pub tls: bool,
    /// The port the client connected to.
    pub local_port: u16,
    pub trusted_proxies: &'a [IpNet],
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Sets `X-Forwarded-For/-Proto/-Host/-Port` and `X-Real-IP`. Values the
/// client sent are kept (and extended) only when the TCP peer is a trusted
/// proxy; otherwise they are replaced, so nobody can spoof their address.
pub fn set_forwarded(headers: &mut HeaderMap, client: ClientSide<'_>, host: Option<&HeaderValue>) {
    let trusted = client
        .trusted_proxies
        .iter()
        .any(|n| n.contains(&client.peer));
    let proto = HeaderValue::from_static(if client.tls { "https" } else { "http" });
    // Room for the five headers at once rather than growing step by step.
    headers.reserve(5);
    if !trusted {
        // The common case, kept free of string formatting: one value for
        // the peer, shared by two headers.
        let peer = ip_value(client.peer);
        headers.insert(X_FORWARDED_FOR, peer.clone());
        headers.insert(X_REAL_IP, peer);
        headers.insert(X_FORWARDED_PROTO, proto);
        match host {
            Some(h) => {
                headers.insert(X_FORWARDED_HOST, h.clone());
            }
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
        headers.insert(X_FORWARDED_PORT, HeaderValue::from(client.local_port));
        headers.remove(header::FORWARDED);
        return;
    }
    let host = host.and_then(|h| h.to_str().ok());
    let peer = client.peer.to_string();
    let prior: Vec<String> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let chain = if prior.is_empty() {
        peer.clone()
    } else {
        format!("{}, {peer}", prior.join(", "))
    };
    // The real client is the first address in the chain a trusted proxy gave.
    let real = chain.split(',').next().unwrap_or(&peer).trim().to_string();
    set(headers, X_FORWARDED_FOR, &chain);
    if !headers.contains_key(&X_REAL_IP) {
        set(headers, X_REAL_IP, &real);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, proto);
    }
    if !headers.contains_key(&X_FORWARDED_HOST)
        && let Some(h) = host
    {
        set(headers, X_FORWARDED_HOST, h);
    }
    if !headers.contains_key(&X_FORWARDED_PORT) {
        set(headers, X_FORWARDED_PORT, &client.local_port.to_string());
    }
}

/// An address as a header value, without the formatting machinery for
/// the common IPv4 case.
fn ip_value(ip: IpAddr) -> HeaderValue {
    let mut text = Vec::with_capacity(15);
    push_ip(&mut text, ip);
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .expect("an IP address is a valid header value")
}

/// Appends an address as text; IPv4 without the formatting machinery.
pub(crate) fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    let IpAddr::V4(v4) = ip else {
        out.extend_from_slice(ip.to_string().as_bytes());
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push_decimal(out, u64::from(octet));
    }
}

/// A `Content-Length` value: plain ASCII digits that fit a `u64` (no sign,
/// no list, no spaces).
pub(crate) fn content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(v) => {
            headers.insert(name, v);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_lists_match_the_header_names() {
        let mut typed: Vec<&str> = HOP_BY_HOP.iter().map(HeaderName::as_str).collect();
        typed.push("te");
        assert_eq!(typed, HOP_BY_HOP_NAMES);
        let set = [
            X_FORWARDED_FOR,
            X_REAL_IP,
            X_FORWARDED_PROTO,
            X_FORWARDED_HOST,
            X_FORWARDED_PORT,
            header::FORWARDED,
        ];
        let set: Vec<&str> = set.iter().map(HeaderName::as_str).collect();
        assert_eq!(set, FORWARDING_NAMES);
    }

    #[test]
    fn connection_tokens_answer_or_say_they_cannot() {
        let lines: [&[u8]; 2] = [b"keep-alive, X-Secret", b" ,close"];
        let t = ConnectionTokens::gather(lines.into_iter());
        assert_eq!(t.lists(b"x-secret"), Some(true));
        assert_eq!(t.lists(b"CLOSE"), Some(true));
        assert_eq!(t.lists(b"x-other"), Some(false));
        let many = "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q";
        let t = ConnectionTokens::gather([many.as_bytes()].into_iter());
        assert_eq!(t.lists(b"a"), Some(true));
        assert_eq!(t.lists(b"q"), None);
    }

    #[test]
    fn decimals_are_plain() {
        for n in [0u64, 7, 10, 443, 65535, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn ip_values() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "255.255.255.255",
            "::1",
            "fe80::1",
        ] {
            assert_eq!(ip_value(ip.parse().unwrap()), ip);
        }
    }

    #[test]
    fn strips_nothing_when_nothing_is_hop_by_hop() {
        let mut h = map(&[("host", "a"), ("x-kept", "yes"), ("te", "trailers")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h["te"], "trailers");
        let mut h = map(&[("connection", "keep-alive"), ("content-length", "2")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
    }

    #[test]
    fn strips_hop_by_hop_and_connection_listed() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers, deflate"),
            ("upgrade", "h2c"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h["x-kept"], "yes");
        assert_eq!(h["te"], "trailers");
    }

    #[test]
    fn detects_websocket_upgrade() {
        assert!(is_websocket_upgrade(&map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket")
        ])));
        assert!(!is_websocket_upgrade(&map(&[("upgrade", "websocket")])));
        assert!(!is_websocket_upgrade(&map(&[
            ("connection", "upgrade"),
            ("upgrade", "h2c")
        ])));
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let mut h = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("x-real-ip", "1.2.3.4"),
        ]);
        let c = ClientSide {
            peer: "10.0.0.9".parse().unwrap(),
            tls: false,
            local_port: 8080,
            trusted_proxies: &[],
        };
        set_forwarded(&mut h, c, Some(&HeaderValue::from_static("app.test")));
        assert_eq!(h["x-forwarded-for"], "10.0.0.9");
        assert_eq!(h["x-real-ip"], "10.0.0.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "app.test");
        assert_eq!(h["x-forwarded-port"], "8080");
    }

    #[test]
    fn trusted_peer_extends_chain() {
        let nets: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        let c = ClientSide {
            peer: "10.0.0.9".parse().unwrap(),
            tls: false,
            local_port: 8080,
            trusted_proxies: &nets,
        };
        set_forwarded(&mut h, c, Some(&HeaderValue::from_static("app.test")));
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.9");
        assert_eq!(h["x-real-ip"], "1.2.3.4");
        assert_eq!(h["x-forwarded-proto"], "https");
    }
}
