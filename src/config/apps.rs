//! `[[apps]]` and `[pusher]`: the Pusher/Reverb applications the hub serves.
//!
//! Owns: the accepted keys of both tables, their defaults and every rule
//! about them, and reading Laravel's `.env` (`[pusher] env_file`) for
//! `REVERB_APP_*`/`PUSHER_APP_*` and Reverb's knobs. Receives: the raw
//! tables from [`super::raw`]. Hands on: a validated [`Apps`] (typed
//! [`App`] settings plus [`FrontSettings`]) to the Pusher front.
//!
//! ```toml
//! [[apps]]                       # one per Pusher/Reverb app; several allowed
//! id = "123"                     # required; REVERB_APP_ID
//! key = "abc"                    # required; REVERB_APP_KEY (in /app/{key})
//! secret = "${REVERB_APP_SECRET}"# required
//! enabled = true                 # false: connections refused with 4003
//! client_events = false          # relay client-* on private/presence channels
//! allowed_origins = ["*"]        # host globs: "example.com", "*.example.com"
//! max_connections = 1000         # unset: no cap; over it: 4004
//! max_message_size = "10000"     # inbound WebSocket message (1009 over it)
//! max_event_size = "10KiB"       # data of a published or client event (413)
//! activity_timeout = "120s"      # told to clients (they ping after it)
//! ping_interval = "60s"          # server pings after this client silence;
//!                                # unset: activity_timeout (REVERB_APP_PING_INTERVAL)
//! pong_timeout = "30s"           # then closes with 4201
//! user_authentication = false    # require pusher:signin ...
//! user_authentication_timeout = "30s"  # ... within this, else 4009
//! watchlist = false              # online/offline events for signed-in users
//! subscription_count = false     # pusher_internal:subscription_count
//! presence_max_members = 100
//! presence_max_user_info = "2KiB"
//! max_subscriptions = 100        # per connection; unset: no cap
//! max_queue_messages = 1000      # per socket, then 4100 (slow consumer)
//! max_queue_bytes = "4MiB"
//! cache_ttl = "30m"              # cache-* channels' last event
//! [apps.rate_limit]              # client events per connection (default 10/s)
//! max_events = 10
//! per = "1s"
//! terminate = false              # true: close with 4301 instead of an error
//! [apps.api_rate_limit]          # REST API calls per app (default: no limit)
//! max_requests = 100             # over it: 429 {"error":...} + Retry-After
//! per = "1s"
//! [[apps.webhooks]]
//! url = "http://127.0.0.1:8000/pusher/webhooks"
//! events = ["channel_occupied", "member_added"]   # empty/absent: all
//!
//! [pusher]
//! env_file = ".env"              # adds the app from REVERB_APP_*/PUSHER_APP_*
//! path_prefix = "/ws"            # REVERB_SERVER_PATH; stripped before signing
//! drain_spread = "5s"            # on shutdown, 4200 closes spread over this
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ctx::{Ctx, SpStr};
use super::error::ConfigError;
use super::units::{parse_duration_opt, parse_size};
pub use crate::pusher::FrontSettings;
pub use crate::pusher::app::App;
use crate::pusher::app::{ApiRateLimit, OriginPattern, RateLimit, WebhookKind, WebhookTarget};

/// One `[[apps]]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApp {
    pub(crate) id: Option<SpStr>,
    pub(crate) key: Option<SpStr>,
    pub(crate) secret: Option<SpStr>,
    pub(crate) enabled: Option<bool>,
    pub(crate) client_events: Option<bool>,
    pub(crate) allowed_origins: Option<Vec<SpStr>>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) max_message_size: Option<SpStr>,
    pub(crate) max_event_size: Option<SpStr>,
    pub(crate) activity_timeout: Option<SpStr>,
    pub(crate) ping_interval: Option<SpStr>,
    pub(crate) pong_timeout: Option<SpStr>,
    pub(crate) user_authentication: Option<bool>,
    pub(crate) user_authentication_timeout: Option<SpStr>,
    pub(crate) watchlist: Option<bool>,
    pub(crate) subscription_count: Option<bool>,
    pub(crate) presence_max_members: Option<Spanned<i64>>,
    pub(crate) presence_max_user_info: Option<SpStr>,
    pub(crate) max_subscriptions: Option<Spanned<i64>>,
    pub(crate) max_queue_messages: Option<Spanned<i64>>,
    pub(crate) max_queue_bytes: Option<SpStr>,
    pub(crate) cache_ttl: Option<SpStr>,
    pub(crate) rate_limit: Option<RawRateLimit>,
    pub(crate) api_rate_limit: Option<RawApiRateLimit>,
    pub(crate) webhooks: Option<Vec<RawWebhook>>,
}

