//! Configuration: TOML text in, a validated [`Config`] out.
//!
//! Two stages: [`raw`] mirrors the file (serde, unknown keys rejected, spans
//! kept), then [`validate`] checks every value once and produces typed values
//! (`SocketAddr`, `Duration`, byte counts, parsed upstream URLs). Nothing past
//! this module re-checks config. Every error is a [`ConfigError`] that names
//! the dotted key, the file, line and column, and a fix.
//!
//! Config knows no front: it imports nothing else of the crate, and what it
//! hands on is plain validated data (e.g. [`apps::AppSpec`],
//! [`supabase::JwksSpec`], [`supabase::PolicySpec`]) from which each front
//! builds its runtime state.
//!
//! Parts: `error` (the error type and the TOML stage), `ctx` (the
//! validation context and value readers every section uses), `validate`
//! (the entry point, `[server]`, `[tls]`, `[log]`), `routes` (`[upstream]`,
//! `routes`), [`acme`], [`admin`], [`apps`], [`diagnostics`], [`supabase`], [`processes`], [`cluster`]
//! (their sections), `show`
//! (the `portico check` summary), `units` and `expand` (value syntax),
//! [`watch`] (reloading when the file changes).

pub mod acme;
pub mod admin;
pub mod apps;
pub mod cluster;
mod ctx;
pub mod diagnostics;
mod error;
mod expand;
pub mod processes;
mod raw;
mod routes;
mod show;
mod site;
pub mod supabase;
mod units;
mod validate;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use ipnet::IpNet;

pub use acme::{AcmeSettings, ChallengeKind, Eab};
pub use error::ConfigError;
pub use processes::{ProcessSpec, ReadyProbe, StopSignal};
pub use show::Effective;

/// The configuration compiled into the binary: used when no file is given
/// and `config/portico.toml` does not exist.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

/// Where the running configuration came from (for messages and reloads).
pub const EMBEDDED_NAME: &str = "<embedded default>";

/// A fully validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// File the config was read from, or [`EMBEDDED_NAME`].
    pub source: Arc<str>,
    pub server: Server,
    pub tls: Tls,
    /// Where requests that match no other route go (`[upstream]`): an
    /// HTTP(S) upstream, php-fpm, or a plain file server.
    pub upstream: Target,
    /// Routes in match order; the last one is always the catch-all to `upstream`.
    pub routes: Vec<Route>,
    pub log: Log,
    pub apps: apps::Apps,
    /// `[supabase]`: the Supabase Realtime front; `None` when absent.
    pub supabase: Option<Arc<supabase::Supabase>>,
    /// `[[processes]]`: programs portico starts and keeps running, in file order.
    pub processes: Vec<ProcessSpec>,
    /// `[cluster]`: nodes sharing one Redis; `None` when absent (one node).
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// `[admin]`: the `/metrics` and `/status` listener; `None` when off.
    pub admin: Option<admin::Admin>,
    /// `[diagnostics]`: the `/.portico/` page; on by default in dev mode.
    pub diagnostics: diagnostics::Diagnostics,
}

/// `[server]`: listeners, limits and timeouts that apply to every connection.
#[derive(Debug, Clone)]
pub struct Server {
    /// TLS listener (`https`).
    pub https: Option<SocketAddr>,
    /// Port-80 listener: ACME HTTP-01 and the redirect to https (`http`).
    pub http: Option<SocketAddr>,
    /// Plain HTTP + WebSocket listener for platforms that terminate TLS (`plain`).
    pub plain: Option<SocketAddr>,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Connections held at once, over all listeners.
    pub max_connections: usize,
    /// Connections held at once from one client IP.
    pub max_connections_per_ip: usize,
    /// Deadline for the whole TLS handshake, ClientHello included.
    pub handshake_timeout: Duration,
    /// Deadline for a request head to arrive (slowloris guard); on HTTP/1.1
    /// it also bounds how long an idle keep-alive connection waits.
    pub header_timeout: Duration,
    /// On SIGTERM, how long in-flight requests get before connections are cut.
    pub grace_period: Duration,
    /// On SIGTERM, how long the health endpoint answers 503 while portico
    /// still serves normally, so a load balancer stops sending new clients
    /// before listeners close.
    pub shutdown_delay: Duration,
    /// Default request-body limit in bytes (routes may override).
    pub max_body: u64,
    /// Longest request target (path and query) answered; longer gets 414.
    pub max_request_target: usize,
    /// Path of portico's own health endpoint.
    pub health_path: Arc<str>,
    /// Offer HTTP/2 to clients over TLS (ALPN h2).
    pub http2: bool,
    /// Reload when the config file changes, as on SIGHUP (`watch_config`).
    pub watch_config: bool,
}

