//! Where a request goes ([`dispatch`]: health, ACME, redirect or a route)
//! and route matching: (host, path) → the first matching [`Route`]. Pure.
//!
//! A route matches when its host pattern (if any) matches the request host
//! without port, and the path starts with the route's prefix. A prefix ending
//! in `/` also matches the same path without the slash (`/app` → `/app/`).

use std::sync::Arc;

use super::stack::Runtime;
use crate::config::{Config, Route, Target};
use crate::http::ListenerKind;
use std::borrow::Cow;

/// The index of the first route that matches. A validated config ends with
/// a catch-all, so for `config.routes` this is always `Some`.
pub fn find(routes: &[Route], host: Option<&str>, path: &str) -> Option<usize> {
    routes.iter().position(|r| {
        let host_ok = match (&r.host, host) {
            (None, _) => true,
            (Some(p), Some(h)) => p.matches(h),
            (Some(_), None) => false,
        };
        host_ok && path_matches(&r.path, path)
    })
}

fn path_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix)
        || prefix
            .strip_suffix('/')
            .is_some_and(|p| !p.is_empty() && path == p)
}

/// The host of a request without port, lower-cased, from the URI authority
/// (HTTP/2, absolute-form) or the `Host` header.
pub fn request_host<B>(req: &http::Request<B>) -> Option<Cow<'_, str>> {
    match req.uri().authority() {
        Some(a) => normalize(a.host()),
        None => host_from_header(req.headers().get(http::header::HOST)?.to_str().ok()?),
    }
}

/// The host named by a `Host` header value, without port, lower-cased.
pub fn host_from_header(value: &str) -> Option<Cow<'_, str>> {
    normalize(strip_port(value))
}

fn normalize(raw: &str) -> Option<Cow<'_, str>> {
    let host = raw.trim_end_matches('.');
    // Borrowed in the common case (already lower-case): no allocation per
    // request.
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        // [::1]:8443 → ::1
        return rest.split(']').next().unwrap_or("");
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => h,
    }
}

/// Where a request goes, from what the listener, host and path say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// The health endpoint.
    Health,
    /// An ACME HTTP-01 challenge on port 80 ([`acme_token`] has the token).
    Acme,
    /// Port 80 with https on: a redirect to this https port.
    Redirect(u16),
    /// The diagnostics page and its endpoints under `/.portico/`
    /// (`[diagnostics]` on), answered before routing.
    Diagnostics,
    /// The route at this index in `config.routes`.
    Route(usize),
}

/// Decides where a request goes. Shared by the hyper path and the
/// hand-written HTTP/1.1 path ([`super::h1`]), so both route alike.
pub fn dispatch(cfg: &Config, kind: ListenerKind, host: Option<&str>, path: &str) -> Dispatch {
    if path == &*cfg.server.health_path {
        return Dispatch::Health;
    }
    if kind == ListenerKind::Http {
        if acme_token(path).is_some() {
            return Dispatch::Acme;
        }
        if let Some(https) = cfg.server.https {
            return Dispatch::Redirect(https.port());
        }
    }
    // Before the routes, so a document root's dotfile rule never hides it.
    if cfg.diagnostics.enabled && is_diagnostics(path) {
        return Dispatch::Diagnostics;
    }
    // A validated config ends with a catch-all route.
    Dispatch::Route(find(&cfg.routes, host, path).unwrap_or(cfg.routes.len() - 1))
}

/// Whether `path` is the diagnostics page (`/.portico`, `/.portico/…`).
pub fn is_diagnostics(path: &str) -> bool {
    let prefix = crate::config::diagnostics::PATH;
    path.starts_with(prefix) || path == prefix.trim_end_matches('/')
}

/// The token of an ACME HTTP-01 challenge path.
pub fn acme_token(path: &str) -> Option<&str> {
    path.strip_prefix(super::redirect::ACME_CHALLENGE_PREFIX)
}

/// A routing decision made for one request, with the config generation it
/// was made on. The hand-written HTTP/1.1 path hands the decision for the
/// request it gives up to hyper along with the connection, so that request
/// is routed once, on one generation.
#[derive(Clone)]
pub struct Decision {
    pub rt: Arc<Runtime>,
    pub to: Dispatch,
}

