//! FastCGI (php-fpm) targets and plain file servers: `fastcgi://` and
//! `fastcgi+unix://` URLs, the document `root`, the front controller
//! `index`, `allow_symlinks` and the connection bound.
//!
//! Owns: the rules for those keys in `[upstream]` and in routes. Receives:
//! the raw values ([`SiteOpts`]) from `routes`, the validated [`Server`]
//! (default body limit) and, for routes, the `[upstream]` FastCGI target to
//! inherit from. Hands on: [`FastCgiTarget`] and [`FilesTarget`], plain data;
//! the runtime (canonical root, connection pool) is built by the edge.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::ctx::{Ctx, SpStr};
use super::error::ConfigError;
use super::{FastCgiAddress, FastCgiTarget, FilesTarget, Server, Site};

/// php-fpm's own default `pm.max_children`: never more connections than
/// the stock pool has workers (each kept-alive connection holds one).
const DEFAULT_MAX_CONNECTIONS: usize = 5;

/// Whether a target URL names a FastCGI responder.
pub(super) fn is_fastcgi_url(text: &str) -> bool {
    text.starts_with("fastcgi://") || text.starts_with("fastcgi+unix://")
}

/// The keys of a FastCGI or file target, from `[upstream]` or a route.
pub(super) struct SiteOpts<'r> {
    pub(super) root: Option<&'r SpStr>,
    pub(super) index: Option<&'r SpStr>,
    pub(super) allow_symlinks: Option<&'r Vec<SpStr>>,
    pub(super) max_connections: Option<&'r Spanned<i64>>,
    pub(super) downloads: Option<&'r Vec<SpStr>>,
    pub(super) connect_timeout: Option<&'r SpStr>,
    pub(super) response_timeout: Option<&'r SpStr>,
    pub(super) max_body: Option<&'r SpStr>,
}

impl SiteOpts<'_> {
    /// The first site-only key that is set, for "not on an http upstream"
    /// errors.
    pub(super) fn first_set(&self) -> Option<(&'static str, std::ops::Range<usize>)> {
        if let Some(v) = self.root {
            return Some(("root", v.span()));
        }
        if let Some(v) = self.index {
            return Some(("index", v.span()));
        }
        if let Some(v) = self.allow_symlinks.and_then(|l| l.first()) {
            return Some(("allow_symlinks", v.span()));
        }
        if let Some(v) = self.downloads.and_then(|l| l.first()) {
            return Some(("downloads", v.span()));
        }
        self.max_connections.map(|v| ("max_connections", v.span()))
    }
}

/// Parses `fastcgi://host:port` or `fastcgi+unix:///path/to.sock`.
pub(super) fn address(text: &str) -> Result<FastCgiAddress, String> {
    if let Some(path) = text.strip_prefix("fastcgi+unix://") {
        if !path.starts_with('/') {
            return Err(format!("`{text}` does not name an absolute socket path"));
        }
        return Ok(FastCgiAddress::Unix(PathBuf::from(path)));
    }
    let rest = text
        .strip_prefix("fastcgi://")
        .ok_or_else(|| format!("`{text}` is not a fastcgi:// URL"))?;
    let auth: http::uri::Authority = rest
        .parse()
        .map_err(|_| format!("`{text}` is not host:port"))?;
    if auth.as_str() != rest || auth.port_u16().is_none() || auth.as_str().contains('@') {
        return Err(format!(
            "`{text}` must be fastcgi://host:port (a port, no path or user)"
        ));
    }
    Ok(FastCgiAddress::Tcp(Arc::from(rest)))
}

/// The document root: set, and an existing directory.
fn root(cx: &Ctx<'_>, key: &str, v: &SpStr) -> Result<PathBuf, ConfigError> {
    let path = cx.path(key, v)?;
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(path),
        Ok(_) => Err(cx.err(
            key,
            Some(v.span()),
            format!("`{}` is not a directory", path.display()),
            "point `root` at the app's public directory, e.g. \"/var/www/app/public\"",
        )),
        Err(e) => Err(cx.err(
            key,
            Some(v.span()),
            format!("`{}` cannot be read: {e}", path.display()),
            "point `root` at the app's public directory, e.g. \"/var/www/app/public\"",
        )),
    }
}

fn symlinks(cx: &Ctx<'_>, key: &str, list: &[SpStr]) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::with_capacity(list.len());
    for v in list {
        let name = cx.string(key, v)?;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(cx.err(
                key,
                Some(v.span()),
                format!("`{name}` is not the name of an entry directly under `root`"),
                "write names such as \"storage\" (what `php artisan storage:link` makes)",
            ));
        }
        out.push(name);
    }
    Ok(out)
}

/// A bare file name (no `/`), as `index` needs.
fn file_name(cx: &Ctx<'_>, key: &str, v: &SpStr, php: bool) -> Result<Arc<str>, ConfigError> {
    let name = cx.string(key, v)?;
    let bad = name.is_empty()
        || name.contains('/')
        || name.starts_with('.')
        || (php && !name.ends_with(".php"));
    if bad {
        let fix = if php {
            "write the front controller's file name, e.g. \"index.php\""
        } else {
            "write a file name, e.g. \"index.html\""
        };
        return Err(cx.err(
            key,
            Some(v.span()),
            format!("`{name}` is not a usable index file name"),
            fix,
        ));
    }
    Ok(Arc::from(name.as_str()))
}

