//! `[upstream]` and `routes`: proxy targets and the ordered route table.
//!
//! Owns: the rules for upstream URLs and their options (timeouts, WebSocket
//! pass-through, `Host`, body limits, inherited from `[upstream]` by routes),
//! route paths, hosts, targets and rewrites, `wait_for`, and the default
//! routes used when `routes` is absent. Receives: the raw tables and the
//! validated [`Server`] (default body limit), [`Apps`] (Reverb's path
//! prefix) and processes (the names `wait_for` may use).
//! Hands on: `Config::upstream` and `Config::routes`, catch-all last.

use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;
use toml::Spanned;

use super::apps::Apps;
use super::ctx::{Ctx, SpStr};
use super::error::ConfigError;
use super::processes::ProcessSpec;
use super::raw::{RawConfig, RawRoute, RawUpstream};
use super::site::{self, SiteOpts};
use super::{HostHeader, HostPattern, ProxyTarget, Rewrite, Route, RouteOrigin, Server, Target};

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
    if text.starts_with("unix:") || text.starts_with("fastcgi") {
        return Err(cx.err(
            url_key,
            Some(url.span()),
            format!("`{text}` is not an upstream URL portico knows"),
            "write \"fastcgi://127.0.0.1:9000\" or \"fastcgi+unix:///run/php/php8.2-fpm.sock\" for php-fpm, or an http(s) URL",
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

pub(super) fn upstream(
    u: &RawUpstream,
    server: &Server,
    cx: &Ctx<'_>,
) -> Result<Target, ConfigError> {
    let site = SiteOpts {
        root: u.root.as_ref(),
        index: u.index.as_ref(),
        allow_symlinks: u.allow_symlinks.as_ref(),
        max_connections: u.max_connections.as_ref(),
        downloads: u.downloads.as_ref(),
        connect_timeout: u.connect_timeout.as_ref(),
        response_timeout: u.response_timeout.as_ref(),
        max_body: u.max_body.as_ref(),
    };
    let is_fastcgi = match &u.url {
        Some(url) => site::is_fastcgi_url(&cx.string("upstream.url", url)?),
        None => false,
    };
    if is_fastcgi || (u.url.is_none() && u.root.is_some()) {
        let http_only = [
            ("websocket_idle_timeout", u.websocket_idle_timeout.as_ref()),
            ("host_header", u.host_header.as_ref()),
        ];
        if let Some((name, v)) = http_only.iter().find_map(|(n, v)| v.map(|v| (n, v))) {
            return Err(cx.err(
                format!("upstream.{name}"),
                Some(v.span()),
                format!("`{name}` only applies to an http(s) upstream"),
                format!("remove `{name}`"),
            ));
        }
    }
    if let Some(url) = u.url.as_ref().filter(|_| is_fastcgi) {
        let t = site::fastcgi(
            cx,
            "upstream",
            "upstream.url",
            url,
            &site,
            None,
            server,
            url.span(),
        )?;
        return Ok(Target::FastCgi(Arc::new(t)));
    }
    if let (None, Some(root)) = (&u.url, &u.root) {
        return Ok(Target::Files(Arc::new(site::files(
            cx, "upstream", &site, root,
        )?)));
    }
    if let Some((name, span)) = site.first_set() {
        return Err(cx.err(
            format!("upstream.{name}"),
            Some(span),
            format!("`{name}` only applies to php-fpm (fastcgi://) upstreams and file servers"),
            "remove it, or set `url = \"fastcgi://127.0.0.1:9000\"` to run PHP from `root`",
        ));
    }
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
    proxy_target(cx, "upstream", "upstream.url", url, opts, None, server)
        .map(|p| Target::Proxy(Arc::new(p)))
}

pub(super) fn routes(
    raw: &RawConfig,
    upstream: &Target,
    server: &Server,
    apps: &Apps,
    processes: &[ProcessSpec],
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
                    wait_for: None,
                });
            }
        }
        Some(list) => {
            for (i, r) in list.get_ref().iter().enumerate() {
                let mut route = route(i, r.get_ref(), upstream, server, cx, r.span())?;
                let key = format!("routes[{i}].wait_for");
                let value = r.get_ref().wait_for.as_ref();
                route.wait_for = wait_for(key, value, &route.target, processes, cx)?;
                out.push(route);
            }
        }
    }
    out.push(Route {
        path: Arc::from("/"),
        host: None,
        target: upstream.clone(),
        rewrite: Rewrite::Keep,
        origin: RouteOrigin::Fallback,
        wait_for: wait_for(
            "upstream.wait_for".to_string(),
            raw.upstream.wait_for.as_ref(),
            upstream,
            processes,
            cx,
        )?,
    });
    Ok(out)
}

