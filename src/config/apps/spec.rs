//! The validated `[[apps]]` and `[pusher]` data: plain values, no behaviour
//! beyond what the config itself means.
//!
//! Owns: [`AppSpec`] (one app's settings and their defaults), its parts
//! ([`RateLimit`], [`ApiRateLimit`], [`WebhookTarget`], [`WebhookKind`]),
//! [`PusherSettings`] and the whole [`Apps`]. Receives: values checked by
//! `entry` and `dotenv`. Hands on: [`Apps`] in `Config::apps`; the Pusher
//! front builds its runtime apps and settings from it.

use std::sync::Arc;
use std::time::Duration;

/// Which webhook events a target wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookKind {
    /// `channel_occupied`.
    ChannelOccupied,
    /// `channel_vacated`.
    ChannelVacated,
    /// `member_added`.
    MemberAdded,
    /// `member_removed`.
    MemberRemoved,
    /// `client_event`.
    ClientEvent,
    /// `cache_miss`.
    CacheMiss,
    /// `subscription_count`.
    SubscriptionCount,
}

impl WebhookKind {
    /// All kinds.
    pub const ALL: [WebhookKind; 7] = [
        WebhookKind::ChannelOccupied,
        WebhookKind::ChannelVacated,
        WebhookKind::MemberAdded,
        WebhookKind::MemberRemoved,
        WebhookKind::ClientEvent,
        WebhookKind::CacheMiss,
        WebhookKind::SubscriptionCount,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            WebhookKind::ChannelOccupied => "channel_occupied",
            WebhookKind::ChannelVacated => "channel_vacated",
            WebhookKind::MemberAdded => "member_added",
            WebhookKind::MemberRemoved => "member_removed",
            WebhookKind::ClientEvent => "client_event",
            WebhookKind::CacheMiss => "cache_miss",
            WebhookKind::SubscriptionCount => "subscription_count",
        }
    }

    /// Parses a wire name.
    pub fn from_name(s: &str) -> Option<WebhookKind> {
        WebhookKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One webhook endpoint (`[[apps.webhooks]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `http://` or `https://` URL.
    pub url: http::Uri,
    /// Events sent there; empty means all.
    pub events: Vec<WebhookKind>,
}

impl WebhookTarget {
    /// Whether this target wants `kind`.
    pub fn wants(&self, kind: WebhookKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

/// `[apps.rate_limit]`: a per-connection rate limit on client events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed per window.
    pub max: u32,
    /// The window.
    pub per: Duration,
    /// Close the socket (4301) instead of refusing the event.
    pub terminate: bool,
}

/// `[apps.api_rate_limit]`: REST API calls per app, counted in fixed
/// windows after the signature check; over it: 429 with a JSON error and
/// `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRateLimit {
    /// Calls allowed per window.
    pub max: u32,
    /// The window.
    pub per: Duration,
}

/// One validated `[[apps]]` entry (or the app of `[pusher] env_file`).
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
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
    /// Allowed `Origin` host globs, lower-case (`*`, `example.com`,
    /// `*.example.com`); `*` allows any (and a missing Origin).
    pub allowed_origins: Vec<Arc<str>>,
    /// Connection cap (4004).
    pub max_connections: Option<usize>,
    /// Largest inbound WebSocket message.
    pub max_message_size: usize,
    /// Largest `data` of a published or client event.
    pub max_event_size: usize,
    /// Told to clients in the handshake; also the server's ping interval
    /// unless `ping_interval` is set.
    pub activity_timeout: Duration,
    /// Server pings after this much client silence (`None`: after
    /// `activity_timeout`).
    pub ping_interval: Option<Duration>,
    /// Wait for any reply to a ping before closing with 4201.
    pub pong_timeout: Duration,
    /// Require `pusher:signin` within this time (4009), if set.
    pub user_authentication_timeout: Option<Duration>,
    /// Send watchlist online/offline events.
    pub watchlist: bool,
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

impl AppSpec {
    /// An app with default settings (the defaults documented in the config).
    pub fn new(id: &str, key: &str, secret: &str) -> AppSpec {
        AppSpec {
            id: Arc::from(id),
            key: Arc::from(key),
            secret: Arc::from(secret),
            enabled: true,
            client_events: false,
            allowed_origins: vec![Arc::from("*")],
            max_connections: None,
            max_message_size: 10_000,
            max_event_size: 10_240,
            activity_timeout: Duration::from_secs(120),
            ping_interval: None,
            pong_timeout: Duration::from_secs(30),
            user_authentication_timeout: None,
            watchlist: false,
            subscription_count: false,
            max_presence_members: 100,
            max_presence_user_info: 2048,
            max_subscriptions: None,
            max_queue_messages: 1000,
            max_queue_bytes: 4 << 20,
            client_event_rate: Some(RateLimit {
                max: 10,
                per: Duration::from_secs(1),
                terminate: false,
            }),
            api_rate_limit: None,
            cache_ttl: Duration::from_secs(1800),
            webhooks: Vec::new(),
        }
    }
}

/// `[pusher]`: settings of the Pusher front as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct PusherSettings {
    /// On shutdown, sockets are closed with 4200 spread evenly at random
    /// over this window.
    pub drain_spread: Duration,
    /// A path prefix in front of `/app` and `/apps` (Reverb's
    /// `REVERB_SERVER_PATH`), stripped before signatures are checked.
    pub path_prefix: Option<Arc<str>>,
}

impl Default for PusherSettings {
    fn default() -> Self {
        PusherSettings {
            drain_spread: Duration::from_secs(5),
            path_prefix: None,
        }
    }
}

/// Every configured app and the front-wide settings.
#[derive(Debug, Clone, Default)]
pub struct Apps {
    /// The apps, `[[apps]]` first, then the one from `env_file`.
    pub apps: Vec<Arc<AppSpec>>,
    /// `[pusher]`.
    pub front: PusherSettings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_kinds_round_trip() {
        for k in WebhookKind::ALL {
            assert_eq!(WebhookKind::from_name(k.name()), Some(k));
        }
        let t = WebhookTarget {
            url: http::Uri::from_static("http://x/"),
            events: vec![WebhookKind::MemberAdded],
        };
        assert!(t.wants(WebhookKind::MemberAdded));
        assert!(!t.wants(WebhookKind::ClientEvent));
    }
}
