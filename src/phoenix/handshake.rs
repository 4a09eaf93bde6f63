//! The WebSocket handshake of `/realtime/v1/websocket`, before the upgrade.
//!
//! Owns: the checks Supabase Realtime makes in `UserSocket.connect` and
//! Phoenix in `__connect__` — a WebSocket upgrade, a supported `vsn`, and a
//! valid API key (the `x-api-key` header, else the `apikey` query
//! parameter). Receives: the request's method, headers and query, the
//! verifier, and the time. Hands on: the negotiated [`Accepted`] session
//! parameters, or a [`HandshakeError`] that becomes an HTTP error with a
//! reason in the body: a browser only ever shows such failures as close code
//! 1006, so the body and the log line are the only place the reason shows.

use http::{HeaderMap, Method, StatusCode};

use super::codec::{CodecError, Vsn};
use super::jwt::{Claims, JwtError, Verifier};

/// What a successful handshake negotiated.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The protocol version of the socket.
    pub vsn: Vsn,
    /// The token the socket connected with (joins without an
    /// `access_token` use it).
    pub token: String,
    /// Its verified claims.
    pub claims: Claims,
    /// `Sec-WebSocket-Accept`.
    pub accept: String,
}

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// A plain HTTP request to the WebSocket endpoint.
    #[error(
        "upgrade required: this is the Supabase Realtime WebSocket endpoint; connect with a WebSocket client (realtime-js, supabase-js .channel())"
    )]
    NotWebSocket,
    /// An upgrade request that is not a valid RFC 6455 one (bad version,
    /// key, method, or an `Upgrade` other than `websocket`).
    #[error("{0}")]
    Upgrade(crate::ws::UpgradeError),
    /// `vsn` other than 1.0.x / 2.0.x.
    #[error(transparent)]
    Vsn(CodecError),
    /// The API key is missing or invalid.
    #[error("{0}")]
    Auth(JwtError),
    /// The front has no `[supabase]` config.
    #[error(
        "Supabase Realtime is not configured on this server: add a [supabase] section with jwt_secrets to portico's config"
    )]
    NotConfigured,
    /// Too many sockets at once.
    #[error("ConnectionRateLimitReached: Too many connected users")]
    TooManyConnections,
    /// The server is draining.
    #[error("RealtimeRestarting: Realtime is currently restarting")]
    Draining,
}

impl HandshakeError {
    /// A short stable label for metrics. One exhaustive match.
    pub const fn reason(&self) -> &'static str {
        match self {
            HandshakeError::NotWebSocket => "not_websocket",
            HandshakeError::Upgrade(_) => "bad_upgrade",
            HandshakeError::Vsn(_) => "unsupported_protocol",
            HandshakeError::Auth(_) => "bad_token",
            HandshakeError::NotConfigured => "not_configured",
            HandshakeError::TooManyConnections => "over_quota",
            HandshakeError::Draining => "shutting_down",
        }
    }

    /// The HTTP status (Supabase's where it has one).
    pub const fn status(&self) -> StatusCode {
        match self {
            HandshakeError::NotWebSocket => StatusCode::UPGRADE_REQUIRED,
            HandshakeError::Upgrade(e) => e.status(),
            HandshakeError::Vsn(_) => StatusCode::BAD_REQUEST,
            HandshakeError::Auth(_) => StatusCode::UNAUTHORIZED,
            HandshakeError::NotConfigured | HandshakeError::Draining => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            HandshakeError::TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Whether the refusal waits `handshake_error_delay` before it is sent,
    /// as Supabase's `connect` errors do. Refusals Phoenix gives before
    /// `connect` (not an upgrade, bad `vsn`) go out at once, as do those
    /// with no config to read the delay from or while draining (the client
    /// should reconnect elsewhere without waiting).
    pub const fn delayed(&self) -> bool {
        match self {
            HandshakeError::Auth(_) | HandshakeError::TooManyConnections => true,
            HandshakeError::NotWebSocket
            | HandshakeError::Upgrade(_)
            | HandshakeError::Vsn(_)
            | HandshakeError::NotConfigured
            | HandshakeError::Draining => false,
        }
    }

    /// `{"error": reason}`, as Supabase answers.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.to_string() }).to_string()
    }
}

/// A query parameter, percent-decoded (last one wins).
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').rev().find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The API key of a request: `x-api-key`, else `apikey` in the query.
pub fn api_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| query_param(query, "apikey"))
        .filter(|k| !k.trim().is_empty())
}

