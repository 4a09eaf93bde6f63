//! One `[[apps]]` entry: every key's rule, on top of [`AppSpec::new`]'s
//! defaults, and the value readers with the messages apps use.

use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::raw::RawApp;
use super::spec::{ApiRateLimit, AppSpec, RateLimit, WebhookKind, WebhookTarget};
use crate::config::ctx::{Ctx, SpStr};
use crate::config::error::ConfigError;
use crate::config::units::{parse_duration_opt, parse_size};

const KEYGEN_FIX: &str = "run `portico keygen` for a fresh id/key/secret";

/// A reader for the keys of one table (`apps[0]`, `pusher`, ...).
pub(super) struct V<'c, 'a> {
    pub(super) cx: &'c Ctx<'a>,
    pub(super) at: String,
}

impl V<'_, '_> {
    pub(super) fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.at)
    }

    pub(super) fn duration(
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

/// One `[[apps]]` entry, checked key by key on top of the defaults.
pub(super) fn validate_app(a: &RawApp, v: &V<'_, '_>) -> Result<AppSpec, ConfigError> {
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
    let mut app = AppSpec::new(
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
            out.push(Arc::from(s.to_ascii_lowercase()));
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