/// `[apps.rate_limit]`: client events per connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub(crate) max_events: Option<Spanned<i64>>,
    pub(crate) per: Option<SpStr>,
    pub(crate) terminate: Option<bool>,
}

/// `[apps.api_rate_limit]`: REST API calls per app.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiRateLimit {
    pub(crate) max_requests: Option<Spanned<i64>>,
    pub(crate) per: Option<SpStr>,
}

/// `[[apps.webhooks]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    pub(crate) url: SpStr,
    pub(crate) events: Option<Vec<SpStr>>,
}

/// `[pusher]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPusher {
    pub(crate) env_file: Option<SpStr>,
    pub(crate) path_prefix: Option<SpStr>,
    pub(crate) drain_spread: Option<SpStr>,
}

/// Every configured app and the front-wide settings.
#[derive(Debug, Clone, Default)]
pub struct Apps {
    /// The apps, `[[apps]]` first, then the one from `env_file`.
    pub apps: Vec<Arc<App>>,
    /// `[pusher]`.
    pub front: FrontSettings,
}

const KEYGEN_FIX: &str = "run `portico keygen` for a fresh id/key/secret";

struct V<'c, 'a> {
    cx: &'c Ctx<'a>,
    at: String,
}

impl V<'_, '_> {
    fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.at)
    }

    fn duration(
        &self,
        name: &str,
        v: Option<&SpStr>,
        default: Option<Duration>,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let key = self.key(name);
        let s = self.cx.string(&key, v)?;
        parse_duration_opt(&s).map_err(|p| {
            self.cx.err(
                &key,
                Some(v.span()),
                p,
                "write a duration such as \"30s\" or \"2m\"",
            )
        })
    }

    fn required_duration(
        &self,
        name: &str,
        v: Option<&SpStr>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match self.duration(name, v, Some(default))? {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(self.cx.err(
                self.key(name),
                v.map(|v| v.span()),
                "cannot be turned off",
                "write a duration such as \"30s\"",
            )),
        }
    }

    fn size(&self, name: &str, v: Option<&SpStr>, default: usize) -> Result<usize, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let key = self.key(name);
        let s = self.cx.string(&key, v)?;
        let n = parse_size(&s).map_err(|p| {
            self.cx.err(
                &key,
                Some(v.span()),
                p,
                "write a size such as \"10KiB\" or \"10000\"",
            )
        })?;
        if n == 0 {
            return Err(self.cx.err(
                &key,
                Some(v.span()),
                "must be more than 0",
                "write a size such as \"10KiB\"",
            ));
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn count(&self, name: &str, v: Option<&Spanned<i64>>) -> Result<Option<usize>, ConfigError> {
        match v {
            None => Ok(None),
            Some(v) if *v.get_ref() >= 1 => {
                Ok(Some(usize::try_from(*v.get_ref()).unwrap_or(usize::MAX)))
            }
            Some(v) => Err(self.cx.err(
                self.key(name),
                Some(v.span()),
                "must be at least 1",
                "write a positive whole number, or leave the key out for no limit",
            )),
        }
    }
}

