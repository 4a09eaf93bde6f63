//! Pusher signatures: channel auth, user sign-in, REST requests, webhooks,
//! and socket ids.
//!
//! Owns: every HMAC-SHA256 computation of the Pusher front and the
//! constant-time comparisons. Receives: an app's key and secret with the
//! material to check (socket id + channel [+ channel_data], user data, a REST
//! request's method/path/query/body, a webhook body). Hands on: `Ok(())` or a
//! typed error; signatures as lowercase hex.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Largest accepted clock skew of a REST `auth_timestamp`, in seconds.
pub const MAX_TIMESTAMP_SKEW: u64 = 600;

/// An app's credentials.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The public app key.
    pub key: &'a str,
    /// The shared secret.
    pub secret: &'a str,
}

fn mac(secret: &str) -> HmacSha256 {
    // HMAC accepts keys of any length.
    HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// Lowercase hex HMAC-SHA256 of the concatenated `parts`.
pub fn sign_parts(secret: &str, parts: &[&[u8]]) -> String {
    let mut m = mac(secret);
    for p in parts {
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

fn verify_parts(secret: &str, parts: &[&[u8]], hex_sig: &str) -> bool {
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut m = mac(secret);
    for p in parts {
        m.update(p);
    }
    m.verify_slice(&sig).is_ok()
}

fn channel_parts<'a>(socket_id: &'a str, channel: &'a str, data: Option<&'a str>) -> Vec<&'a [u8]> {
    let mut parts = vec![socket_id.as_bytes(), b":", channel.as_bytes()];
    if let Some(d) = data {
        parts.push(b":");
        parts.push(d.as_bytes());
    }
    parts
}

/// Why a channel or sign-in `auth` token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `auth` was given.
    #[error("auth is required")]
    Missing,
    /// `auth` is not `key:signature`.
    #[error("auth is not of the form key:signature")]
    Malformed,
    /// The key part names another app.
    #[error("auth key does not match the app key")]
    WrongKey,
    /// The signature does not match.
    #[error("invalid signature: expected HMAC SHA256 hex digest of {string_to_sign}")]
    BadSignature {
        /// What should have been signed (never the expected signature).
        string_to_sign: String,
    },
}

impl AuthError {
    /// A short stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "auth_missing",
            AuthError::Malformed => "auth_malformed",
            AuthError::WrongKey => "auth_wrong_key",
            AuthError::BadSignature { .. } => "bad_signature",
        }
    }
}

fn check_token(
    creds: Credentials<'_>,
    auth: Option<&str>,
    parts: &[&[u8]],
) -> Result<(), AuthError> {
    let auth = auth.ok_or(AuthError::Missing)?;
    let (key, sig) = auth.split_once(':').ok_or(AuthError::Malformed)?;
    if !bool::from(key.as_bytes().ct_eq(creds.key.as_bytes())) {
        return Err(AuthError::WrongKey);
    }
    if verify_parts(creds.secret, parts, sig) {
        Ok(())
    } else {
        Err(AuthError::BadSignature {
            string_to_sign: String::from_utf8_lossy(&parts.concat()).into_owned(),
        })
    }
}

/// The `auth` token for `socket_id:channel[:channel_data]`.
pub fn channel_token(
    creds: Credentials<'_>,
    socket_id: &str,
    channel: &str,
    data: Option<&str>,
) -> String {
    let sig = sign_parts(creds.secret, &channel_parts(socket_id, channel, data));
    format!("{}:{sig}", creds.key)
}

/// Checks a private/presence/encrypted subscribe's `auth`.
pub fn verify_channel(
    creds: Credentials<'_>,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: Option<&str>,
) -> Result<(), AuthError> {
    check_token(
        creds,
        auth,
        &channel_parts(socket_id, channel, channel_data),
    )
}

/// The `auth` token of a user sign-in: `socket_id::user::user_data`.
pub fn user_token(creds: Credentials<'_>, socket_id: &str, user_data: &str) -> String {
    let sig = sign_parts(
        creds.secret,
        &[socket_id.as_bytes(), b"::user::", user_data.as_bytes()],
    );
    format!("{}:{sig}", creds.key)
}

/// Checks a `pusher:signin`'s `auth`.
pub fn verify_user(
    creds: Credentials<'_>,
    socket_id: &str,
    user_data: &str,
    auth: Option<&str>,
) -> Result<(), AuthError> {
    check_token(
        creds,
        auth,
        &[socket_id.as_bytes(), b"::user::", user_data.as_bytes()],
    )
}

/// `X-Pusher-Signature` of a webhook body.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    sign_parts(secret, &[body])
}

/// A new socket id: two random positive integers, `"%d.%d"`.
pub fn socket_id() -> String {
    let a: u32 = rand::random_range(1..=999_999_999);
    let b: u32 = rand::random_range(1..=999_999_999);
    format!("{a}.{b}")
}

