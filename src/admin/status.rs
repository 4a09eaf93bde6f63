//! `GET /status`: what this portico is doing, as JSON, for `portico
//! status` and scripts.
//!
//! Owns: the [`Status`] document (serde both ways: the admin listener
//! writes it, `portico status` reads it back) and gathering it from the
//! edge: listeners, routes, certificates, apps with their live counts,
//! upstream reachability (one short connect per upstream, made while
//! answering), supervised processes and the cluster link.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::{Config, FastCgiAddress, Target, Tls};
use crate::edge::EdgeInner;
use crate::hub::AppHub;

/// How long one upstream connect probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The whole `/status` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    /// Where the running config came from.
    pub config: String,
    pub pid: u32,
    pub uptime_seconds: u64,
    /// Bound listeners: `https`, `http`, `plain`, `admin`.
    pub listeners: Vec<Listening>,
    /// `off`, `dev`, `files` or `acme`.
    pub tls: String,
    pub certificates: Vec<Certificate>,
    /// In match order.
    pub routes: Vec<RouteStatus>,
    pub apps: Vec<AppStatus>,
    pub upstreams: Vec<UpstreamStatus>,
    pub processes: Vec<ProcessInfo>,
    /// `None` when `[cluster]` is off.
    pub cluster: Option<ClusterStatus>,
}

/// A bound listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listening {
    pub name: String,
    pub addr: SocketAddr,
}

/// A certificate being served.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Certificate {
    /// DNS names and IP addresses it covers.
    pub names: Vec<String>,
    /// Where it came from (a file, or `acme:<domain>`).
    pub source: String,
    /// RFC 3339.
    pub not_after: String,
    /// Seconds until it expires (negative: expired).
    pub expires_in_seconds: i64,
}

/// One route.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteStatus {
    pub host: Option<String>,
    pub path: String,
    /// What serves it: an upstream URL, `pusher`, `supabase`, `files:<root>`.
    pub to: String,
}

/// One app of a built-in front, with its live counts on this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppStatus {
    /// `pusher` or `supabase`.
    pub protocol: String,
    /// The app id (`supabase` for the Supabase front).
    pub id: String,
    /// The public key (Pusher apps).
    pub key: Option<String>,
    pub connections: u64,
    /// Occupied channels.
    pub channels: u64,
    pub subscriptions: u64,
    /// Messages published into the app since start.
    pub messages_in: u64,
    /// Frames queued for subscribers since start.
    pub messages_out: u64,
    /// Frames dropped for full subscriber queues since start.
    pub fanout_drops: u64,
}

/// One upstream and whether it accepts connections now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamStatus {
    /// `http` or `fastcgi`.
    pub kind: String,
    pub url: String,
    /// The routes that use it.
    pub routes: Vec<String>,
    /// A connect succeeded within a second.
    pub reachable: bool,
    /// Why not, when not.
    pub error: Option<String>,
}

/// One supervised process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub name: String,
    pub pid: Option<u32>,
    pub running: bool,
    pub ready: bool,
    pub restarts: u64,
    /// How the previous run ended.
    pub last_exit: Option<String>,
}

/// This node's link to the cluster's Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node_id: String,
    /// The Redis URL without its password.
    pub redis: String,
    pub prefix: String,
    pub up: bool,
    pub published: u64,
    pub received: u64,
    pub dropped: u64,
    pub missed: u64,
    pub reconnects: u64,
    pub buffered: u64,
}

/// What the admin listener knows besides the edge.
#[derive(Debug, Clone)]
pub struct Context {
    pub listeners: Vec<Listening>,
    pub started: SystemTime,
}

/// The live counts of one hub namespace.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) connections: u64,
    pub(crate) channels: u64,
    pub(crate) subscriptions: u64,
    pub(crate) messages: crate::hub::MessageCounts,
}

pub(crate) fn counts(app: &AppHub) -> Counts {
    let channels = app.channels("");
    Counts {
        connections: app.connection_count() as u64,
        channels: channels.len() as u64,
        subscriptions: channels.iter().map(|c| c.subscription_count as u64).sum(),
        messages: app.message_counts(),
    }
}