/// `[tls]`: how the https listener gets its certificates.
#[derive(Debug, Clone, PartialEq)]
pub enum Tls {
    /// No TLS: the `https` listener must be disabled.
    Off,
    /// A local dev CA in `dir` signs a short-lived leaf for localhost and `hosts`.
    Dev { dir: PathBuf, hosts: Vec<String> },
    /// PEM files; reloaded on SIGHUP and, when `watch`, when they change.
    Files { pairs: Vec<CertPair>, watch: bool },
    /// Certificates from an ACME CA (Let's Encrypt), issued and renewed in
    /// process, kept in `storage`.
    Acme(AcmeSettings),
}

/// One certificate chain and its private key, as PEM file paths.
#[derive(Debug, Clone, PartialEq)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One routing rule; the first whose host and path prefix match wins.
#[derive(Debug, Clone)]
pub struct Route {
    /// Path prefix, always starting with `/`.
    pub path: Arc<str>,
    /// Optional host (`example.com` or `*.example.com`), compared without port.
    pub host: Option<HostPattern>,
    pub target: Target,
    /// What happens to the matched prefix before forwarding.
    pub rewrite: Rewrite,
    /// Whether the route was written by the user or is a built-in default.
    pub origin: RouteOrigin,
    /// A `[[processes]]` name: until that process is ready the route
    /// answers 503 with `Retry-After` (`wait_for`).
    pub wait_for: Option<Arc<str>>,
}

/// Where a matching request is served.
#[derive(Debug, Clone)]
pub enum Target {
    /// Reverse proxy to an HTTP(S) upstream.
    Proxy(Arc<ProxyTarget>),
    /// php-fpm over FastCGI, with the Laravel front-controller rules.
    FastCgi(Arc<FastCgiTarget>),
    /// Static files from a directory, nothing executed.
    Files(Arc<FilesTarget>),
    /// The in-process Pusher hub (WebSocket `/app/{key}`, REST `/apps/{id}`).
    Pusher,
    /// The in-process Supabase Realtime front.
    Supabase,
}

impl Target {
    /// A short name for logs and `portico check`: the upstream URL, the
    /// document root of a file server, or the built-in front.
    pub fn label(&self) -> Arc<str> {
        match self {
            Target::Proxy(p) => p.url.clone(),
            Target::FastCgi(f) => f.url.clone(),
            Target::Files(f) => Arc::from(format!("files:{}", f.site.root.display())),
            Target::Pusher => Arc::from("pusher"),
            Target::Supabase => Arc::from("supabase"),
        }
    }
}