/// Whether `s` looks like a socket id (`digits.digits`).
pub fn is_socket_id(s: &str) -> bool {
    match s.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Why a signed REST request was refused (all map to HTTP 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestAuthError {
    /// A required query parameter is absent.
    #[error("missing query parameter {0}")]
    MissingParam(&'static str),
    /// The query string is not valid percent-encoding / UTF-8.
    #[error("query string is not valid")]
    BadQuery,
    /// `auth_key` is not this app's key.
    #[error("auth_key does not match the app")]
    WrongKey,
    /// `auth_version` is not 1.0.
    #[error("unsupported auth_version")]
    BadVersion,
    /// `auth_timestamp` is not an integer.
    #[error("auth_timestamp is not a number")]
    BadTimestamp,
    /// `auth_timestamp` is too far from the server clock.
    #[error(
        "timestamp expired: {skew} seconds from server time, the limit is {MAX_TIMESTAMP_SKEW}"
    )]
    Expired {
        /// Absolute difference in seconds.
        skew: u64,
    },
    /// A non-empty body came without `body_md5`, or it does not match.
    #[error("body_md5 does not match the body")]
    BodyMd5,
    /// The signature does not match.
    #[error(
        "invalid signature: you should have sent HmacSHA256Hex({string_to_sign:?}, your_secret_key)"
    )]
    BadSignature {
        /// What should have been signed.
        string_to_sign: String,
    },
}

/// One REST request to check.
#[derive(Debug, Clone, Copy)]
pub struct RestRequest<'a> {
    /// `GET`, `POST`.
    pub method: &'a str,
    /// The path as the client signed it: route path *without* any prefix.
    pub path: &'a str,
    /// The raw (still percent-encoded) query string, without `?`.
    pub query: &'a str,
    /// The raw body.
    pub body: &'a [u8],
}

/// Decodes an `application/x-www-form-urlencoded` component.
pub fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hexpair = b.get(i + 1..i + 3)?;
                let v = u8::from_str_radix(std::str::from_utf8(hexpair).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Parses a query string into decoded pairs, keys lowercased.
pub fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((url_decode(k)?.to_ascii_lowercase(), url_decode(v)?))
        })
        .collect()
}

/// Verifies a signed REST request against `creds` at unix time `now`.
pub fn verify_rest(
    creds: Credentials<'_>,
    req: RestRequest<'_>,
    now: u64,
) -> Result<(), RestAuthError> {
    let mut params = parse_query(req.query).ok_or(RestAuthError::BadQuery)?;
    // Last occurrence wins, like PHP's $_GET.
    params.reverse();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params.dedup_by(|a, b| a.0 == b.0);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    let key = get("auth_key").ok_or(RestAuthError::MissingParam("auth_key"))?;
    let sig = get("auth_signature").ok_or(RestAuthError::MissingParam("auth_signature"))?;
    let ts = get("auth_timestamp").ok_or(RestAuthError::MissingParam("auth_timestamp"))?;
    let version = get("auth_version").ok_or(RestAuthError::MissingParam("auth_version"))?;
    if !bool::from(key.as_bytes().ct_eq(creds.key.as_bytes())) {
        return Err(RestAuthError::WrongKey);
    }
    if version != "1.0" {
        return Err(RestAuthError::BadVersion);
    }
    let ts: u64 = ts.parse().map_err(|_| RestAuthError::BadTimestamp)?;
    let skew = ts.abs_diff(now);
    if skew > MAX_TIMESTAMP_SKEW {
        return Err(RestAuthError::Expired { skew });
    }
    match get("body_md5") {
        Some(md5) => {
            let actual = hex::encode(Md5::digest(req.body));
            if !bool::from(md5.as_bytes().ct_eq(actual.as_bytes())) {
                return Err(RestAuthError::BodyMd5);
            }
        }
        None if !req.body.is_empty() => return Err(RestAuthError::BodyMd5),
        None => {}
    }
    let query = params
        .iter()
        .filter(|(k, _)| k != "auth_signature")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let string_to_sign = format!("{}\n{}\n{}", req.method, req.path, query);
    if verify_parts(creds.secret, &[string_to_sign.as_bytes()], sig) {
        Ok(())
    } else {
        Err(RestAuthError::BadSignature { string_to_sign })
    }
}

/// Signs a REST request the way the official libraries do (for tests and
/// for our own clients): returns the full query string to append.
pub fn sign_rest(
    creds: Credentials<'_>,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &[u8],
    now: u64,
) -> String {
    let mut all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
        .collect();
    all.push(("auth_key".into(), creds.key.into()));
    all.push(("auth_timestamp".into(), now.to_string()));
    all.push(("auth_version".into(), "1.0".into()));
    if !body.is_empty() {
        all.push(("body_md5".into(), hex::encode(Md5::digest(body))));
    }
    all.sort();
    let q = all
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let sig = sign_parts(creds.secret, &[format!("{method}\n{path}\n{q}").as_bytes()]);
    let enc = all
        .iter()
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{enc}&auth_signature={sig}")
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
