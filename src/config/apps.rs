//! `[[apps]]` and `[pusher]`: the Pusher/Reverb applications the hub serves.
//!
//! Owns: the accepted keys of both tables, their defaults and every rule
//! about them, and reading Laravel's `.env` (`[pusher] env_file`) for
//! `REVERB_APP_*`/`PUSHER_APP_*` and Reverb's knobs. Receives: the raw
//! tables from [`super::raw`]. Hands on: a validated [`Apps`] (plain
//! [`AppSpec`] data plus [`PusherSettings`]); the Pusher front builds its
//! runtime apps from it.
//!
//! Parts: `raw` (the tables as written), `entry` (one `[[apps]]` entry),
//! `dotenv` (`env_file`), `spec` (the validated data).
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

use std::sync::Arc;
use std::time::Duration;

use crate::config::ctx::{Ctx, SpStr};
use crate::config::error::ConfigError;

mod dotenv;
mod entry;
mod raw;
mod spec;

pub use dotenv::{app_from_env, parse_dotenv};
pub(crate) use raw::{RawApp, RawPusher};
pub use spec::{
    ApiRateLimit, AppSpec, Apps, PusherSettings, RateLimit, WebhookKind, WebhookTarget,
};

/// `[[apps]]` in order (ids and keys unique), `[pusher]`, then the app of
/// `env_file`.
pub(crate) fn validate(
    raw: &[RawApp],
    pusher: Option<&RawPusher>,
    cx: &Ctx<'_>,
) -> Result<Apps, ConfigError> {
    let mut apps: Vec<Arc<AppSpec>> = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        let app = entry::validate_app(
            a,
            &entry::V {
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
    let mut front = PusherSettings::default();
    let default_pusher = RawPusher::default();
    let p = pusher.unwrap_or(&default_pusher);
    let v = entry::V {
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
        dotenv::add_env_file(cx, file, &mut apps, &mut front)?;
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

#[cfg(test)]
mod tests;
