//! The config file as written: serde structs that mirror the TOML one to one.
//!
//! Owns: the accepted key names (`deny_unknown_fields` everywhere) and the
//! source spans of values that are checked later. Receives: TOML text via
//! `toml::Deserializer`. Hands on: a [`RawConfig`] to `validate`, which turns
//! it into the typed [`crate::config::Config`]. Nothing here interprets values.

use serde::Deserialize;
use toml::Spanned;

use super::apps::{RawApp, RawPusher};

/// A string value with its position in the file, for error messages.
pub(crate) type SpStr = Spanned<String>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) server: RawServer,
    #[serde(default)]
    pub(crate) tls: RawTls,
    #[serde(default)]
    pub(crate) upstream: RawUpstream,
    #[serde(default)]
    /// Each route keeps its own span, so a missing key points at its table.
    pub(crate) routes: Option<Spanned<Vec<Spanned<RawRoute>>>>,
    #[serde(default)]
    pub(crate) log: RawLog,
    #[serde(default)]
    pub(crate) apps: Vec<RawApp>,
    #[serde(default)]
    pub(crate) pusher: Option<RawPusher>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) https: Option<SpStr>,
    pub(crate) http: Option<SpStr>,
    pub(crate) plain: Option<SpStr>,
    pub(crate) trusted_proxies: Option<Vec<SpStr>>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) max_connections_per_ip: Option<Spanned<i64>>,
    pub(crate) handshake_timeout: Option<SpStr>,
    pub(crate) header_timeout: Option<SpStr>,
    pub(crate) grace_period: Option<SpStr>,
    pub(crate) max_body: Option<SpStr>,
    pub(crate) health_path: Option<SpStr>,
    pub(crate) http2: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) mode: Option<SpStr>,
    pub(crate) cert: Option<SpStr>,
    pub(crate) key: Option<SpStr>,
    pub(crate) certificates: Option<Vec<RawCertPair>>,
    pub(crate) dir: Option<SpStr>,
    pub(crate) hosts: Option<Vec<SpStr>>,
    pub(crate) watch: Option<bool>,
    // Reserved for the ACME issue; accepted so that the error can say so.
    pub(crate) domains: Option<Spanned<toml::Value>>,
    pub(crate) email: Option<Spanned<toml::Value>>,
    pub(crate) directory: Option<Spanned<toml::Value>>,
    pub(crate) storage: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertPair {
    pub(crate) cert: SpStr,
    pub(crate) key: SpStr,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub(crate) url: Option<SpStr>,
    pub(crate) connect_timeout: Option<SpStr>,
    pub(crate) response_timeout: Option<SpStr>,
    pub(crate) websocket: Option<bool>,
    pub(crate) websocket_idle_timeout: Option<SpStr>,
    pub(crate) host_header: Option<SpStr>,
    pub(crate) max_body: Option<SpStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) path: Option<SpStr>,
    pub(crate) host: Option<SpStr>,
    pub(crate) to: Option<SpStr>,
    pub(crate) strip_prefix: Option<bool>,
    pub(crate) rewrite: Option<SpStr>,
    pub(crate) connect_timeout: Option<SpStr>,
    pub(crate) response_timeout: Option<SpStr>,
    pub(crate) websocket: Option<bool>,
    pub(crate) websocket_idle_timeout: Option<SpStr>,
    pub(crate) host_header: Option<SpStr>,
    pub(crate) max_body: Option<SpStr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub(crate) format: Option<SpStr>,
    pub(crate) level: Option<SpStr>,
    pub(crate) access: Option<bool>,
}
