//! Stage two: [`RawConfig`] to [`Config`]. Every rule lives in one place:
//! `[server]`, `[tls]` and `[log]` here, the others in their section module
//! (`routes`, `acme`, `apps`, `supabase`), called from [`validate`] in the
//! order their dependencies need (listeners before ACME, apps before routes
//! and `[supabase] pusher_app`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::ctx::{Ctx, SpStr};
use super::error::ConfigError;
use super::raw::RawConfig;
use super::{
    CertPair, Config, EMBEDDED_NAME, Log, LogFormat, Server, Tls, acme, admin, apps, cluster,
    diagnostics, processes, routes, supabase,
};

const DEFAULT_MAX_BODY: u64 = 64 << 20;

pub(crate) fn validate(raw: RawConfig, cx: &Ctx<'_>) -> Result<Config, ConfigError> {
    let mut server = server(&raw, cx)?;
    let mut tls = tls(&raw, cx)?;
    if !raw.server.present {
        default_listeners(&mut server, &tls);
    }
    if let Tls::Acme(a) = &mut tls {
        acme::check_listeners(a, server.https, server.http, &raw.tls, cx)?;
    }
    match (&tls, server.https) {
        (Tls::Off, Some(_)) => {
            return Err(cx.err(
                "tls.mode",
                raw.tls.mode.as_ref().map(|m| m.span()),
                "`mode = \"off\"` but `server.https` is set",
                "remove `server.https` (use `server.plain` behind a TLS-terminating platform) or pick a TLS mode",
            ));
        }
        (Tls::Dev { .. } | Tls::Files { .. } | Tls::Acme(_), None) => {} // allowed: certs unused
        _ => {}
    }
    if server.https.is_none() && server.http.is_none() && server.plain.is_none() {
        // Point at a listener key set to "" when there is one.
        let s = &raw.server;
        let near = [&s.https, &s.http, &s.plain]
            .into_iter()
            .find_map(|v| v.as_ref().map(|v| v.span()));
        return Err(cx.err(
            "server",
            near,
            "no listener is enabled",
            "set at least one of `server.https`, `server.http`, `server.plain`",
        ));
    }
    let upstream = routes::upstream(&raw.upstream, &server, cx)?;
    let apps = apps::validate(&raw.apps, raw.pusher.as_ref(), cx)?;
    let supabase = supabase::validate(raw.supabase.as_ref(), &apps, cx)?;
    let processes = processes::validate(&raw.processes, cx)?;
    let routes = routes::routes(&raw, &upstream, &server, &apps, &processes, cx)?;
    let log = log(&raw, cx)?;
    let cluster = cluster::validate(raw.cluster.as_ref(), cx)?;
    let admin = admin::validate(raw.admin.as_ref(), cx)?;
    let dev = matches!(tls, Tls::Dev { .. }) || cx.file() == EMBEDDED_NAME;
    let diagnostics = diagnostics::validate(raw.diagnostics.as_ref(), dev, cx)?;
    Ok(Config {
        source: Arc::from(cx.file()),
        server,
        tls,
        upstream,
        routes,
        log,
        apps,
        supabase,
        processes,
        cluster,
        admin,
        diagnostics,
    })
}

/// No `[server]` table (e.g. a file with just `[pusher] env_file`): the
/// embedded default's listeners, HTTPS on 127.0.0.1:8443 and HTTP on
/// 127.0.0.1:8080; with `tls.mode = "off"`, plain HTTP on 127.0.0.1:8080.
fn default_listeners(server: &mut Server, tls: &Tls) {
    let local = |port| Some(SocketAddr::from(([127, 0, 0, 1], port)));
    if matches!(tls, Tls::Off) {
        server.plain = local(8080);
    } else {
        server.https = local(8443);
        server.http = local(8080);
    }
}

fn addr(cx: &Ctx<'_>, key: &str, v: Option<&SpStr>) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    let s = cx.string(key, v)?;
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    // ":8080" means every interface, as in Caddy and Go.
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse().map(Some).map_err(|_| {
        cx.err(
            key,
            Some(v.span()),
            format!("`{s}` is not an IP address with a port"),
            "write \"127.0.0.1:8443\", \"0.0.0.0:443\", \"[::]:443\" or \":8080\"; an empty string disables the listener",
        )
    })
}