pub(crate) fn validate(
    raw: &[RawApp],
    pusher: Option<&RawPusher>,
    cx: &Ctx<'_>,
) -> Result<Apps, ConfigError> {
    let mut apps: Vec<Arc<App>> = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        let app = validate_app(
            a,
            &V {
                cx,
                at: format!("apps[{i}]"),
            },
        )?;
        if apps.iter().any(|o| o.id == app.id || o.key == app.key) {
            return Err(cx.err(
                format!("apps[{i}].key"),
                a.key.as_ref().map(|k| k.span()),
                "another app has the same id or key",
                "give every app its own id and key",
            ));
        }
        apps.push(Arc::new(app));
    }
    let mut front = FrontSettings::default();
    let default_pusher = RawPusher::default();
    let p = pusher.unwrap_or(&default_pusher);
    let v = V {
        cx,
        at: "pusher".into(),
    };
    if let Some(d) = v.duration(
        "drain_spread",
        p.drain_spread.as_ref(),
        Some(front.drain_spread),
    )? {
        front.drain_spread = d;
    } else {
        front.drain_spread = Duration::ZERO;
    }
    if let Some(pp) = &p.path_prefix {
        front.path_prefix = Some(prefix(cx, "pusher.path_prefix", pp)?);
    }
    if let Some(file) = &p.env_file {
        let path = cx.string("pusher.env_file", file)?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            cx.err(
                "pusher.env_file",
                Some(file.span()),
                format!("cannot read {path}: {e}"),
                "point env_file at your Laravel app's .env (relative to where portico runs)",
            )
        })?;
        let env = parse_dotenv(&text);
        let (app, server_path) = app_from_env(&env).map_err(|problem| {
            cx.err("pusher.env_file", Some(file.span()), format!("{path}: {problem}"), "set REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET (or PUSHER_APP_*) in that file")
        })?;
        if front.path_prefix.is_none()
            && let Some(sp) = server_path.filter(|s| !s.trim_matches('/').is_empty())
        {
            front.path_prefix = Some(Arc::from(format!("/{}", sp.trim_matches('/'))));
        }
        match apps.iter().find(|o| o.id == app.id || o.key == app.key) {
            Some(o) if o.id == app.id && o.key == app.key => {}
            Some(_) => {
                return Err(cx.err(
                    "pusher.env_file",
                    Some(file.span()),
                    format!(
                        "the app in {path} shares its id or key with an [[apps]] entry but differs"
                    ),
                    "remove the [[apps]] entry or make it match the .env values",
                ));
            }
            None => apps.push(Arc::new(app)),
        }
    }
    Ok(Apps { apps, front })
}

fn prefix(cx: &Ctx<'_>, key: &str, v: &SpStr) -> Result<Arc<str>, ConfigError> {
    let s = cx.string(key, v)?;
    if !s.starts_with('/') || s.contains(['?', '#', ' ']) {
        return Err(cx.err(
            key,
            Some(v.span()),
            format!("`{s}` is not a path prefix"),
            "write a path such as \"/ws\"",
        ));
    }
    Ok(Arc::from(s.trim_end_matches('/')))
}

