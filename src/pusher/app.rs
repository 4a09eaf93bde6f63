//! Runtime settings of one Pusher app and the registry of all of them.
//!
//! Owns: the per-app settings the front consults on every connection and
//! request (credentials, limits, toggles, webhook targets), origin
//! matching, and the queue limits and credentials derived from them.
//! Receives: the validated [`AppSpec`] data of `config::apps`, each turned
//! into an [`App`] here ([`App::from`]). Hands on: lookups by key
//! (WebSocket) and by id (REST) from an immutable [`AppRegistry`] snapshot
//! that a reload swaps atomically.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::apps::AppSpec;
// The plain parts of an app's settings are config's data, used as they are.
pub use crate::config::apps::{ApiRateLimit, RateLimit, WebhookKind, WebhookTarget};

/// A host glob from `allowed_origins` (`*`, `example.com`, `*.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern(pub Arc<str>);

impl OriginPattern {
    /// Whether the Origin header value (`scheme://host[:port]`) matches.
    pub fn matches(&self, origin: &str) -> bool {
        if &*self.0 == "*" {
            return true;
        }
        let host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        let host = host.split('/').next().unwrap_or(host);
        let host = strip_port(host);
        glob(self.0.as_bytes(), host.to_ascii_lowercase().as_bytes())
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    host.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// `*` matches any run of bytes (like Laravel's `Str::is`).
fn glob(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s
            .split_first()
            .is_some_and(|(d, srest)| c.eq_ignore_ascii_case(d) && glob(rest, srest)),
    }
}

/// Longest accepted watchlist (not configurable).
const MAX_WATCHLIST: usize = 100;

/// One Pusher app.
#[derive(Debug, Clone)]
pub struct App {
    /// `app_id` in REST paths.
    pub id: Arc<str>,
    /// Public key in `/app/{key}`.
    pub key: Arc<str>,
    /// Shared secret.
    pub secret: Arc<str>,
    /// Disabled apps refuse connections with 4003.
    pub enabled: bool,
    /// Whether `client-*` events are relayed.
    pub client_events: bool,
    /// Allowed `Origin` hosts; `*` allows any (and a missing Origin).
    pub allowed_origins: Vec<OriginPattern>,
    /// Connection cap (4004).
    pub max_connections: Option<usize>,
    /// Largest inbound WebSocket message.
    pub max_message_size: usize,
    /// Largest `data` of a published or client event.
    pub max_event_size: usize,
    /// Sent to clients in the handshake: they ping after this much silence
    /// from the server. Also the server's ping interval unless
    /// [`App::ping_interval`] is set.
    pub activity_timeout: Duration,
    /// Reverb's `ping_interval`: the server pings a connection after this
    /// much silence from the client (`None`: after `activity_timeout`).
    pub ping_interval: Option<Duration>,
    /// Wait for any reply to a ping before closing with 4201.
    pub pong_timeout: Duration,
    /// Require `pusher:signin` within this time (4009), if set.
    pub user_authentication_timeout: Option<Duration>,
    /// Send watchlist online/offline events.
    pub watchlist: bool,
    /// Longest accepted watchlist.
    pub max_watchlist: usize,
    /// Send `pusher_internal:subscription_count` on non-presence channels.
    pub subscription_count: bool,
    /// Distinct members per presence channel.
    pub max_presence_members: usize,
    /// Bytes of one member's `user_info`.
    pub max_presence_user_info: usize,
    /// Channels one connection may hold.
    pub max_subscriptions: Option<usize>,
    /// Frames waiting for one slow socket before it is closed with 4100.
    pub max_queue_messages: usize,
    /// Bytes waiting for one slow socket before it is closed with 4100.
    pub max_queue_bytes: usize,
    /// Client-event rate limit per connection.
    pub client_event_rate: Option<RateLimit>,
    /// REST API rate limit of the app (none by default).
    pub api_rate_limit: Option<ApiRateLimit>,
    /// How long a cache channel keeps its last event.
    pub cache_ttl: Duration,
    /// Webhook endpoints.
    pub webhooks: Vec<WebhookTarget>,
}

impl App {
    /// An app with default settings (the defaults documented in the config).
    pub fn new(id: &str, key: &str, secret: &str) -> App {
        App::from(&AppSpec::new(id, key, secret))
    }

    /// How long a connection may stay silent before the server pings it.
    pub fn ping_after(&self) -> Duration {
        self.ping_interval.unwrap_or(self.activity_timeout)
    }