/// `routes[i].wait_for`: the name of a process, on a route that proxies
/// (to an HTTP upstream or to php-fpm).
fn wait_for(
    key: String,
    value: Option<&SpStr>,
    target: &Target,
    processes: &[ProcessSpec],
    cx: &Ctx<'_>,
) -> Result<Option<Arc<str>>, ConfigError> {
    let Some(v) = value else {
        return Ok(None);
    };
    if !matches!(target, Target::Proxy(_) | Target::FastCgi(_)) {
        return Err(cx.err(
            key,
            Some(v.span()),
            "`wait_for` only applies to routes that proxy to an upstream or php-fpm",
            "remove `wait_for` from this route",
        ));
    }
    let name = cx.string(&key, v)?;
    match processes.iter().find(|p| *p.name == *name) {
        Some(p) => Ok(Some(p.name.clone())),
        None => {
            let known: Vec<&str> = processes.iter().map(|p| &*p.name).collect();
            let fix = if known.is_empty() {
                "add a `[[processes]]` entry with this name, or remove `wait_for`".to_string()
            } else {
                format!("use one of: {}", known.join(", "))
            };
            Err(cx.err(
                key,
                Some(v.span()),
                format!("no process is named `{name}`"),
                fix,
            ))
        }
    }
}

fn route(
    i: usize,
    r: &RawRoute,
    upstream: &Target,
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
    let site_opts = SiteOpts {
        root: r.root.as_ref(),
        index: r.index.as_ref(),
        allow_symlinks: r.allow_symlinks.as_ref(),
        max_connections: r.max_connections.as_ref(),
        downloads: r.downloads.as_ref(),
        connect_timeout: r.connect_timeout.as_ref(),
        response_timeout: r.response_timeout.as_ref(),
        max_body: r.max_body.as_ref(),
    };
    let Some(to_v) = r.to.as_ref() else {
        let Some(root) = &r.root else {
            return Err(cx.err(
                k("to"),
                Some(path_v.span()),
                "every route needs a `to` (or a `root` to serve files from)",
                "add `to = \"http://host:port\"`, `to = \"fastcgi://127.0.0.1:9000\"`, `to = \"pusher\"`, `to = \"supabase\"` or `root = \"/var/www/app/public\"`",
            ));
        };
        http_only_keys(r, &k, cx, "a file server")?;
        let target = Target::Files(Arc::new(site::files(
            cx,
            &format!("routes[{i}]"),
            &site_opts,
            root,
        )?));
        return Ok(Route {
            path: Arc::from(path.as_str()),
            host,
            target,
            rewrite: route_rewrite(r, &k, cx)?,
            origin: RouteOrigin::Configured(i),
            wait_for: None,
        });
    };
    let to = cx.string(&k("to"), to_v)?;
    let rewrite = route_rewrite(r, &k, cx)?;
    let opts = ProxyOpts {
        connect_timeout: r.connect_timeout.as_ref(),
        response_timeout: r.response_timeout.as_ref(),
        websocket: r.websocket,
        websocket_idle_timeout: r.websocket_idle_timeout.as_ref(),
        host_header: r.host_header.as_ref(),
        max_body: r.max_body.as_ref(),
    };
    let up_proxy = match upstream {
        Target::Proxy(p) => Some(&**p),
        _ => None,
    };
    let up_fcgi = match upstream {
        Target::FastCgi(f) => Some(&**f),
        _ => None,
    };
    let is_fastcgi = site::is_fastcgi_url(&to) || (to == "upstream" && up_fcgi.is_some());
    let keeps_site_keys = is_fastcgi || (to == "upstream" && matches!(upstream, Target::Files(_)));
    if !keeps_site_keys && let Some((name, span)) = site_opts.first_set() {
        return Err(cx.err(
            k(name),
            Some(span),
            format!("`{name}` only applies to php-fpm (fastcgi://) routes and file servers"),
            format!("remove `{name}`, or drop `to` to serve files from `root`"),
        ));
    }
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
        _ if is_fastcgi => {
            http_only_keys(r, &k, cx, "php-fpm")?;
            let url = match up_fcgi {
                Some(f) if to == "upstream" => Spanned::new(to_v.span(), f.url.to_string()),
                _ => to_v.clone(),
            };
            Target::FastCgi(Arc::new(site::fastcgi(
                cx,
                &format!("routes[{i}]"),
                &k("to"),
                &url,
                &site_opts,
                up_fcgi,
                server,
                route_span,
            )?))
        }
        "upstream" => match upstream {
            Target::Proxy(up) => Target::Proxy(
                if r.connect_timeout.is_none()
                    && r.response_timeout.is_none()
                    && r.websocket.is_none()
                    && r.websocket_idle_timeout.is_none()
                    && r.host_header.is_none()
                    && r.max_body.is_none()
                {
                    up.clone()
                } else {
                    let url = Spanned::new(to_v.span(), up.url.to_string());
                    Arc::new(proxy_target(
                        cx,
                        &format!("routes[{i}]"),
                        &k("to"),
                        &url,
                        opts,
                        Some(up),
                        server,
                    )?)
                },
            ),
            other => {
                http_only_keys(r, &k, cx, "a file server")?;
                other.clone()
            }
        },
        _ if to.contains("://") => Target::Proxy(Arc::new(proxy_target(
            cx,
            &format!("routes[{i}]"),
            &k("to"),
            to_v,
            opts,
            up_proxy,
            server,
        )?)),
        other => {
            return Err(cx.err(k("to"), Some(to_v.span()), format!("unknown target `{other}`"), "use an upstream URL (\"http://127.0.0.1:9000\", \"fastcgi://127.0.0.1:9000\"), \"upstream\", \"pusher\" or \"supabase\""));
        }
    };
    Ok(Route {
        path: Arc::from(path.as_str()),
        host,
        target,
        rewrite,
        origin: RouteOrigin::Configured(i),
        wait_for: None,
    })
}

fn route_rewrite(
    r: &RawRoute,
    k: &dyn Fn(&str) -> String,
    cx: &Ctx<'_>,
) -> Result<Rewrite, ConfigError> {
    Ok(match (r.strip_prefix.unwrap_or(false), &r.rewrite) {
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
    })
}

/// Refuses the keys that only mean something for an http(s) upstream on a
/// route whose target is `what`.
fn http_only_keys(
    r: &RawRoute,
    k: &dyn Fn(&str) -> String,
    cx: &Ctx<'_>,
    what: &str,
) -> Result<(), ConfigError> {
    let http_only = [
        ("websocket_idle_timeout", r.websocket_idle_timeout.as_ref()),
        ("host_header", r.host_header.as_ref()),
    ];
    if let Some((name, v)) = http_only.iter().find_map(|(n, v)| v.map(|v| (n, v))) {
        return Err(cx.err(
            k(name),
            Some(v.span()),
            format!(
                "`{name}` only applies to routes that proxy to an http(s) upstream, not {what}"
            ),
            format!("remove `{name}` from this route"),
        ));
    }
    Ok(())
}