fn validate_app(a: &RawApp, v: &V<'_, '_>) -> Result<App, ConfigError> {
    let cx = v.cx;
    let field = |name: &str, f: &Option<SpStr>| -> Result<String, ConfigError> {
        let key = v.key(name);
        let f = f.as_ref().ok_or_else(|| {
            // Point at a key of the same [[apps]] table.
            let near = [&a.id, &a.key, &a.secret]
                .into_iter()
                .find_map(|f| f.as_ref().map(|f| f.span()));
            cx.err(&key, near, format!("{} has no `{name}`", v.at), KEYGEN_FIX)
        })?;
        let s = cx.string(&key, f)?;
        if s.is_empty() {
            return Err(cx.err(&key, Some(f.span()), "is empty", KEYGEN_FIX));
        }
        if name != "secret" && s.contains(['/', '?', '#', ' ']) {
            return Err(cx.err(
                &key,
                Some(f.span()),
                "must not contain '/', '?', '#' or spaces",
                KEYGEN_FIX,
            ));
        }
        Ok(s)
    };
    let mut app = App::new(
        &field("id", &a.id)?,
        &field("key", &a.key)?,
        &field("secret", &a.secret)?,
    );
    app.enabled = a.enabled.unwrap_or(true);
    app.client_events = a.client_events.unwrap_or(app.client_events);
    if let Some(origins) = &a.allowed_origins {
        let mut out = Vec::new();
        for (j, o) in origins.iter().enumerate() {
            let key = v.key(&format!("allowed_origins[{j}]"));
            let s = cx.string(&key, o)?;
            if s.is_empty() || s.contains("://") || s.contains('/') {
                return Err(cx.err(
                    &key,
                    Some(o.span()),
                    format!("`{s}` is not a host pattern"),
                    "write a host or glob such as \"example.com\", \"*.example.com\" or \"*\" (no scheme, no path)",
                ));
            }
            out.push(OriginPattern(Arc::from(s.to_ascii_lowercase())));
        }
        app.allowed_origins = out;
    }
    app.max_connections = v.count("max_connections", a.max_connections.as_ref())?;
    app.max_message_size = v.size(
        "max_message_size",
        a.max_message_size.as_ref(),
        app.max_message_size,
    )?;
    app.max_event_size = v.size(
        "max_event_size",
        a.max_event_size.as_ref(),
        app.max_event_size,
    )?;
    app.activity_timeout = v.required_duration(
        "activity_timeout",
        a.activity_timeout.as_ref(),
        app.activity_timeout,
    )?;
    if a.ping_interval.is_some() {
        app.ping_interval = Some(v.required_duration(
            "ping_interval",
            a.ping_interval.as_ref(),
            app.activity_timeout,
        )?);
    }
    app.pong_timeout =
        v.required_duration("pong_timeout", a.pong_timeout.as_ref(), app.pong_timeout)?;
    if a.user_authentication.unwrap_or(false) {
        app.user_authentication_timeout = Some(v.required_duration(
            "user_authentication_timeout",
            a.user_authentication_timeout.as_ref(),
            Duration::from_secs(30),
        )?);
    }
    app.watchlist = a.watchlist.unwrap_or(false);
    app.subscription_count = a.subscription_count.unwrap_or(false);
    if let Some(n) = v.count("presence_max_members", a.presence_max_members.as_ref())? {
        app.max_presence_members = n;
    }
    app.max_presence_user_info = v.size(
        "presence_max_user_info",
        a.presence_max_user_info.as_ref(),
        app.max_presence_user_info,
    )?;
    app.max_subscriptions = v.count("max_subscriptions", a.max_subscriptions.as_ref())?;
    if let Some(n) = v.count("max_queue_messages", a.max_queue_messages.as_ref())? {
        app.max_queue_messages = n;
    }
    app.max_queue_bytes = v.size(
        "max_queue_bytes",
        a.max_queue_bytes.as_ref(),
        app.max_queue_bytes,
    )?;
    app.cache_ttl = v.required_duration("cache_ttl", a.cache_ttl.as_ref(), app.cache_ttl)?;
    if let Some(rl) = &a.rate_limit {
        let rv = V {
            cx,
            at: v.key("rate_limit"),
        };
        let max = rv
            .count("max_events", rl.max_events.as_ref())?
            .unwrap_or(10);
        let per = rv.required_duration("per", rl.per.as_ref(), Duration::from_secs(1))?;
        app.client_event_rate = Some(RateLimit {
            max: u32::try_from(max).unwrap_or(u32::MAX),
            per,
            terminate: rl.terminate.unwrap_or(false),
        });
    }
    if let Some(rl) = &a.api_rate_limit {
        let rv = V {
            cx,
            at: v.key("api_rate_limit"),
        };
        let max = rv
            .count("max_requests", rl.max_requests.as_ref())?
            .unwrap_or(100);
        let per = rv.required_duration("per", rl.per.as_ref(), Duration::from_secs(1))?;
        app.api_rate_limit = Some(ApiRateLimit {
            max: u32::try_from(max).unwrap_or(u32::MAX),
            per,
        });
    }
    for (j, w) in a.webhooks.iter().flatten().enumerate() {
        let wv = V {
            cx,
            at: v.key(&format!("webhooks[{j}]")),
        };
        let key = wv.key("url");
        let s = cx.string(&key, &w.url)?;
        let url: http::Uri = s
            .parse()
            .ok()
            .filter(|u: &http::Uri| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            })
            .ok_or_else(|| {
                cx.err(
                    &key,
                    Some(w.url.span()),
                    format!("`{s}` is not an http(s) URL"),
                    "write a URL such as \"http://127.0.0.1:8000/pusher/webhooks\"",
                )
            })?;
        let mut events = Vec::new();
        for (k, e) in w.events.iter().flatten().enumerate() {
            let ek = wv.key(&format!("events[{k}]"));
            let name = cx.string(&ek, e)?;
            let kind = WebhookKind::from_name(&name).ok_or_else(|| {
                let all: Vec<&str> = WebhookKind::ALL.iter().map(|k| k.name()).collect();
                cx.err(
                    &ek,
                    Some(e.span()),
                    format!("unknown webhook event `{name}`"),
                    format!("use one of {}", all.join(", ")),
                )
            })?;
            events.push(kind);
        }
        app.webhooks.push(WebhookTarget { url, events });
    }
    Ok(app)
}

