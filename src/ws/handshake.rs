//! The server side of the RFC 6455 opening handshake, shared by the hub's
//! fronts: is this request an upgrade, and what is its accept key — or,
//! when it is not, which answer it gets (RFC 6455 §4.2.1, §4.4).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

/// The one WebSocket version this server speaks, as `426` responses
/// announce it in `Sec-WebSocket-Version` (RFC 6455 §4.4).
pub const VERSION: &str = "13";

/// Why a request to a WebSocket endpoint gets no `101`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// A plain HTTP request (no `Upgrade` header): `426`.
    #[error("not a WebSocket upgrade request")]
    NotUpgrade,
    /// An `Upgrade` to something other than `websocket` (`h2c`, ...): `400`.
    #[error("unsupported upgrade: only `Upgrade: websocket` is served here")]
    UnsupportedUpgrade,
    /// `Upgrade: websocket` on a method other than GET, or without a
    /// `Connection: upgrade` token: `400`.
    #[error("malformed WebSocket upgrade: a GET with `Connection: Upgrade` is required")]
    Malformed,
    /// `Sec-WebSocket-Version` missing or not 13: `426` with
    /// `Sec-WebSocket-Version: 13`.
    #[error("unsupported WebSocket version: this server speaks Sec-WebSocket-Version 13")]
    Version,
    /// `Sec-WebSocket-Key` missing or not 16 bytes of base64: `400`.
    #[error("missing or malformed Sec-WebSocket-Key: 16 bytes in base64 are required")]
    Key,
}

impl UpgradeError {
    /// The HTTP status of the refusal. A `426` carries
    /// `Sec-WebSocket-Version: 13` ([`VERSION`]).
    pub const fn status(self) -> StatusCode {
        match self {
            UpgradeError::NotUpgrade | UpgradeError::Version => StatusCode::UPGRADE_REQUIRED,
            UpgradeError::UnsupportedUpgrade | UpgradeError::Malformed | UpgradeError::Key => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

/// Marks a refusal response as [`UpgradeError`] wants it: a `426` names
/// the version this server speaks.
pub fn mark_refusal<B>(response: &mut Response<B>) {
    if response.status() == StatusCode::UPGRADE_REQUIRED {
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static(VERSION));
    }
}

/// `Sec-WebSocket-Accept` if this is a valid RFC 6455 upgrade request: a
/// GET with `Upgrade: websocket`, a `Connection` token `upgrade`, version 13
/// and a key that is 16 bytes in base64; else why not.
pub fn upgrade_accept(method: &Method, headers: &HeaderMap) -> Result<String, UpgradeError> {
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !headers.contains_key(UPGRADE) {
        return Err(UpgradeError::NotUpgrade);
    }
    if !has_token(UPGRADE, "websocket") {
        return Err(UpgradeError::UnsupportedUpgrade);
    }
    if method != Method::GET || !has_token(CONNECTION, "upgrade") {
        return Err(UpgradeError::Malformed);
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes().trim_ascii() != b"13")
    {
        return Err(UpgradeError::Version);
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().trim_ascii())
        .filter(|k| valid_key(k))
        .ok_or(UpgradeError::Key)?;
    Ok(accept_key(key))
}

/// Whether `key` is 16 bytes in canonical base64 (24 characters).
fn valid_key(key: &[u8]) -> bool {
    let mut out = [0u8; 24];
    key.len() == 24 && STANDARD.decode_slice(key, &mut out) == Ok(16)
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
            Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(
            upgrade_accept(&Method::POST, &h),
            Err(UpgradeError::Malformed)
        );
        assert_eq!(
            upgrade_accept(&Method::GET, &HeaderMap::new()),
            Err(UpgradeError::NotUpgrade)
        );
        for (name, bad, err) in [
            (SEC_WEBSOCKET_VERSION, "8", UpgradeError::Version),
            (UPGRADE, "h2c", UpgradeError::UnsupportedUpgrade),
            (CONNECTION, "keep-alive", UpgradeError::Malformed),
            (SEC_WEBSOCKET_KEY, "abc", UpgradeError::Key),
            // 20 bytes, not 16.
            (
                SEC_WEBSOCKET_KEY,
                "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                UpgradeError::Key,
            ),
            // 24 characters that are not base64.
            (
                SEC_WEBSOCKET_KEY,
                "!!!!!!!!!!!!!!!!!!!!!!==",
                UpgradeError::Key,
            ),
        ] {
            let mut h = upgrade_headers();
            h.insert(name, bad.parse().unwrap());
            assert_eq!(upgrade_accept(&Method::GET, &h), Err(err), "{bad}");
        }
        for name in [SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION] {
            let mut h = upgrade_headers();
            h.remove(&name);
            assert!(upgrade_accept(&Method::GET, &h).is_err(), "{name}");
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(UpgradeError::Version.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(
            UpgradeError::NotUpgrade.status(),
            StatusCode::UPGRADE_REQUIRED
        );
        assert_eq!(
            UpgradeError::UnsupportedUpgrade.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(UpgradeError::Key.status(), StatusCode::BAD_REQUEST);
    }
}
