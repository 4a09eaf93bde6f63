//! The effective config as `portico check` prints it: listeners, TLS mode,
//! routes in match order, apps without secrets, supervised processes.

use std::fmt;

use super::*;

/// Display adapter returned by [`Config::effective`].
pub struct Effective<'a>(pub(super) &'a Config);

fn listener(a: Option<SocketAddr>) -> String {
    a.map_or_else(|| "off".to_string(), |a| a.to_string())
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self
            .host
            .as_ref()
            .map_or_else(|| "*".to_string(), |h| h.to_string());
        let to = match &self.target {
            Target::Proxy(p) => p.url.to_string(),
            Target::FastCgi(p) => format!("{} (php-fpm, root {})", p.url, p.site.root.display()),
            Target::Files(s) => format!("files from {}", s.site.root.display()),
            Target::Pusher => "pusher (built-in hub)".to_string(),
            Target::Supabase => "supabase (built-in hub)".to_string(),
        };
        write!(f, "{host}{} -> {to}", self.path)?;
        match &self.rewrite {
            Rewrite::Keep => {}
            Rewrite::Strip => write!(f, " (prefix stripped)")?,
            Rewrite::Replace(p) => write!(f, " (prefix -> {p})")?,
        }
        if let Target::Proxy(p) = &self.target {
            match &p.host_header {
                HostHeader::PassThrough => {}
                HostHeader::Upstream => write!(f, " [Host: upstream]")?,
                HostHeader::Fixed(h) => write!(f, " [Host: {}]", h.to_str().unwrap_or("?"))?,
            }
            if !p.websocket {
                write!(f, " [no websocket]")?;
            }
        }
        if let Some(name) = &self.wait_for {
            write!(f, " [waits for process {name}]")?;
        }
        match self.origin {
            RouteOrigin::Configured(i) => write!(f, "   (routes[{i}])"),
            RouteOrigin::Default => write!(f, "   (default)"),
            RouteOrigin::Fallback => write!(f, "   ([upstream])"),
        }
    }
}