/// A FastCGI target at `url`; `inherit` is `[upstream]`'s when it is one
/// (a route without `root` takes its root, index and timeouts).
#[allow(clippy::too_many_arguments)]
pub(super) fn fastcgi(
    cx: &Ctx<'_>,
    prefix: &str,
    url_key: &str,
    url: &SpStr,
    o: &SiteOpts<'_>,
    inherit: Option<&FastCgiTarget>,
    server: &Server,
    table_span: std::ops::Range<usize>,
) -> Result<FastCgiTarget, ConfigError> {
    let key = |k: &str| format!("{prefix}.{k}");
    let text = cx.string(url_key, url)?;
    let address = address(&text).map_err(|p| {
        cx.err(
            url_key,
            Some(url.span()),
            p,
            "write \"fastcgi://127.0.0.1:9000\" or \"fastcgi+unix:///run/php/php8.2-fpm.sock\"",
        )
    })?;
    let site = match (o.root, inherit) {
        (Some(v), _) => Site {
            root: root(cx, &key("root"), v)?,
            allow_symlinks: match o.allow_symlinks {
                Some(l) => symlinks(cx, &key("allow_symlinks"), l)?,
                None => Vec::new(),
            },
        },
        (None, Some(up)) => {
            let mut site = up.site.clone();
            if let Some(l) = o.allow_symlinks {
                site.allow_symlinks = symlinks(cx, &key("allow_symlinks"), l)?;
            }
            site
        }
        (None, None) => {
            return Err(cx.err(
                key("root"),
                Some(table_span),
                "a FastCGI target needs the document `root` php-fpm serves",
                "add e.g. `root = \"/var/www/app/public\"` (Laravel's public/ directory)",
            ));
        }
    };
    let index = match o.index {
        Some(v) => file_name(cx, &key("index"), v, true)?,
        None => inherit.map_or_else(|| Arc::from("index.php"), |u| u.index.clone()),
    };
    let connect_timeout = match o.connect_timeout {
        Some(v) => cx.duration_or(&key("connect_timeout"), Some(v), Duration::ZERO)?,
        None => inherit.map_or(Duration::from_secs(5), |u| u.connect_timeout),
    };
    let response_timeout = match o.response_timeout {
        Some(v) => cx.duration_or(&key("response_timeout"), Some(v), Duration::ZERO)?,
        None => inherit.map_or(Duration::from_secs(60), |u| u.response_timeout),
    };
    let max_body = match o.max_body {
        Some(v) => cx.size_or(&key("max_body"), Some(v), 0)?,
        None => inherit.map_or(server.max_body, |u| u.max_body),
    };
    let max_connections = match o.max_connections {
        Some(v) => cx.count(&key("max_connections"), Some(v), DEFAULT_MAX_CONNECTIONS)?,
        None => inherit.map_or(DEFAULT_MAX_CONNECTIONS, |u| u.max_connections),
    };
    let downloads = match o.downloads {
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for v in list {
                out.push(root(cx, &key("downloads"), v)?);
            }
            out
        }
        None => inherit.map_or_else(Vec::new, |u| u.downloads.clone()),
    };
    Ok(FastCgiTarget {
        url: Arc::from(text.as_str()),
        downloads,
        address,
        site,
        index,
        connect_timeout,
        response_timeout,
        max_body,
        max_connections,
    })
}

/// A plain file server (a route or `[upstream]` with `root` and no URL).
pub(super) fn files(
    cx: &Ctx<'_>,
    prefix: &str,
    o: &SiteOpts<'_>,
    root_v: &SpStr,
) -> Result<FilesTarget, ConfigError> {
    let key = |k: &str| format!("{prefix}.{k}");
    let not_here = [
        ("connect_timeout", o.connect_timeout.map(|v| v.span())),
        ("response_timeout", o.response_timeout.map(|v| v.span())),
        ("max_connections", o.max_connections.map(|v| v.span())),
        (
            "downloads",
            o.downloads.and_then(|l| l.first()).map(|v| v.span()),
        ),
    ];
    if let Some((name, Some(span))) = not_here.into_iter().find(|(_, s)| s.is_some()) {
        return Err(cx.err(
            key(name),
            Some(span),
            format!(
                "`{name}` only applies to targets that talk to an upstream; this one serves files"
            ),
            format!("remove `{name}`, or add `to = \"fastcgi://…\"` to run PHP"),
        ));
    }
    let site = Site {
        root: root(cx, &key("root"), root_v)?,
        allow_symlinks: match o.allow_symlinks {
            Some(l) => symlinks(cx, &key("allow_symlinks"), l)?,
            None => Vec::new(),
        },
    };
    let index = match o.index {
        Some(v) => vec![file_name(cx, &key("index"), v, false)?],
        None => vec![Arc::from("index.html")],
    };
    Ok(FilesTarget { site, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            address("fastcgi://127.0.0.1:9000"),
            Ok(FastCgiAddress::Tcp(Arc::from("127.0.0.1:9000")))
        );
        assert_eq!(
            address("fastcgi+unix:///run/php/fpm.sock"),
            Ok(FastCgiAddress::Unix(PathBuf::from("/run/php/fpm.sock")))
        );
        for bad in [
            "fastcgi://127.0.0.1",
            "fastcgi://127.0.0.1:9000/x",
            "fastcgi+unix://run/x.sock",
            "fastcgi://u@h:1",
        ] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }
}