/// How the matched path prefix is changed before the request goes upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum Rewrite {
    Keep,
    /// Remove the prefix (keeping a leading `/`).
    Strip,
    /// Replace the prefix with this one.
    Replace(Arc<str>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RouteOrigin {
    /// `routes[i]` in the file.
    Configured(usize),
    /// One of the built-in defaults used when `routes` is absent.
    Default,
    /// The implicit final route to `[upstream]`.
    Fallback,
}

/// A host match: exact name or a `*.` wildcard suffix, lower-case, no port.
#[derive(Debug, Clone, PartialEq)]
pub enum HostPattern {
    Exact(Arc<str>),
    /// Matches any name ending in `.{suffix}` (one or more labels).
    Wildcard(Arc<str>),
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
            HostPattern::Wildcard(suffix) => {
                host.len() > suffix.len() + 1
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

/// An HTTP(S) upstream and how to talk to it.
#[derive(Debug, Clone)]
pub struct ProxyTarget {
    /// The URL as written, for messages.
    pub url: Arc<str>,
    pub scheme: Scheme,
    pub authority: Authority,
    pub connect_timeout: Duration,
    /// Time allowed for the upstream's response head.
    pub response_timeout: Duration,
    /// Whether WebSocket upgrades are passed through.
    pub websocket: bool,
    /// Close a WebSocket tunnel after this long with no traffic either way.
    pub websocket_idle_timeout: Option<Duration>,
    pub host_header: HostHeader,
    /// Request-body limit in bytes.
    pub max_body: u64,
}

/// php-fpm (or any FastCGI responder) and the document root it runs.
#[derive(Debug, Clone)]
pub struct FastCgiTarget {
    /// The URL as written, for messages (`fastcgi://127.0.0.1:9000`).
    pub url: Arc<str>,
    pub address: FastCgiAddress,
    pub site: Site,
    /// The front controller (`index.php`): the only script ever run.
    pub index: Arc<str>,
    pub connect_timeout: Duration,
    /// Time allowed for the response head; a streaming body is not cut.
    pub response_timeout: Duration,
    /// Request-body limit in bytes.
    pub max_body: u64,
    /// Connections to php-fpm held at once, idle ones included. php-fpm
    /// ties a worker to each kept-alive connection, so this should not
    /// exceed the pool's `pm.max_children`.
    pub max_connections: usize,
    /// Directories the app may hand files from with `X-Accel-Redirect` /
    /// `X-Sendfile` (Laravel's `BinaryFileResponse`); empty: off.
    pub downloads: Vec<PathBuf>,
}

/// Where a FastCGI responder listens.
#[derive(Debug, Clone, PartialEq)]
pub enum FastCgiAddress {
    /// `host:port` as written (resolved at connect time).
    Tcp(Arc<str>),
    /// A unix socket path.
    Unix(PathBuf),
}

impl std::fmt::Display for FastCgiAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FastCgiAddress::Tcp(a) => f.write_str(a),
            FastCgiAddress::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A document root as configured (checked to be a directory at load).
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub root: PathBuf,
    /// Entries directly under `root` whose symlink may leave it
    /// (`storage`, as `php artisan storage:link` makes).
    pub allow_symlinks: Vec<String>,
}

/// A plain file server: static files from `site.root`, nothing executed.
#[derive(Debug, Clone)]
pub struct FilesTarget {
    pub site: Site,
    /// Index file names tried for a directory, in order.
    pub index: Vec<Arc<str>>,
}

/// The `Host` sent upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum HostHeader {
    /// The client's `Host`, unchanged (Caddy's default; what Laravel expects).
    PassThrough,
    /// The upstream URL's authority (nginx's `$proxy_host`).
    Upstream,
    /// A fixed value, e.g. the Supabase Realtime tenant `realtime-dev`.
    Fixed(http::HeaderValue),
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `portico=debug`.
    pub level: Arc<str>,
    /// One line per request.
    pub access: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// Parses and validates `text`, naming `source` in errors. `${VAR}`
    /// references are looked up with `env`.
    pub fn from_str_with_env(
        text: &str,
        source: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = error::parse_raw(text, source)?;
        validate::validate(raw, &ctx::Ctx::new(text, source, env))
    }

    /// Parses `text` with the process environment.
    pub fn from_str(text: &str, source: &str) -> Result<Config, ConfigError> {
        Self::from_str_with_env(text, source, &|k| std::env::var(k).ok())
    }

    /// Reads and validates a file. Relative paths inside it (certificates,
    /// dev-cert dir, env files) are resolved against the current directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_str(&text, &path.display().to_string())
    }

    /// The embedded default configuration.
    pub fn embedded() -> Result<Config, ConfigError> {
        Self::from_str(EMBEDDED_DEFAULT, EMBEDDED_NAME)
    }

    /// A printable summary for `portico check` and the banner (no secrets).
    pub fn effective(&self) -> Effective<'_> {
        Effective(self)
    }
}
