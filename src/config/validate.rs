//! Stage two: [`RawConfig`] to [`Config`]. Every rule lives here, once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;
use toml::Spanned;

use super::ctx::{Ctx, SpStr};
use super::raw::{RawConfig, RawRoute, RawUpstream};
use super::*;

const DEFAULT_MAX_BODY: u64 = 64 << 20;

pub(crate) fn validate(raw: RawConfig, cx: &Ctx<'_>) -> Result<Config, ConfigError> {
    let server = server(&raw, cx)?;
    let mut tls = tls(&raw, cx)?;
    if let Tls::Acme(a) = &mut tls {
        super::acme::check_listeners(a, server.https, server.http, &raw.tls, cx)?;
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
    let upstream = upstream(&raw.upstream, &server, cx)?;
    let apps = apps::validate(&raw.apps, raw.pusher.as_ref(), cx)?;
    let supabase = supabase::validate(raw.supabase.as_ref(), &apps, cx)?;
    let routes = routes(&raw, &upstream, &server, &apps, cx)?;
    let log = log(&raw, cx)?;
    Ok(Config {
        source: Arc::from(cx.file()),
        server,
        tls,
        upstream,
        routes,
        log,
        apps,
        supabase,
    })
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
        health_path: Arc::from(health),
        http2: s.http2.unwrap_or(true),
    })
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
        "acme" => Ok(Tls::Acme(super::acme::validate(t, mode_span, cx)?)),
        other => Err(cx.err(
            "tls.mode",
            mode_span,
            format!("unknown TLS mode `{other}`"),
            "use one of \"dev\", \"files\", \"acme\", \"off\"",
        )),
    }
}

/// The options a proxy target can carry, from `[upstream]` or a route.
struct ProxyOpts<'r> {
    connect_timeout: Option<&'r SpStr>,
    response_timeout: Option<&'r SpStr>,
    websocket: Option<bool>,
    websocket_idle_timeout: Option<&'r SpStr>,
    host_header: Option<&'r SpStr>,
    max_body: Option<&'r SpStr>,
}

fn proxy_target(
    cx: &Ctx<'_>,
    prefix: &str,
    url_key: &str,
    url: &SpStr,
    o: ProxyOpts<'_>,
    inherit: Option<&ProxyTarget>,
    server: &Server,
) -> Result<ProxyTarget, ConfigError> {
    let text = cx.string(url_key, url)?;
    let bad = |problem: String| {
        cx.err(
            url_key,
            Some(url.span()),
            problem,
            "write an upstream URL such as \"http://127.0.0.1:8000\"",
        )
    };
    if text.starts_with("fastcgi://") || text.starts_with("unix:") {
        return Err(cx.err(
            url_key,
            Some(url.span()),
            "FastCGI upstreams are not available in this build yet",
            "run `php artisan serve` or php-fpm behind an HTTP server and point at http://127.0.0.1:8000",
        ));
    }
    let uri: http::Uri = text
        .parse()
        .map_err(|_| bad(format!("`{text}` is not a URL")))?;
    let scheme = uri
        .scheme()
        .cloned()
        .ok_or_else(|| bad(format!("`{text}` has no scheme")))?;
    if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
        return Err(bad(format!("scheme `{scheme}` is not supported")));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| bad(format!("`{text}` has no host")))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(cx.err(
            url_key,
            Some(url.span()),
            format!("`{text}` has a path; upstream URLs are scheme://host:port only"),
            "drop the path and use the route's `rewrite = \"/new/prefix/\"` to change paths",
        ));
    }
    let key = |k: &str| format!("{prefix}.{k}");
    let connect_timeout = match o.connect_timeout {
        Some(v) => cx.duration_or(&key("connect_timeout"), Some(v), Duration::ZERO)?,
        None => inherit.map_or(Duration::from_secs(5), |p| p.connect_timeout),
    };
    let response_timeout = match o.response_timeout {
        Some(v) => cx.duration_or(&key("response_timeout"), Some(v), Duration::ZERO)?,
        None => inherit.map_or(Duration::from_secs(60), |p| p.response_timeout),
    };
    let websocket_idle_timeout = match o.websocket_idle_timeout {
        Some(v) => cx.duration(&key("websocket_idle_timeout"), v)?,
        None => inherit.and_then(|p| p.websocket_idle_timeout),
    };
    let host_header = match o.host_header {
        None => inherit.map_or(HostHeader::PassThrough, |p| p.host_header.clone()),
        Some(v) => {
            let s = cx.string(&key("host_header"), v)?;
            match s.as_str() {
                "" | "pass" | "passthrough" | "client" => HostHeader::PassThrough,
                "upstream" => HostHeader::Upstream,
                fixed => HostHeader::Fixed(http::HeaderValue::from_str(fixed).map_err(|_| {
                    cx.err(
                        key("host_header"),
                        Some(v.span()),
                        format!("`{fixed}` is not a valid Host value"),
                        "write \"pass\", \"upstream\" or a host name",
                    )
                })?),
            }
        }
    };
    let max_body = match o.max_body {
        Some(v) => cx.size_or(&key("max_body"), Some(v), 0)?,
        None => inherit.map_or(server.max_body, |p| p.max_body),
    };
    Ok(ProxyTarget {
        url: Arc::from(text.as_str()),
        scheme,
        authority,
        connect_timeout,
        response_timeout,
        websocket: o.websocket.or(inherit.map(|p| p.websocket)).unwrap_or(true),
        websocket_idle_timeout,
        host_header,
        max_body,
    })
}