    /// Whether a handshake with this `Origin` header is allowed.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        if self.allowed_origins.iter().any(|p| &*p.0 == "*") {
            return true;
        }
        origin.is_some_and(|o| self.allowed_origins.iter().any(|p| p.matches(o)))
    }

    /// This app's per-socket outbound queue limits; overflow closes the
    /// socket with 4100 (pusher-js retries after a second).
    pub fn queue_limits(&self) -> crate::ws::QueueLimits {
        crate::ws::QueueLimits {
            max_messages: self.max_queue_messages,
            max_bytes: self.max_queue_bytes,
            slow_close: crate::ws::CloseSpec::new(4100, "Slow consumer: too many unsent messages"),
        }
    }

    /// The credentials for signature checks.
    pub fn creds(&self) -> super::auth::Credentials<'_> {
        super::auth::Credentials {
            key: &self.key,
            secret: &self.secret,
        }
    }
}

impl From<&AppSpec> for App {
    /// The runtime form of a validated config app.
    fn from(a: &AppSpec) -> App {
        App {
            id: a.id.clone(),
            key: a.key.clone(),
            secret: a.secret.clone(),
            enabled: a.enabled,
            client_events: a.client_events,
            allowed_origins: a
                .allowed_origins
                .iter()
                .map(|o| OriginPattern(o.clone()))
                .collect(),
            max_connections: a.max_connections,
            max_message_size: a.max_message_size,
            max_event_size: a.max_event_size,
            activity_timeout: a.activity_timeout,
            ping_interval: a.ping_interval,
            pong_timeout: a.pong_timeout,
            user_authentication_timeout: a.user_authentication_timeout,
            watchlist: a.watchlist,
            max_watchlist: MAX_WATCHLIST,
            subscription_count: a.subscription_count,
            max_presence_members: a.max_presence_members,
            max_presence_user_info: a.max_presence_user_info,
            max_subscriptions: a.max_subscriptions,
            max_queue_messages: a.max_queue_messages,
            max_queue_bytes: a.max_queue_bytes,
            client_event_rate: a.client_event_rate,
            api_rate_limit: a.api_rate_limit,
            cache_ttl: a.cache_ttl,
            webhooks: a.webhooks.clone(),
        }
    }
}

/// All apps, looked up by key and by id. Immutable; reloads swap a new one.
#[derive(Debug, Default)]
pub struct AppRegistry {
    by_key: HashMap<Arc<str>, Arc<App>>,
    by_id: HashMap<Arc<str>, Arc<App>>,
}

impl AppRegistry {
    /// Builds the registry (keys and ids are unique after validation; a
    /// duplicate here keeps the last).
    pub fn new(apps: impl IntoIterator<Item = App>) -> AppRegistry {
        let mut r = AppRegistry::default();
        for app in apps {
            let app = Arc::new(app);
            r.by_key.insert(app.key.clone(), app.clone());
            r.by_id.insert(app.id.clone(), app);
        }
        r
    }

    /// The app with public key `key`.
    pub fn by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.by_key.get(key)
    }

    /// The app with id `id`.
    pub fn by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.by_id.get(id)
    }

    /// Number of apps.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are no apps.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> OriginPattern {
        OriginPattern(Arc::from(s))
    }

    #[test]
    fn origin_globs() {
        assert!(p("*").matches("https://anything"));
        assert!(p("laravel.com").matches("https://laravel.com"));
        assert!(p("laravel.com").matches("https://laravel.com:8443"));
        assert!(p("laravel.com").matches("https://LARAVEL.com/path"));
        assert!(!p("laravel.com").matches("https://evil-laravel.com"));
        assert!(p("*.laravel.com").matches("https://www.laravel.com"));
        assert!(!p("*.laravel.com").matches("https://laravel.com"));
        assert!(p("localhost").matches("http://localhost:5173"));
        assert!(p("::1").matches("http://[::1]:80"));
    }

    #[test]
    fn origin_policy() {
        let mut app = App::new("1", "k", "s");
        assert!(app.origin_allowed(None));
        app.allowed_origins = vec![p("laravel.com")];
        assert!(!app.origin_allowed(None));
        assert!(!app.origin_allowed(Some("https://other.com")));
        assert!(app.origin_allowed(Some("https://laravel.com")));
    }

    #[test]
    fn registry_lookups() {
        let r = AppRegistry::new([App::new("1", "k1", "s"), App::new("2", "k2", "s")]);
        assert_eq!(r.by_key("k2").map(|a| &*a.id), Some("2"));
        assert_eq!(r.by_id("1").map(|a| &*a.key), Some("k1"));
        assert!(r.by_key("nope").is_none());
        assert_eq!(r.len(), 2);
    }
}