/// `pusher` or `supabase` for a hub namespace, and the id to show.
pub(crate) fn protocol_of(hub_id: &str) -> (&'static str, &str) {
    if hub_id == crate::phoenix::NAMESPACE {
        ("supabase", "supabase")
    } else {
        ("pusher", hub_id)
    }
}

fn tls_mode(c: &Config) -> &'static str {
    match c.tls {
        Tls::Off => "off",
        Tls::Dev { .. } => "dev",
        Tls::Files { .. } => "files",
        Tls::Acme(_) => "acme",
    }
}

/// Gathers the document (probing every upstream once, concurrently).
pub async fn collect(edge: &EdgeInner, cx: &Context) -> Status {
    let rt = edge.runtime();
    let cfg = &rt.config;
    let now = SystemTime::now();
    let upstreams = probe_all(upstreams_of(cfg)).await;
    Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        config: cfg.source.to_string(),
        pid: std::process::id(),
        uptime_seconds: now.duration_since(cx.started).unwrap_or_default().as_secs(),
        listeners: cx.listeners.clone(),
        tls: tls_mode(cfg).to_string(),
        certificates: certificates(edge, now),
        routes: cfg
            .routes
            .iter()
            .map(|r| RouteStatus {
                host: r.host.as_ref().map(|h| h.to_string()),
                path: r.path.to_string(),
                to: r.target.label().to_string(),
            })
            .collect(),
        apps: apps(edge, cfg),
        upstreams,
        processes: edge
            .supervisor()
            .status()
            .into_iter()
            .map(|p| ProcessInfo {
                name: p.name.to_string(),
                pid: p.pid,
                running: p.running,
                ready: p.ready,
                restarts: p.restarts,
                last_exit: p.last_exit.map(|e| e.to_string()),
            })
            .collect(),
        cluster: edge.cluster().map(|c| {
            let s = c.stats();
            ClusterStatus {
                node_id: c.node_id().to_string(),
                redis: c.settings().redis_display(),
                prefix: c.settings().prefix.to_string(),
                up: s.up,
                published: s.published,
                received: s.received,
                dropped: s.dropped,
                missed: s.missed,
                reconnects: s.reconnects,
                buffered: s.buffered,
            }
        }),
    }
}

/// Every certificate served, soonest expiry first.
fn certificates(edge: &EdgeInner, now: SystemTime) -> Vec<Certificate> {
    let mut out: Vec<Certificate> = edge
        .tls()
        .certificates()
        .into_iter()
        .map(|c| {
            let mut names = c.dns_names.clone();
            names.extend(c.ip_addrs.iter().map(|ip| ip.to_string()));
            if names.is_empty()
                && let Some(cn) = &c.common_name
            {
                names.push(cn.clone());
            }
            Certificate {
                names,
                source: c.source.display().to_string(),
                not_after: humantime::format_rfc3339_seconds(c.not_after).to_string(),
                expires_in_seconds: seconds_between(now, c.not_after),
            }
        })
        .collect();
    out.sort_by_key(|c| c.expires_in_seconds);
    out
}