/// Runs every handshake check, in Phoenix's order: upgrade, vsn, then auth.
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    verifier: Option<&Verifier>,
    now: u64,
) -> Result<Accepted, HandshakeError> {
    let accept = crate::ws::upgrade_accept(method, headers).map_err(|e| match e {
        crate::ws::UpgradeError::NotUpgrade => HandshakeError::NotWebSocket,
        e => HandshakeError::Upgrade(e),
    })?;
    let vsn = Vsn::negotiate(query_param(query, "vsn").as_deref()).map_err(HandshakeError::Vsn)?;
    let verifier = verifier.ok_or(HandshakeError::NotConfigured)?;
    let token = api_key(headers, query).ok_or(HandshakeError::Auth(JwtError::Missing))?;
    let claims = verifier.verify(&token, now).map_err(HandshakeError::Auth)?;
    Ok(Accepted {
        vsn,
        token,
        claims,
        accept,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use http::header::{CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};

    use jsonwebtoken::Algorithm;
    use serde_json::json;

    use super::*;
    use crate::phoenix::jwt::sign_hs;

    const SECRET: &[u8] = b"super-secret-jwt-token-with-at-least-32-characters-long";
    const NOW: u64 = 1_900_000_000;

    fn verifier() -> Verifier {
        let mut keys = HashMap::new();
        keys.insert(Arc::from("sb_publishable_k"), Arc::from("anon"));
        Verifier::new(&[Arc::from(SECRET)], keys, Vec::new())
    }

    fn ws_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(UPGRADE, "websocket".parse().unwrap());
        h.insert(CONNECTION, "Upgrade".parse().unwrap());
        h.insert(SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        h.insert(
            SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        h
    }

    fn tok() -> String {
        sign_hs(
            Algorithm::HS256,
            &json!({"role":"anon","exp":NOW+60}),
            SECRET,
        )
    }

    #[test]
    fn accepts_query_key_and_negotiates() {
        let q = format!("apikey={}&vsn=2.0.0&log_level=info", tok());
        let a = check(
            &Method::GET,
            &ws_headers(),
            Some(&q),
            Some(&verifier()),
            NOW,
        )
        .unwrap();
        assert_eq!(a.vsn, Vsn::V2);
        assert_eq!(&*a.claims.role, "anon");
        assert_eq!(a.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let q = format!("apikey={}", tok());
        let a = check(
            &Method::GET,
            &ws_headers(),
            Some(&q),
            Some(&verifier()),
            NOW,
        )
        .unwrap();
        assert_eq!(a.vsn, Vsn::V1);
    }

    #[test]
    fn header_key_wins_and_opaque_keys_work() {
        let mut h = ws_headers();
        h.insert("x-api-key", "sb_publishable_k".parse().unwrap());
        let a = check(
            &Method::GET,
            &h,
            Some("apikey=garbage&vsn=1.0.0"),
            Some(&verifier()),
            NOW,
        )
        .unwrap();
        assert_eq!(a.token, "sb_publishable_k");
    }

    #[test]
    fn refusals_and_their_statuses() {
        let v = verifier();
        let cases: Vec<(Result<Accepted, HandshakeError>, StatusCode, &str)> = vec![
            (
                check(&Method::GET, &HeaderMap::new(), None, Some(&v), NOW),
                StatusCode::UPGRADE_REQUIRED,
                "upgrade required",
            ),
            (
                check(
                    &Method::GET,
                    &ws_headers(),
                    Some("vsn=3.0.0"),
                    Some(&v),
                    NOW,
                ),
                StatusCode::BAD_REQUEST,
                "unsupported protocol version `3.0.0`",
            ),
            (
                check(&Method::GET, &ws_headers(), Some("vsn=2.0.0"), None, NOW),
                StatusCode::SERVICE_UNAVAILABLE,
                "not configured",
            ),
            (
                check(
                    &Method::GET,
                    &ws_headers(),
                    Some("vsn=2.0.0"),
                    Some(&v),
                    NOW,
                ),
                StatusCode::UNAUTHORIZED,
                "No API key was provided",
            ),
            (
                check(
                    &Method::GET,
                    &ws_headers(),
                    Some("apikey=abc"),
                    Some(&v),
                    NOW,
                ),
                StatusCode::UNAUTHORIZED,
                "not a valid JWT",
            ),
            (
                check(
                    &Method::GET,
                    &ws_headers(),
                    Some(&format!(
                        "apikey={}",
                        sign_hs(
                            Algorithm::HS256,
                            &json!({"role":"anon","exp":NOW-3}),
                            SECRET
                        )
                    )),
                    Some(&v),
                    NOW,
                ),
                StatusCode::UNAUTHORIZED,
                "Token has expired 3 seconds ago",
            ),
        ];
        for (r, status, needle) in cases {
            let e = r.unwrap_err();
            assert_eq!(e.status(), status, "{e}");
            let body: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
            assert!(body["error"].as_str().unwrap().contains(needle), "{body}");
        }
        assert_eq!(
            HandshakeError::TooManyConnections.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            HandshakeError::Draining.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn only_connect_errors_are_delayed() {
        assert!(HandshakeError::Auth(JwtError::Missing).delayed());
        assert!(HandshakeError::TooManyConnections.delayed());
        assert!(!HandshakeError::NotWebSocket.delayed());
        assert!(!HandshakeError::NotConfigured.delayed());
        assert!(!HandshakeError::Draining.delayed());
        let vsn = check(
            &Method::GET,
            &ws_headers(),
            Some("vsn=3.0.0"),
            Some(&verifier()),
            NOW,
        )
        .unwrap_err();
        assert!(!vsn.delayed());
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            query_param(Some("a=1&b=x%2By+z&a=2"), "a").as_deref(),
            Some("2")
        );
        assert_eq!(
            query_param(Some("a=1&b=x%2By+z"), "b").as_deref(),
            Some("x+y z")
        );
        assert_eq!(query_param(Some("a=%zz%"), "a").as_deref(), Some("%zz%"));
        assert_eq!(query_param(Some("a=%é1"), "a").as_deref(), Some("%é1"));
        assert_eq!(query_param(None, "a"), None);
    }
}
