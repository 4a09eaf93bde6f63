//! The server side of the RFC 6455 opening handshake, shared by the hub's
//! fronts: is this request an upgrade, and what is its accept key.

use http::header::{CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderMap, Method};

/// `Sec-WebSocket-Accept` if this is a valid RFC 6455 upgrade request: a
/// GET with `Upgrade: websocket`, a `Connection` token `upgrade`, version 13
/// and a key.
pub fn upgrade_accept(method: &Method, headers: &HeaderMap) -> Option<String> {
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if method != Method::GET
        || !has_token(UPGRADE, "websocket")
        || !has_token(CONNECTION, "upgrade")
    {
        return None;
    }
    if headers.get(SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13" {
        return None;
    }
    Some(accept_key(headers.get(SEC_WEBSOCKET_KEY)?.as_bytes()))
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(UPGRADE, "WebSocket".parse().unwrap());
        h.insert(CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        h.insert(SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        h.insert(
            SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        h
    }

    #[test]
    fn accept_key_matches_rfc6455_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn upgrade_detection() {
        let h = upgrade_headers();
        assert_eq!(
            upgrade_accept(&Method::GET, &h).as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(upgrade_accept(&Method::POST, &h), None);
        for (name, bad) in [
            (SEC_WEBSOCKET_VERSION, "8"),
            (UPGRADE, "h2c"),
            (CONNECTION, "keep-alive"),
        ] {
            let mut h = upgrade_headers();
            h.insert(name, bad.parse().unwrap());
            assert_eq!(upgrade_accept(&Method::GET, &h), None, "{bad}");
        }
        let mut h = upgrade_headers();
        h.remove(SEC_WEBSOCKET_KEY);
        assert_eq!(upgrade_accept(&Method::GET, &h), None);
    }
}
