//! The config file as written: serde structs that mirror the TOML one to one.
//!
//! Owns: the accepted key names (`deny_unknown_fields` everywhere) and the
//! source spans of values that are checked later. Receives: TOML text via
//! `toml::Deserializer`. Hands on: a [`RawConfig`] to `validate`, which turns
//! it into the typed [`crate::config::Config`]. Nothing here interprets values.

use serde::Deserialize;
use toml::Spanned;

use super::admin::RawAdmin;
use super::apps::{RawApp, RawPusher};
use super::cluster::RawCluster;
use super::ctx::SpStr;
use super::diagnostics::RawDiagnostics;
use super::processes::RawProcess;
use super::supabase::RawSupabase;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default, deserialize_with = "present_server")]
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
    #[serde(default)]
    pub(crate) supabase: Option<Spanned<RawSupabase>>,
    #[serde(default)]
    pub(crate) processes: Vec<Spanned<RawProcess>>,
    #[serde(default)]
    pub(crate) cluster: Option<Spanned<RawCluster>>,
    #[serde(default)]
    pub(crate) admin: Option<RawAdmin>,
    #[serde(default)]
    pub(crate) diagnostics: Option<RawDiagnostics>,
}

/// `[server]` as written, marked present (absent, it takes the defaults).
fn present_server<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RawServer, D::Error> {
    let mut server = RawServer::deserialize(d)?;
    server.present = true;
    Ok(server)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    /// Whether the file has a `[server]` table: without one, the embedded
    /// default's listeners apply; with one, its listeners are what it says.
    #[serde(skip)]
    pub(crate) present: bool,
    pub(crate) https: Option<SpStr>,
    pub(crate) http: Option<SpStr>,
    pub(crate) plain: Option<SpStr>,
    pub(crate) trusted_proxies: Option<Vec<SpStr>>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) max_connections_per_ip: Option<Spanned<i64>>,
    pub(crate) handshake_timeout: Option<SpStr>,
    pub(crate) header_timeout: Option<SpStr>,
    pub(crate) grace_period: Option<SpStr>,
    pub(crate) shutdown_delay: Option<SpStr>,
    pub(crate) max_body: Option<SpStr>,
    pub(crate) max_request_target: Option<SpStr>,
    pub(crate) health_path: Option<SpStr>,
    pub(crate) http2: Option<bool>,
    pub(crate) watch_config: Option<bool>,
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
    // acme mode (checked in `config::acme`).
    pub(crate) domains: Option<Spanned<Vec<SpStr>>>,
    pub(crate) email: Option<SpStr>,
    pub(crate) directory: Option<SpStr>,
    pub(crate) storage: Option<SpStr>,
    pub(crate) eab_kid: Option<SpStr>,
    pub(crate) eab_hmac_key: Option<SpStr>,
    pub(crate) ca_root: Option<SpStr>,
    pub(crate) challenges: Option<Spanned<Vec<SpStr>>>,
    pub(crate) renew_check: Option<SpStr>,
}

impl RawTls {
    /// The acme-only keys that are set, with their spans (for "only used
    /// when mode = acme" errors).
    pub(crate) fn acme_keys_set(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        let s = |v: &Option<SpStr>| v.as_ref().map(|v| v.span());
        [
            ("tls.domains", self.domains.as_ref().map(|v| v.span())),
            ("tls.email", s(&self.email)),
            ("tls.directory", s(&self.directory)),
            ("tls.storage", s(&self.storage)),
            ("tls.eab_kid", s(&self.eab_kid)),
            ("tls.eab_hmac_key", s(&self.eab_hmac_key)),
            ("tls.ca_root", s(&self.ca_root)),
            ("tls.challenges", self.challenges.as_ref().map(|v| v.span())),
            ("tls.renew_check", s(&self.renew_check)),
        ]
        .into_iter()
        .filter_map(|(k, sp)| sp.map(|sp| (k, sp)))
        .collect()
    }
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
    /// The name of a `[[processes]]` entry the fallback route waits for.
    pub(crate) wait_for: Option<SpStr>,
    // FastCGI and file targets (checked in `config::site`).
    pub(crate) root: Option<SpStr>,
    pub(crate) index: Option<SpStr>,
    pub(crate) allow_symlinks: Option<Vec<SpStr>>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) downloads: Option<Vec<SpStr>>,
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
    /// The name of a `[[processes]]` entry this route waits for.
    pub(crate) wait_for: Option<SpStr>,
    pub(crate) root: Option<SpStr>,
    pub(crate) index: Option<SpStr>,
    pub(crate) allow_symlinks: Option<Vec<SpStr>>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) downloads: Option<Vec<SpStr>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub(crate) format: Option<SpStr>,
    pub(crate) level: Option<SpStr>,
    pub(crate) access: Option<bool>,
}
