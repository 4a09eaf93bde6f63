//! `[diagnostics]`: the page portico serves itself at `/.portico/`, which
//! runs the TLS, WebSocket, subscribe, publish, private-auth and Supabase
//! checks in the browser.
//!
//! Owns: the accepted keys of `[diagnostics]`, their defaults and rules.
//! Receives the raw table from [`super::raw`] and whether the config is a
//! development one (`tls.mode = "dev"` or the embedded default); hands on a
//! validated [`Diagnostics`]. On by default in development; anywhere else
//! off unless `enabled = true`, and then only behind a `token`.
//!
//! ```toml
//! [diagnostics]
//! enabled = true                         # default: on with tls.mode = "dev", off otherwise
//! token = "${PORTICO_DIAGNOSTICS_TOKEN}" # required when on outside dev mode;
//!                                        # sent as ?token= or X-Portico-Token
//! auth_endpoint = "/broadcasting/auth"   # the app's private-channel auth path
//! ```

use std::sync::Arc;

use serde::Deserialize;

use super::ctx::{Ctx, SpStr};
use super::error::ConfigError;

/// The path prefix the page and its endpoints live under.
pub const PATH: &str = "/.portico/";

/// Laravel's private-channel auth route.
const DEFAULT_AUTH_ENDPOINT: &str = "/broadcasting/auth";

/// `[diagnostics]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDiagnostics {
    pub(crate) enabled: Option<toml::Spanned<bool>>,
    pub(crate) token: Option<SpStr>,
    pub(crate) auth_endpoint: Option<SpStr>,
}

/// `[diagnostics]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// Whether `/.portico/` is answered by portico (before routing).
    pub enabled: bool,
    /// When set, every request under `/.portico/` must carry it.
    pub token: Option<Arc<str>>,
    /// The app's private-channel auth path the page POSTs to.
    pub auth_endpoint: Arc<str>,
}

pub(crate) fn validate(
    raw: Option<&RawDiagnostics>,
    dev: bool,
    cx: &Ctx<'_>,
) -> Result<Diagnostics, ConfigError> {
    let empty = RawDiagnostics::default();
    let raw = raw.unwrap_or(&empty);
    let token = match &raw.token {
        None => None,
        Some(v) => {
            let s = cx.string("diagnostics.token", v)?;
            if s.trim().is_empty() {
                return Err(cx.err(
                    "diagnostics.token",
                    Some(v.span()),
                    "the token is empty",
                    "set a long random string (`portico keygen` prints one), or remove the key",
                ));
            }
            if !s.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(cx.err(
                    "diagnostics.token",
                    Some(v.span()),
                    "the token has spaces or non-ASCII characters",
                    "use letters, digits and punctuation only: it travels in a URL and a header",
                ));
            }
            Some(Arc::from(s))
        }
    };
    let enabled = raw.enabled.as_ref().map_or(dev, |e| *e.get_ref());
    if enabled && !dev && token.is_none() {
        let span = raw.enabled.as_ref().map(|e| e.span());
        return Err(cx.err(
            "diagnostics.token",
            span,
            "the diagnostics page is on outside dev mode without a token",
            "set `diagnostics.token` (the page then needs ?token=…), or remove `diagnostics.enabled`",
        ));
    }
    let auth_endpoint = match &raw.auth_endpoint {
        None => Arc::from(DEFAULT_AUTH_ENDPOINT),
        Some(v) => {
            let s = cx.string("diagnostics.auth_endpoint", v)?;
            if !s.starts_with('/') || s.contains(char::is_whitespace) {
                return Err(cx.err(
                    "diagnostics.auth_endpoint",
                    Some(v.span()),
                    format!("`{s}` is not an absolute path"),
                    "write the path of the app's auth route, such as \"/broadcasting/auth\"",
                ));
            }
            Arc::from(s)
        }
    };
    Ok(Diagnostics {
        enabled,
        token,
        auth_endpoint,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    fn load(tls: &str, diag: &str) -> Result<Config, ConfigError> {
        let text = format!("[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"{tls}\"\n{diag}");
        Config::from_str_with_env(&text, "t.toml", &|_| None)
    }

    #[test]
    fn on_in_dev_off_otherwise() {
        assert!(Config::embedded().unwrap().diagnostics.enabled);
        assert!(load("dev", "").unwrap().diagnostics.enabled);
        assert!(!load("off", "").unwrap().diagnostics.enabled);
        assert!(
            !load("dev", "[diagnostics]\nenabled = false\n")
                .unwrap()
                .diagnostics
                .enabled
        );
        let d = load("off", "").unwrap().diagnostics;
        assert_eq!(&*d.auth_endpoint, "/broadcasting/auth");
        assert!(d.token.is_none());
    }

    #[test]
    fn outside_dev_it_needs_a_token() {
        let e = load("off", "[diagnostics]\nenabled = true\n")
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("diagnostics.token") && e.contains("t.toml:6"),
            "{e}"
        );
        let d = load("off", "[diagnostics]\nenabled = true\ntoken = \"s3cret\"\n")
            .unwrap()
            .diagnostics;
        assert!(d.enabled);
        assert_eq!(d.token.as_deref(), Some("s3cret"));
        // A token alone does not turn the page on outside dev mode.
        assert!(
            !load("off", "[diagnostics]\ntoken = \"s3cret\"\n")
                .unwrap()
                .diagnostics
                .enabled
        );
    }

    #[test]
    fn bad_values_name_key_and_file() {
        for (diag, key) in [
            ("token = \"\"", "diagnostics.token"),
            ("token = \"a b\"", "diagnostics.token"),
            (
                "auth_endpoint = \"broadcasting/auth\"",
                "diagnostics.auth_endpoint",
            ),
        ] {
            let e = load("dev", &format!("[diagnostics]\n{diag}\n"))
                .expect_err("refused")
                .to_string();
            assert!(e.contains(key) && e.contains("t.toml:6"), "{diag}: {e}");
        }
        let e = load("dev", "[diagnostics]\npath = \"/x\"\n")
            .expect_err("refused")
            .to_string();
        assert!(e.contains("path"), "{e}");
    }
}