fn server(raw: &RawConfig, cx: &Ctx<'_>) -> Result<Server, ConfigError> {
    let s = &raw.server;
    let mut trusted = Vec::new();
    for (i, v) in s.trusted_proxies.iter().flatten().enumerate() {
        let key = format!("server.trusted_proxies[{i}]");
        let text = cx.string(&key, v)?;
        let net = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                cx.err(
                    &key,
                    Some(v.span()),
                    format!("`{text}` is not an IP address or CIDR"),
                    "write e.g. \"10.0.0.0/8\" or \"127.0.0.1\"",
                )
            })?;
        trusted.push(net);
    }
    let health = match &s.health_path {
        None => "/.portico/up".to_string(),
        Some(v) => {
            let p = cx.string("server.health_path", v)?;
            if !p.starts_with('/') {
                return Err(cx.err(
                    "server.health_path",
                    Some(v.span()),
                    "must start with `/`",
                    "write e.g. \"/.portico/up\"",
                ));
            }
            p
        }
    };
    Ok(Server {
        https: addr(cx, "server.https", s.https.as_ref())?,
        http: addr(cx, "server.http", s.http.as_ref())?,
        plain: addr(cx, "server.plain", s.plain.as_ref())?,
        trusted_proxies: trusted,
        max_connections: cx.count("server.max_connections", s.max_connections.as_ref(), 19_000)?,
        max_connections_per_ip: cx.count(
            "server.max_connections_per_ip",
            s.max_connections_per_ip.as_ref(),
            10_000,
        )?,
        handshake_timeout: cx.duration_or(
            "server.handshake_timeout",
            s.handshake_timeout.as_ref(),
            Duration::from_secs(10),
        )?,
        header_timeout: cx.duration_or(
            "server.header_timeout",
            s.header_timeout.as_ref(),
            Duration::from_secs(15),
        )?,
        grace_period: cx.duration_or(
            "server.grace_period",
            s.grace_period.as_ref(),
            Duration::from_secs(10),
        )?,
        shutdown_delay: match &s.shutdown_delay {
            None => Duration::ZERO,
            Some(v) => cx
                .duration("server.shutdown_delay", v)?
                .unwrap_or(Duration::ZERO),
        },
        max_body: cx.size_or("server.max_body", s.max_body.as_ref(), DEFAULT_MAX_BODY)?,
        max_request_target: request_target(cx, s.max_request_target.as_ref())?,
        health_path: Arc::from(health),
        http2: s.http2.unwrap_or(true),
        watch_config: s.watch_config.unwrap_or(true),
    })
}

/// `server.max_request_target`: 8 KiB by default, as nginx's
/// `large_client_header_buffers`; at most 64 KiB, the request-head limit.
fn request_target(cx: &Ctx<'_>, v: Option<&SpStr>) -> Result<usize, ConfigError> {
    const MIN: u64 = 256;
    const MAX: u64 = 64 * 1024;
    let n = cx.size_or("server.max_request_target", v, 8 * 1024)?;
    if !(MIN..=MAX).contains(&n) {
        return Err(cx.err(
            "server.max_request_target",
            v.map(|v| v.span()),
            format!("{n} bytes is outside {MIN}..={MAX}"),
            "write a size such as \"8KiB\" (at most \"64KiB\", the request-head limit)",
        ));
    }
    Ok(n as usize)
}