fn upstream(
    u: &RawUpstream,
    server: &Server,
    cx: &Ctx<'_>,
) -> Result<Arc<ProxyTarget>, ConfigError> {
    let default_url = Spanned::new(0..0, "http://127.0.0.1:8000".to_string());
    let url = u.url.as_ref().unwrap_or(&default_url);
    let opts = ProxyOpts {
        connect_timeout: u.connect_timeout.as_ref(),
        response_timeout: u.response_timeout.as_ref(),
        websocket: u.websocket,
        websocket_idle_timeout: u.websocket_idle_timeout.as_ref(),
        host_header: u.host_header.as_ref(),
        max_body: u.max_body.as_ref(),
    };
    proxy_target(cx, "upstream", "upstream.url", url, opts, None, server).map(Arc::new)
}

fn routes(
    raw: &RawConfig,
    upstream: &Arc<ProxyTarget>,
    server: &Server,
    apps: &apps::Apps,
    cx: &Ctx<'_>,
) -> Result<Vec<Route>, ConfigError> {
    let mut out = Vec::new();
    match &raw.routes {
        None => {
            // Reverb's REVERB_SERVER_PATH (`[pusher] path_prefix`) moves the
            // Pusher endpoints under that prefix, as Reverb serves them.
            let pp = apps.front.path_prefix.as_deref().unwrap_or("");
            for (p, target) in [
                (format!("{pp}/app/"), Target::Pusher),
                (format!("{pp}/apps/"), Target::Pusher),
                ("/realtime/v1/".to_string(), Target::Supabase),
            ] {
                out.push(Route {
                    path: Arc::from(p.as_str()),
                    host: None,
                    target,
                    rewrite: Rewrite::Keep,
                    origin: RouteOrigin::Default,
                });
            }
        }
        Some(list) => {
            for (i, r) in list.get_ref().iter().enumerate() {
                out.push(route(i, r.get_ref(), upstream, server, cx, r.span())?);
            }
        }
    }
    out.push(Route {
        path: Arc::from("/"),
        host: None,
        target: Target::Proxy(upstream.clone()),
        rewrite: Rewrite::Keep,
        origin: RouteOrigin::Fallback,
    });
    Ok(out)
}

