//! `[tls] mode = "acme"`: the typed ACME settings and their validation.
//!
//! Owns: the rules for `domains`, `email`, `directory`, `storage`, external
//! account binding (`eab_kid` + `eab_hmac_key`), `ca_root`, `challenges`
//! and `renew_check`.
//! Receives: the raw `[tls]` table from [`super::raw`] (spans kept).
//! Hands on: an [`AcmeSettings`] inside [`super::Tls::Acme`], which the
//! [`crate::tls::acme`] manager runs. Nothing network-facing happens here: a bad
//! directory URL is caught by its shape, at config time.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::ctx::Ctx;
use super::error::ConfigError;
use super::raw::RawTls;
use super::units::parse_duration_opt;

/// Let's Encrypt production directory.
pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt staging directory (untrusted certificates, high limits).
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Default for `tls.storage`.
pub const DEFAULT_STORAGE: &str = "certs-acme";
/// Default for `tls.renew_check` (certmagic scans every 10 minutes).
pub const DEFAULT_RENEW_CHECK: Duration = Duration::from_secs(600);

/// An ACME challenge type portico can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// `GET /.well-known/acme-challenge/<token>` on the `http` listener.
    Http01,
    /// ALPN `acme-tls/1` on the `https` listener (RFC 8737).
    TlsAlpn01,
}

impl ChallengeKind {
    /// The ACME name (`http-01`, `tls-alpn-01`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::TlsAlpn01 => "tls-alpn-01",
        }
    }

    /// Parse an ACME challenge name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http-01" => Some(Self::Http01),
            "tls-alpn-01" => Some(Self::TlsAlpn01),
            _ => None,
        }
    }
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// External account binding (ZeroSSL, Google Trust Services, ...).
#[derive(Clone, PartialEq, Eq)]
pub struct Eab {
    /// The key id the CA gave you.
    pub kid: String,
    /// The decoded HMAC key.
    pub hmac_key: Vec<u8>,
}

impl fmt::Debug for Eab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Eab")
            .field("kid", &self.kid)
            .field("hmac_key", &"<redacted>")
            .finish()
    }
}

/// Validated ACME settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeSettings {
    /// Names to get certificates for: one certificate per name, lower-case.
    pub domains: Vec<String>,
    /// Contact address sent to the CA (optional since Let's Encrypt stopped
    /// expiry mail).
    pub email: Option<String>,
    /// The ACME directory URL (`letsencrypt` etc. already resolved).
    pub directory: String,
    /// Where the account and certificates are kept (shared by nodes).
    pub storage: PathBuf,
    /// External account binding, when the CA requires one.
    pub eab: Option<Eab>,
    /// A PEM root to trust for the directory's HTTPS (private CAs, pebble);
    /// `None` uses the system roots.
    pub ca_root: Option<PathBuf>,
    /// Challenge types in order of preference; at least one.
    pub challenges: Vec<ChallengeKind>,
    /// How often certificates are checked for renewal.
    pub renew_check: Duration,
    /// Waits after consecutive order failures (`None`: certmagic's schedule,
    /// 1m growing to 6h). Not a TOML key: tests shorten it.
    pub retry_intervals: Option<Vec<Duration>>,
}

/// Resolve a `directory` value: a well-known name or an https URL.
pub fn directory_url(value: &str) -> Result<String, String> {
    match value {
        "letsencrypt" => return Ok(LETSENCRYPT.to_string()),
        "letsencrypt-staging" => return Ok(LETSENCRYPT_STAGING.to_string()),
        _ => {}
    }
    let uri: http::Uri = value
        .parse()
        .map_err(|e| format!("`{value}` is not a URL ({e})"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!(
            "`{value}` is not an https URL (ACME directories are served over https)"
        ));
    }
    match uri.host() {
        Some(h) if !h.is_empty() => {}
        _ => return Err(format!("`{value}` has no host")),
    }
    Ok(value.to_string())
}