/// Parses a Laravel `.env`: `KEY=value`, optional `export`, quotes, `#`
/// comments; `${VAR}` references to earlier keys are expanded.
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let value = if let Some(inner) = v
            .strip_prefix('"')
            .and_then(|r| r.rsplit_once('"'))
            .map(|(a, _)| a)
        {
            inner.replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(inner) = v
            .strip_prefix('\'')
            .and_then(|r| r.rsplit_once('\''))
            .map(|(a, _)| a)
        {
            inner.to_owned()
        } else {
            v.split(" #").next().unwrap_or("").trim().to_owned()
        };
        let value = expand_refs(&value, &out);
        out.insert(k.trim().to_owned(), value);
    }
    out
}

fn expand_refs(v: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find('}') {
            Some(j) => {
                let name = &rest[i + 2..i + 2 + j];
                out.push_str(env.get(name).map_or("", String::as_str));
                rest = &rest[i + 3 + j..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The app described by a Laravel `.env`, and `REVERB_SERVER_PATH`.
pub fn app_from_env(env: &HashMap<String, String>) -> Result<(App, Option<String>), String> {
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| env.get(*n).filter(|v| !v.is_empty()).cloned())
    };
    let id = get(&["REVERB_APP_ID", "PUSHER_APP_ID"])
        .ok_or("REVERB_APP_ID (or PUSHER_APP_ID) is not set")?;
    let key = get(&["REVERB_APP_KEY", "PUSHER_APP_KEY"])
        .ok_or("REVERB_APP_KEY (or PUSHER_APP_KEY) is not set")?;
    let secret = get(&["REVERB_APP_SECRET", "PUSHER_APP_SECRET"])
        .ok_or("REVERB_APP_SECRET (or PUSHER_APP_SECRET) is not set")?;
    let mut app = App::new(&id, &key, &secret);
    let secs = |name: &str| -> Result<Option<Duration>, String> {
        get(&[name])
            .map(|v| {
                v.parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| format!("{name}={v:?} is not a number of seconds"))
            })
            .transpose()
    };
    let num = |name: &str| -> Result<Option<usize>, String> {
        get(&[name])
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| format!("{name}={v:?} is not a number"))
            })
            .transpose()
    };
    if let Some(d) = secs("REVERB_APP_ACTIVITY_TIMEOUT")?.filter(|d| !d.is_zero()) {
        app.activity_timeout = d;
    }
    if let Some(d) = secs("REVERB_APP_PING_INTERVAL")?.filter(|d| !d.is_zero()) {
        app.ping_interval = Some(d);
    }
    if let Some(n) = num("REVERB_APP_MAX_MESSAGE_SIZE")?.filter(|n| *n > 0) {
        app.max_message_size = n;
    }
    app.max_connections = num("REVERB_APP_MAX_CONNECTIONS")?.filter(|n| *n > 0);
    if let Some(from) = get(&["REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM"]) {
        app.client_events = matches!(from.as_str(), "members" | "all");
    }
    if let Some(origins) = get(&["REVERB_APP_ALLOWED_ORIGINS"]) {
        app.allowed_origins = origins
            .split(',')
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(|o| OriginPattern(Arc::from(o.to_ascii_lowercase())))
            .collect();
    }
    Ok((app, get(&["REVERB_SERVER_PATH"])))
}

#[cfg(test)]
mod tests;