fn tls(raw: &RawConfig, cx: &Ctx<'_>) -> Result<Tls, ConfigError> {
    let t = &raw.tls;
    let mode = match &t.mode {
        None => "dev".to_string(),
        Some(m) => cx.string("tls.mode", m)?,
    };
    let mode_span = t.mode.as_ref().map(|m| m.span());
    let reject = |key: &str, span: std::ops::Range<usize>, why: &str| {
        Err(cx.err(
            key,
            Some(span),
            why.to_string(),
            format!("remove `{key}`, or change `tls.mode`"),
        ))
    };
    if mode != "files" {
        if let Some(v) = &t.cert {
            return reject(
                "tls.cert",
                v.span(),
                "only used when `tls.mode = \"files\"`",
            );
        }
        if let Some(v) = &t.key {
            return reject("tls.key", v.span(), "only used when `tls.mode = \"files\"`");
        }
    }
    if mode != "dev"
        && let Some(v) = &t.dir
    {
        return reject("tls.dir", v.span(), "only used when `tls.mode = \"dev\"`");
    }
    if mode != "acme"
        && let Some((key, span)) = t.acme_keys_set().into_iter().next()
    {
        return reject(key, span, "only used when `tls.mode = \"acme\"`");
    }
    match mode.as_str() {
        "off" => Ok(Tls::Off),
        "dev" => {
            let dir = match &t.dir {
                None => PathBuf::from("certs-dev"),
                Some(v) => cx.path("tls.dir", v)?,
            };
            let mut hosts = Vec::new();
            for (i, h) in t.hosts.iter().flatten().enumerate() {
                let key = format!("tls.hosts[{i}]");
                let name = cx.string(&key, h)?.trim().to_ascii_lowercase();
                let ok = !name.is_empty()
                    && (name.parse::<std::net::IpAddr>().is_ok()
                        || name.trim_start_matches("*.").split('.').all(|l| {
                            !l.is_empty()
                                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        }));
                if !ok {
                    return Err(cx.err(
                        &key,
                        Some(h.span()),
                        format!("`{name}` is not a host name or IP"),
                        "write e.g. \"myapp.test\" or \"192.168.1.20\"",
                    ));
                }
                hosts.push(name);
            }
            Ok(Tls::Dev { dir, hosts })
        }
        "files" => {
            let mut pairs = Vec::new();
            match (&t.cert, &t.key) {
                (Some(c), Some(k)) => pairs.push(CertPair {
                    cert: cx.path("tls.cert", c)?,
                    key: cx.path("tls.key", k)?,
                }),
                (Some(c), None) => {
                    return Err(cx.err(
                        "tls.key",
                        Some(c.span()),
                        "`tls.cert` is set but `tls.key` is missing",
                        "add `key = \"/path/to/privkey.pem\"`",
                    ));
                }
                (None, Some(k)) => {
                    return Err(cx.err(
                        "tls.cert",
                        Some(k.span()),
                        "`tls.key` is set but `tls.cert` is missing",
                        "add `cert = \"/path/to/fullchain.pem\"`",
                    ));
                }
                (None, None) => {}
            }
            for (i, p) in t.certificates.iter().flatten().enumerate() {
                pairs.push(CertPair {
                    cert: cx.path(&format!("tls.certificates[{i}].cert"), &p.cert)?,
                    key: cx.path(&format!("tls.certificates[{i}].key"), &p.key)?,
                });
            }
            if pairs.is_empty() {
                return Err(cx.err("tls.cert", mode_span, "`tls.mode = \"files\"` needs a certificate", "add `cert = \"fullchain.pem\"` and `key = \"privkey.pem\"` (or [[tls.certificates]] entries)"));
            }
            Ok(Tls::Files {
                pairs,
                watch: t.watch.unwrap_or(true),
            })
        }
        "acme" => Ok(Tls::Acme(acme::validate(t, mode_span, cx)?)),
        other => Err(cx.err(
            "tls.mode",
            mode_span,
            format!("unknown TLS mode `{other}`"),
            "use one of \"dev\", \"files\", \"acme\", \"off\"",
        )),
    }
}

fn log(raw: &RawConfig, cx: &Ctx<'_>) -> Result<Log, ConfigError> {
    let format = match &raw.log.format {
        None => LogFormat::Text,
        Some(v) => match cx.string("log.format", v)?.as_str() {
            "text" | "pretty" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(cx.err(
                    "log.format",
                    Some(v.span()),
                    format!("unknown log format `{other}`"),
                    "use \"text\" or \"json\"",
                ));
            }
        },
    };
    let level = match &raw.log.level {
        None => "info".to_string(),
        Some(v) => {
            let l = cx.string("log.level", v)?;
            if tracing_subscriber::EnvFilter::try_new(&l).is_err() {
                return Err(cx.err(
                    "log.level",
                    Some(v.span()),
                    format!("`{l}` is not a log filter"),
                    "use \"error\", \"warn\", \"info\", \"debug\" or e.g. \"portico=debug,info\"",
                ));
            }
            l
        }
    };
    Ok(Log {
        format,
        level: Arc::from(level.as_str()),
        access: raw.log.access.unwrap_or(true),
    })
}