/// True for a DNS name a public CA can validate with HTTP-01/TLS-ALPN-01.
fn valid_domain(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.parse::<std::net::IpAddr>().is_err()
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

pub(crate) fn validate(
    t: &RawTls,
    mode_span: Option<std::ops::Range<usize>>,
    cx: &Ctx<'_>,
) -> Result<AcmeSettings, ConfigError> {
    let Some(list) = &t.domains else {
        return Err(cx.err(
            "tls.domains",
            mode_span,
            "`tls.mode = \"acme\"` needs the names to get certificates for",
            "add `domains = [\"example.com\", \"www.example.com\"]` (their DNS must point at this machine)",
        ));
    };
    if list.get_ref().is_empty() {
        return Err(cx.err(
            "tls.domains",
            Some(list.span()),
            "the list is empty",
            "add at least one name, e.g. `domains = [\"example.com\"]`",
        ));
    }
    let mut domains = Vec::new();
    for (i, d) in list.get_ref().iter().enumerate() {
        let key = format!("tls.domains[{i}]");
        let name = cx
            .string(&key, d)?
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if name.starts_with("*.") {
            return Err(cx.err(
                &key,
                Some(d.span()),
                format!("`{name}` is a wildcard; wildcards need the DNS-01 challenge, which portico does not do"),
                "list each name (`app.example.com`, `www.example.com`), or use `mode = \"files\"` with a wildcard from certbot",
            ));
        }
        if !valid_domain(&name) {
            return Err(cx.err(
                &key,
                Some(d.span()),
                format!("`{name}` is not a public DNS name"),
                "write a full name such as \"example.com\" (IP addresses and `localhost` cannot get ACME certificates; use `mode = \"dev\"` locally)",
            ));
        }
        if domains.contains(&name) {
            return Err(cx.err(
                &key,
                Some(d.span()),
                format!("`{name}` is listed twice"),
                "remove the duplicate",
            ));
        }
        domains.push(name);
    }
    let email = match &t.email {
        None => None,
        Some(v) => {
            let e = cx.string("tls.email", v)?.trim().to_string();
            let ok = e
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !e.contains(' '));
            if !ok {
                return Err(cx.err(
                    "tls.email",
                    Some(v.span()),
                    format!("`{e}` is not an email address"),
                    "write e.g. \"ops@example.com\", or remove `email`",
                ));
            }
            Some(e)
        }
    };
    let directory = match &t.directory {
        None => LETSENCRYPT.to_string(),
        Some(v) => directory_url(cx.string("tls.directory", v)?.trim()).map_err(|p| {
            cx.err(
                "tls.directory",
                Some(v.span()),
                p,
                "use \"letsencrypt\", \"letsencrypt-staging\" or the CA's https directory URL, e.g. \"https://acme.zerossl.com/v2/DV90\"",
            )
        })?,
    };
    let storage = match &t.storage {
        None => PathBuf::from(DEFAULT_STORAGE),
        Some(v) => cx.path("tls.storage", v)?,
    };
    let eab = match (&t.eab_kid, &t.eab_hmac_key) {
        (None, None) => None,
        (Some(k), None) => {
            return Err(cx.err(
                "tls.eab_hmac_key",
                Some(k.span()),
                "`eab_kid` is set but `eab_hmac_key` is missing",
                "add `eab_hmac_key = \"${ACME_EAB_HMAC}\"` (both come from your CA's dashboard)",
            ));
        }
        (None, Some(h)) => {
            return Err(cx.err(
                "tls.eab_kid",
                Some(h.span()),
                "`eab_hmac_key` is set but `eab_kid` is missing",
                "add `eab_kid = \"...\"` (both come from your CA's dashboard)",
            ));
        }
        (Some(k), Some(h)) => {
            let kid = cx.string("tls.eab_kid", k)?.trim().to_string();
            let raw = cx.string("tls.eab_hmac_key", h)?;
            let hmac_key = URL_SAFE_NO_PAD
                .decode(raw.trim().trim_end_matches('='))
                .ok()
                .filter(|k| !k.is_empty() && !kid.is_empty())
                .ok_or_else(|| {
                    cx.err(
                        "tls.eab_hmac_key",
                        Some(h.span()),
                        "not a base64url key (or `eab_kid` is empty)",
                        "paste the HMAC key exactly as your CA shows it",
                    )
                })?;
            Some(Eab { kid, hmac_key })
        }
    };
    let ca_root = t
        .ca_root
        .as_ref()
        .map(|v| cx.path("tls.ca_root", v))
        .transpose()?;
    let challenges = match &t.challenges {
        None => vec![ChallengeKind::Http01, ChallengeKind::TlsAlpn01],
        Some(list) => {
            let mut out = Vec::new();
            for (i, c) in list.get_ref().iter().enumerate() {
                let key = format!("tls.challenges[{i}]");
                let s = cx.string(&key, c)?;
                let kind = ChallengeKind::parse(s.trim()).ok_or_else(|| {
                    cx.err(
                        &key,
                        Some(c.span()),
                        format!("unknown challenge `{s}`"),
                        "use \"http-01\" and/or \"tls-alpn-01\"",
                    )
                })?;
                if !out.contains(&kind) {
                    out.push(kind);
                }
            }
            if out.is_empty() {
                return Err(cx.err(
                    "tls.challenges",
                    Some(list.span()),
                    "the list is empty",
                    "remove `challenges` (both are tried), or list \"http-01\" and/or \"tls-alpn-01\"",
                ));
            }
            out
        }
    };
    let renew_check = match &t.renew_check {
        None => DEFAULT_RENEW_CHECK,
        Some(v) => {
            let s = cx.string("tls.renew_check", v)?;
            match parse_duration_opt(&s) {
                Ok(Some(d)) if d >= Duration::from_secs(1) => d,
                Ok(_) => {
                    return Err(cx.err(
                        "tls.renew_check",
                        Some(v.span()),
                        "must be at least 1s",
                        "remove it (default 10m) or write e.g. \"10m\"",
                    ));
                }
                Err(p) => {
                    return Err(cx.err(
                        "tls.renew_check",
                        Some(v.span()),
                        p,
                        "write a duration such as \"10m\"",
                    ));
                }
            }
        }
    };
    Ok(AcmeSettings {
        domains,
        email,
        directory,
        storage,
        eab,
        ca_root,
        challenges,
        renew_check,
        retry_intervals: None,
    })
}

/// ACME needs the `https` listener, and HTTP-01 needs the `http` one (it is
/// dropped from the defaults when that listener is disabled).
pub(crate) fn check_listeners(
    a: &mut AcmeSettings,
    https: Option<SocketAddr>,
    http: Option<SocketAddr>,
    t: &RawTls,
    cx: &Ctx<'_>,
) -> Result<(), ConfigError> {
    let span = t.mode.as_ref().map(|m| m.span());
    if https.is_none() {
        return Err(cx.err(
            "server.https",
            span,
            "`tls.mode = \"acme\"` but the `https` listener is disabled",
            "set `server.https = \"0.0.0.0:443\"`",
        ));
    }
    if http.is_none() && a.challenges == [ChallengeKind::Http01] {
        return Err(cx.err(
            "tls.challenges",
            t.challenges.as_ref().map(|c| c.span()).or(span),
            "only `http-01` is enabled but the `http` listener is disabled",
            "set `server.http = \"0.0.0.0:80\"`, or add \"tls-alpn-01\"",
        ));
    }
    if http.is_none() {
        a.challenges.retain(|c| *c != ChallengeKind::Http01);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