/// `to - from` in whole seconds, negative when `to` is earlier.
pub(crate) fn seconds_between(from: SystemTime, to: SystemTime) -> i64 {
    match to.duration_since(from) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// One app row: protocol, id to show, public key, and its hub namespace
/// when it was ever used.
pub(crate) struct AppRow {
    pub(crate) protocol: &'static str,
    pub(crate) id: String,
    pub(crate) key: Option<String>,
    pub(crate) hub: Option<Arc<AppHub>>,
}

/// The configured Pusher apps (with or without sockets), the Supabase
/// front when configured, and any other namespace of the hub that still
/// has sockets (an app removed by a reload).
pub(crate) fn app_rows(edge: &EdgeInner, cfg: &Config) -> Vec<AppRow> {
    let hub = edge.hub();
    let mut out: Vec<AppRow> = cfg
        .apps
        .apps
        .iter()
        .map(|a| AppRow {
            protocol: "pusher",
            id: a.id.to_string(),
            key: Some(a.key.to_string()),
            hub: hub.existing_app(&a.id),
        })
        .collect();
    let ns = crate::phoenix::NAMESPACE;
    if cfg.supabase.is_some() {
        out.push(AppRow {
            protocol: "supabase",
            id: "supabase".to_string(),
            key: None,
            hub: hub.existing_app(ns),
        });
    }
    for app in hub.apps() {
        let configured = if **app.id() == *ns {
            cfg.supabase.is_some()
        } else {
            cfg.apps.apps.iter().any(|a| *a.id == **app.id())
        };
        if !configured && app.connection_count() > 0 {
            let (protocol, id) = protocol_of(app.id());
            out.push(AppRow {
                protocol,
                id: id.to_string(),
                key: None,
                hub: Some(app),
            });
        }
    }
    out
}

fn apps(edge: &EdgeInner, cfg: &Config) -> Vec<AppStatus> {
    app_rows(edge, cfg)
        .into_iter()
        .map(|row| {
            let c = row.hub.as_deref().map(counts);
            AppStatus {
                protocol: row.protocol.to_string(),
                id: row.id,
                key: row.key,
                connections: c.as_ref().map_or(0, |c| c.connections),
                channels: c.as_ref().map_or(0, |c| c.channels),
                subscriptions: c.as_ref().map_or(0, |c| c.subscriptions),
                messages_in: c.as_ref().map_or(0, |c| c.messages.published),
                messages_out: c.as_ref().map_or(0, |c| c.messages.delivered),
                fanout_drops: c.as_ref().map_or(0, |c| c.messages.evicted),
            }
        })
        .collect()
}

/// Where an upstream listens, for the probe.
enum Addr {
    Tcp(String),
    Unix(std::path::PathBuf),
}

/// Each distinct upstream of the config with the routes using it.
fn upstreams_of(cfg: &Config) -> Vec<(UpstreamStatus, Addr)> {
    let mut by_url: BTreeMap<String, (UpstreamStatus, Addr)> = BTreeMap::new();
    for r in &cfg.routes {
        let (kind, url, addr) = match &r.target {
            Target::Proxy(p) => {
                let port = p.authority.port_u16().unwrap_or_else(|| {
                    if p.scheme == http::uri::Scheme::HTTPS {
                        443
                    } else {
                        80
                    }
                });
                let host = p
                    .authority
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let tcp = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                ("http", p.url.to_string(), Addr::Tcp(tcp))
            }
            Target::FastCgi(f) => {
                let addr = match &f.address {
                    FastCgiAddress::Tcp(a) => Addr::Tcp(a.to_string()),
                    FastCgiAddress::Unix(p) => Addr::Unix(p.clone()),
                };
                ("fastcgi", f.url.to_string(), addr)
            }
            Target::Files(_) | Target::Pusher | Target::Supabase => continue,
        };
        let entry = by_url.entry(url.clone()).or_insert_with(|| {
            (
                UpstreamStatus {
                    kind: kind.to_string(),
                    url,
                    routes: Vec::new(),
                    reachable: false,
                    error: None,
                },
                addr,
            )
        });
        entry.0.routes.push(r.path.to_string());
    }
    by_url.into_values().collect()
}

async fn probe_all(list: Vec<(UpstreamStatus, Addr)>) -> Vec<UpstreamStatus> {
    let probes = list.into_iter().map(|(mut u, addr)| async move {
        match tokio::time::timeout(PROBE_TIMEOUT, probe(&addr)).await {
            Ok(Ok(())) => u.reachable = true,
            Ok(Err(e)) => u.error = Some(e.to_string()),
            Err(_) => u.error = Some(format!("no connection within {PROBE_TIMEOUT:?}")),
        }
        u
    });
    futures_util::future::join_all(probes).await
}

async fn probe(addr: &Addr) -> std::io::Result<()> {
    match addr {
        Addr::Tcp(a) => tokio::net::TcpStream::connect(a.as_str()).await.map(drop),
        Addr::Unix(p) => tokio::net::UnixStream::connect(p).await.map(drop),
    }
}