impl Decision {
    /// Whether the request goes to a built-in hub front (Pusher, Supabase).
    pub fn is_hub(&self) -> bool {
        match self.to {
            Dispatch::Route(idx) => matches!(
                self.rt.config.routes[idx].target,
                Target::Pusher | Target::Supabase
            ),
            Dispatch::Health | Dispatch::Acme | Dispatch::Redirect(_) | Dispatch::Diagnostics => {
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::proxy::rewrite_path;

    fn route<'c>(c: &'c Config, host: Option<&str>, path: &str) -> &'c Route {
        &c.routes[find(&c.routes, host, path).unwrap()]
    }

    fn cfg(text: &str) -> Config {
        Config::from_str_with_env(text, "t.toml", &|_| None).unwrap()
    }

    fn name(r: &Route) -> String {
        r.target.label().to_string()
    }

    #[test]
    fn defaults() {
        let c = cfg("[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n");
        let table = [
            ("/app/key", "pusher"),
            ("/app", "pusher"),
            ("/apps/1/events", "pusher"),
            ("/application", "http://127.0.0.1:8000"),
            ("/realtime/v1/websocket", "supabase"),
            ("/", "http://127.0.0.1:8000"),
            ("/login", "http://127.0.0.1:8000"),
        ];
        for (path, want) in table {
            assert_eq!(name(route(&c, Some("x"), path)), want, "{path}");
        }
    }

    #[test]
    fn pusher_path_prefix_moves_default_routes() {
        let c = cfg(
            "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n[pusher]\npath_prefix = \"/ws\"\n[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n",
        );
        assert_eq!(name(route(&c, None, "/ws/app/k")), "pusher");
        assert_eq!(name(route(&c, None, "/ws/apps/1/events")), "pusher");
        assert_eq!(name(route(&c, None, "/app/k")), "http://127.0.0.1:8000");
    }

    #[test]
    fn first_match_wins_and_hosts_filter() {
        let c = cfg(r#"
[server]
plain = "127.0.0.1:0"
[tls]
mode = "off"
[[routes]]
path = "/api/"
host = "*.example.com"
to = "http://127.0.0.1:9001"
[[routes]]
path = "/api/"
to = "http://127.0.0.1:9002"
[[routes]]
path = "/"
host = "admin.test"
to = "http://127.0.0.1:9003"
"#);
        assert_eq!(
            name(route(&c, Some("a.example.com"), "/api/x")),
            "http://127.0.0.1:9001"
        );
        assert_eq!(
            name(route(&c, Some("example.com"), "/api/x")),
            "http://127.0.0.1:9002"
        );
        assert_eq!(name(route(&c, None, "/api/x")), "http://127.0.0.1:9002");
        assert_eq!(
            name(route(&c, Some("admin.test"), "/x")),
            "http://127.0.0.1:9003"
        );
        assert_eq!(
            name(route(&c, Some("other.test"), "/x")),
            "http://127.0.0.1:8000"
        );
    }

    #[test]
    fn rewrites() {
        let c = cfg(r#"
[server]
plain = "127.0.0.1:0"
[tls]
mode = "off"
[[routes]]
path = "/realtime/v1/"
to = "http://127.0.0.1:4000"
rewrite = "/socket/"
[[routes]]
path = "/svc/"
to = "http://127.0.0.1:4001"
strip_prefix = true
"#);
        let r = route(&c, None, "/realtime/v1/websocket");
        assert_eq!(
            rewrite_path(r, "/realtime/v1/websocket"),
            "/socket/websocket"
        );
        let r = route(&c, None, "/svc/a/b");
        assert_eq!(rewrite_path(r, "/svc/a/b"), "/a/b");
        assert_eq!(rewrite_path(r, "/svc"), "/");
    }

    #[test]
    fn host_parsing() {
        let req = |h: &str| {
            http::Request::builder()
                .uri("/")
                .header("host", h)
                .body(())
                .unwrap()
        };
        assert_eq!(
            request_host(&req("Example.COM:8443")).as_deref(),
            Some("example.com")
        );
        assert_eq!(request_host(&req("[::1]:8443")).as_deref(), Some("::1"));
        assert_eq!(
            request_host(&req("example.com.")).as_deref(),
            Some("example.com")
        );
    }
}