fn route(
    i: usize,
    r: &RawRoute,
    upstream: &Arc<ProxyTarget>,
    server: &Server,
    cx: &Ctx<'_>,
    route_span: std::ops::Range<usize>,
) -> Result<Route, ConfigError> {
    let k = |f: &str| format!("routes[{i}].{f}");
    let path_v = r.path.as_ref().ok_or_else(|| {
        cx.err(
            k("path"),
            Some(route_span.clone()),
            "every route needs a `path` prefix",
            "add e.g. `path = \"/api/\"`",
        )
    })?;
    let path = cx.string(&k("path"), path_v)?;
    if !path.starts_with('/') {
        return Err(cx.err(
            k("path"),
            Some(path_v.span()),
            format!("`{path}` does not start with `/`"),
            format!("write \"/{path}\""),
        ));
    }
    let host = match &r.host {
        None => None,
        Some(v) => {
            let h = cx.string(&k("host"), v)?.trim().to_ascii_lowercase();
            // Check before dropping the port: "https://x" would become "https".
            let has_scheme_or_path = h.contains('/');
            let h = h.split(':').next().unwrap_or("").to_string();
            if h.is_empty() || has_scheme_or_path {
                return Err(cx.err(
                    k("host"),
                    Some(v.span()),
                    "not a host name",
                    "write e.g. \"example.com\" or \"*.example.com\" (no scheme, no path)",
                ));
            }
            Some(match h.strip_prefix("*.") {
                Some(suffix) => HostPattern::Wildcard(Arc::from(suffix)),
                None => HostPattern::Exact(Arc::from(h.as_str())),
            })
        }
    };
    let to_v = r.to.as_ref().ok_or_else(|| {
        cx.err(
            k("to"),
            Some(path_v.span()),
            "every route needs a `to`",
            "add `to = \"http://host:port\"`, `to = \"pusher\"` or `to = \"supabase\"`",
        )
    })?;
    let to = cx.string(&k("to"), to_v)?;
    let rewrite = match (r.strip_prefix.unwrap_or(false), &r.rewrite) {
        (true, Some(v)) => {
            return Err(cx.err(
                k("rewrite"),
                Some(v.span()),
                "`strip_prefix` and `rewrite` both set",
                "keep one: `rewrite` replaces the prefix, `strip_prefix` removes it",
            ));
        }
        (true, None) => Rewrite::Strip,
        (false, Some(v)) => {
            let s = cx.string(&k("rewrite"), v)?;
            if !s.starts_with('/') {
                return Err(cx.err(
                    k("rewrite"),
                    Some(v.span()),
                    format!("`{s}` does not start with `/`"),
                    format!("write \"/{s}\""),
                ));
            }
            Rewrite::Replace(Arc::from(s.as_str()))
        }
        (false, None) => Rewrite::Keep,
    };
    let opts = ProxyOpts {
        connect_timeout: r.connect_timeout.as_ref(),
        response_timeout: r.response_timeout.as_ref(),
        websocket: r.websocket,
        websocket_idle_timeout: r.websocket_idle_timeout.as_ref(),
        host_header: r.host_header.as_ref(),
        max_body: r.max_body.as_ref(),
    };
    let target = match to.as_str() {
        "pusher" | "supabase" => {
            let proxy_only = [
                ("connect_timeout", r.connect_timeout.as_ref()),
                ("response_timeout", r.response_timeout.as_ref()),
                ("websocket_idle_timeout", r.websocket_idle_timeout.as_ref()),
                ("host_header", r.host_header.as_ref()),
                ("rewrite", r.rewrite.as_ref()),
            ];
            if let Some((name, v)) = proxy_only.iter().find_map(|(n, v)| v.map(|v| (n, v))) {
                return Err(cx.err(
                    k(name),
                    Some(v.span()),
                    format!("`{name}` only applies to routes that proxy to an http(s) upstream"),
                    format!("remove `{name}` from this route"),
                ));
            }
            if to == "pusher" {
                Target::Pusher
            } else {
                Target::Supabase
            }
        }
        "upstream" => Target::Proxy(
            if r.connect_timeout.is_none()
                && r.response_timeout.is_none()
                && r.websocket.is_none()
                && r.websocket_idle_timeout.is_none()
                && r.host_header.is_none()
                && r.max_body.is_none()
            {
                upstream.clone()
            } else {
                let url = Spanned::new(to_v.span(), upstream.url.to_string());
                Arc::new(proxy_target(
                    cx,
                    &format!("routes[{i}]"),
                    &k("to"),
                    &url,
                    opts,
                    Some(upstream),
                    server,
                )?)
            },
        ),
        _ if to.contains("://") => Target::Proxy(Arc::new(proxy_target(
            cx,
            &format!("routes[{i}]"),
            &k("to"),
            to_v,
            opts,
            Some(upstream),
            server,
        )?)),
        other => {
            return Err(cx.err(k("to"), Some(to_v.span()), format!("unknown target `{other}`"), "use an upstream URL (\"http://127.0.0.1:9000\"), \"upstream\", \"pusher\" or \"supabase\""));
        }
    };
    Ok(Route {
        path: Arc::from(path.as_str()),
        host,
        target,
        rewrite,
        origin: RouteOrigin::Configured(i),
    })
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
