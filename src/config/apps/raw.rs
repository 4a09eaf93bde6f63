//! `[[apps]]` and `[pusher]` as written: serde mirrors of the tables, every
//! key name checked (unknown keys are refused), values still text.

use serde::Deserialize;
use toml::Spanned;

use crate::config::ctx::SpStr;

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