impl fmt::Display for Effective<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        writeln!(f, "config: {}", c.source)?;
        writeln!(f, "listeners:")?;
        writeln!(f, "  https  {}", listener(c.server.https))?;
        writeln!(f, "  http   {}", listener(c.server.http))?;
        writeln!(f, "  plain  {}", listener(c.server.plain))?;
        let tls = match &c.tls {
            Tls::Off => "off".to_string(),
            Tls::Dev { dir, hosts } => {
                let extra = if hosts.is_empty() {
                    String::new()
                } else {
                    format!(", extra hosts {}", hosts.join(", "))
                };
                format!("dev (local CA in {}{extra})", dir.display())
            }
            Tls::Files { pairs, watch } => {
                let list: Vec<String> = pairs
                    .iter()
                    .map(|p| format!("{} + {}", p.cert.display(), p.key.display()))
                    .collect();
                format!(
                    "files ({}){}",
                    list.join("; "),
                    if *watch { ", watched" } else { "" }
                )
            }
            Tls::Acme(a) => format!(
                "acme ({} from {}, storage {}, challenges {})",
                a.domains.join(", "),
                a.directory,
                a.storage.display(),
                a.challenges
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(" then ")
            ),
        };
        writeln!(f, "tls: {tls}")?;
        match &c.admin {
            None => writeln!(
                f,
                "admin: off (set [admin] listen for /metrics and `portico status`)"
            )?,
            Some(a) => {
                writeln!(f, "admin: http://{}/metrics and /status", a.listen)?;
                if !a.is_loopback() {
                    writeln!(
                        f,
                        "  warning: `admin.listen` {} is not a loopback address; /metrics and /status have no authentication and name apps, routes and upstreams: prefer \"127.0.0.1:9180\"",
                        a.listen
                    )?;
                }
            }
        }
        let d = &c.diagnostics;
        match (d.enabled, &d.token) {
            (false, _) => writeln!(
                f,
                "diagnostics: off (set [diagnostics] enabled and token for /.portico/)"
            )?,
            (true, None) => writeln!(f, "diagnostics: /.portico/ (dev mode, no token)")?,
            (true, Some(_)) => writeln!(f, "diagnostics: /.portico/?token=<hidden>")?,
        }
        writeln!(f, "health: {}", c.server.health_path)?;
        writeln!(f, "routes (first match wins):")?;
        for (i, r) in c.routes.iter().enumerate() {
            writeln!(f, "  {}. {r}", i + 1)?;
            match &r.target {
                Target::FastCgi(p) => explain_fastcgi(f, p)?,
                Target::Files(s) => explain_files(f, s)?,
                Target::Proxy(_) | Target::Pusher | Target::Supabase => {}
            }
        }
        if c.apps.apps.is_empty() {
            writeln!(f, "apps: none")?;
        } else {
            writeln!(f, "apps:")?;
            for a in &c.apps.apps {
                writeln!(f, "  id={} key={} secret=<hidden>", a.id, a.key)?;
            }
        }
        if !c.processes.is_empty() {
            writeln!(f, "processes:")?;
            for p in &c.processes {
                let ready = p
                    .ready
                    .as_ref()
                    .map_or_else(|| "once started".to_string(), |r| r.to_string());
                writeln!(
                    f,
                    "  {}: {}{} (ready: {ready}; stop: SIG{} then SIGKILL after {})",
                    p.name,
                    p.command_line(),
                    p.cwd
                        .as_ref()
                        .map_or(String::new(), |d| format!(" in {}", d.display())),
                    p.stop_signal.name(),
                    humantime::format_duration(p.grace),
                )?;
            }
        }
        match &c.supabase {
            None => writeln!(f, "supabase: not configured")?,
            Some(s) => {
                writeln!(
                    f,
                    "supabase: {} jwt secret(s), {} jwks key(s), {} api key(s), {} rule(s){}{}{}",
                    s.jwt_secrets.len(),
                    s.jwks.as_ref().map_or(0, |j| j.len()),
                    s.api_keys.len(),
                    s.policy.rules.len(),
                    if s.private_only { ", private only" } else { "" },
                    s.upstream.as_ref().map_or(String::new(), |u| format!(
                        ", postgres_changes via {}",
                        u.url
                    )),
                    s.pusher_app
                        .as_ref()
                        .map_or(String::new(), |a| format!(", bridged to pusher app {a}")),
                )?;
                let l = &s.limits;
                writeln!(
                    f,
                    "  limits: {} channel(s)/socket, {} event(s)/s, {} presence call(s) per channel per {}, handshake errors after {}, join errors after {}",
                    l.max_channels_per_socket,
                    l.max_events_per_second,
                    l.max_presence_events_per_channel,
                    humantime::format_duration(l.presence_events_window),
                    humantime::format_duration(l.handshake_error_delay),
                    humantime::format_duration(l.join_error_delay),
                )?;
            }
        }
        match &c.cluster {
            None => writeln!(f, "cluster: off (one node)")?,
            Some(cl) => {
                writeln!(
                    f,
                    "cluster: redis {}, prefix \"{}\", lease {:?} renewed every {:?}, node id random at start (changing [cluster] needs a restart; a reload keeps the running settings)",
                    cl.redis_display(),
                    cl.prefix,
                    cl.lease,
                    cl.heartbeat
                )?;
                if cl.prefix_is_default {
                    writeln!(
                        f,
                        "  warning: `cluster.prefix` is the default \"{}\"; give every deployment that shares this Redis its own prefix, or they see each other's messages",
                        cl.prefix
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The real path of a root, or why it has none.
fn real_root(site: &Site) -> String {
    match std::fs::canonicalize(&site.root) {
        Ok(p) if p == site.root => p.display().to_string(),
        Ok(p) => format!("{} (real path {})", site.root.display(), p.display()),
        Err(e) => format!("{} (unreadable: {e})", site.root.display()),
    }
}

/// Symlinks directly under the root that leave it and are not allowed:
/// `portico check` suggests `allow_symlinks` for them.
fn escaping_links(site: &Site) -> Vec<String> {
    let Ok(real) = std::fs::canonicalize(&site.root) else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir(&real) else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let target = std::fs::canonicalize(e.path()).ok()?;
            (!target.starts_with(&real) && !site.allow_symlinks.contains(&name)).then_some(name)
        })
        .collect();
    out.sort();
    out
}

fn explain_site(f: &mut fmt::Formatter<'_>, site: &Site) -> fmt::Result {
    writeln!(f, "       root: {}", real_root(site))?;
    if !site.allow_symlinks.is_empty() {
        writeln!(
            f,
            "       symlinks allowed out of root: {}",
            site.allow_symlinks.join(", ")
        )?;
    }
    let links = escaping_links(site);
    if !links.is_empty() {
        let list: Vec<String> = links.iter().map(|l| format!("\"{l}\"")).collect();
        writeln!(
            f,
            "       hint: {} link(s) out of root and will get 403; if that is `php artisan storage:link`, add allow_symlinks = [{}]",
            links.join(", "),
            list.join(", ")
        )?;
    }
    Ok(())
}

fn explain_fastcgi(f: &mut fmt::Formatter<'_>, p: &FastCgiTarget) -> fmt::Result {
    explain_site(f, &p.site)?;
    writeln!(
        f,
        "       php-fpm at {}, runs only /{} (SCRIPT_FILENAME = real root + /{}), at most {} connection(s)",
        p.address, p.index, p.index, p.max_connections
    )?;
    writeln!(
        f,
        "       static: files that exist under root (not .php), directories with index.html; dotfiles 403 except /.well-known/; everything else -> /{}",
        p.index
    )
}

fn explain_files(f: &mut fmt::Formatter<'_>, s: &FilesTarget) -> fmt::Result {
    explain_site(f, &s.site)?;
    let index: Vec<&str> = s.index.iter().map(|i| &**i).collect();
    writeln!(
        f,
        "       static only: directory index {}; .php never served; dotfiles 403 except /.well-known/",
        index.join(", ")
    )
}
