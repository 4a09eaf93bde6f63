//! Pusher protocol 7 wire codec: pure, no I/O.
//!
//! Owns: the shapes of every client frame and server message, the
//! handshake's `protocol` query rule, and the one mapping from
//! [`SessionError`] to a Pusher code and action ([`SessionError::action`]).
//! Receives: inbound text frames as bytes, and typed values to encode.
//! Hands on: [`ClientMessage`]s or a typed [`ParseError`], and outbound
//! [`Frame`]s serialised once (each encoder returns a ready `Frame`).
//!
//! Subscription failures are sent as
//! `{"event":"pusher:subscription_error","channel":c,"data":{"type","error","status"}}`:
//! pusher-js routes it to the channel, which emits `pusher:subscription_error`
//! — the exact event laravel-echo's `.error()` and pusher-js's own
//! `bind('pusher:subscription_error')` listen to — and the socket stays open.

use serde_json::Value;
use serde_json::value::RawValue;

mod encode;
mod roundtrip;

pub use encode::*;
#[doc(hidden)]
pub use roundtrip::check_client_frame;

use super::auth::AuthError;
use super::channel::ChannelNameError;
use crate::ws::Frame;

/// A parsed client → server frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `pusher:subscribe`.
    Subscribe {
        /// Channel name (not yet validated).
        channel: String,
        /// `key:signature` for private/presence channels.
        auth: Option<String>,
        /// Presence `channel_data`, exactly as signed.
        channel_data: Option<String>,
    },
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// Channel name.
        channel: String,
    },
    /// `pusher:ping` (answer with `pusher:pong`).
    Ping,
    /// `pusher:pong` (answer to our `pusher:ping`).
    Pong,
    /// `pusher:signin`.
    Signin {
        /// `key:signature` over `socket_id::user::user_data`.
        auth: String,
        /// The user data JSON string, exactly as signed.
        user_data: String,
    },
    /// A `client-*` event.
    ClientEvent {
        /// Event name, starting with `client-`.
        event: String,
        /// Target channel.
        channel: String,
        /// The data's JSON text exactly as sent (a JSON string or any JSON
        /// value), relayed verbatim so no number loses digits.
        data: String,
    },
    /// Any other event; ignored.
    Other {
        /// Its name.
        event: String,
    },
}

/// Why a client frame could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a JSON object.
    #[error("message is not a JSON object")]
    NotJson,
    /// No string `event` field.
    #[error("message has no event name")]
    NoEvent,
    /// A required field is missing or has the wrong type.
    #[error("{event} requires a string {field}")]
    MissingField {
        /// The event.
        event: &'static str,
        /// The field.
        field: &'static str,
    },
}

#[derive(serde::Deserialize)]
struct Envelope {
    event: Option<Value>,
    channel: Option<Value>,
    data: Option<Box<RawValue>>,
}

/// `data` may be an object or a JSON-encoded string of one.
fn data_object(data: Option<&RawValue>) -> serde_json::Map<String, Value> {
    match data.and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok()) {
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => match serde_json::from_str(&s) {
            Ok(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        },
        _ => serde_json::Map::new(),
    }
}

fn take_str(
    m: &mut serde_json::Map<String, Value>,
    event: &'static str,
    field: &'static str,
) -> Result<String, ParseError> {
    opt_str(m, field).ok_or(ParseError::MissingField { event, field })
}

/// A string field; objects (some clients send `channel_data` unencoded) are
/// serialised.
fn opt_str(m: &mut serde_json::Map<String, Value>, field: &str) -> Option<String> {
    match m.remove(field)? {
        Value::String(s) => Some(s),
        Value::Null => None,
        v @ Value::Object(_) => Some(v.to_string()),
        _ => None,
    }
}

/// Parses one inbound text frame.
pub fn parse(frame: &[u8]) -> Result<ClientMessage, ParseError> {
    let env: Envelope = serde_json::from_slice(frame).map_err(|_| ParseError::NotJson)?;
    let Some(Value::String(event)) = env.event else {
        return Err(ParseError::NoEvent);
    };
    Ok(match event.as_str() {
        "pusher:subscribe" => {
            let mut d = data_object(env.data.as_deref());
            ClientMessage::Subscribe {
                channel: take_str(&mut d, "pusher:subscribe", "channel")?,
                auth: opt_str(&mut d, "auth"),
                channel_data: opt_str(&mut d, "channel_data"),
            }
        }
        "pusher:unsubscribe" => {
            let mut d = data_object(env.data.as_deref());
            ClientMessage::Unsubscribe {
                channel: take_str(&mut d, "pusher:unsubscribe", "channel")?,
            }
        }
        "pusher:ping" => ClientMessage::Ping,
        "pusher:pong" => ClientMessage::Pong,
        "pusher:signin" => {
            let mut d = data_object(env.data.as_deref());
            ClientMessage::Signin {
                auth: take_str(&mut d, "pusher:signin", "auth")?,
                user_data: take_str(&mut d, "pusher:signin", "user_data")?,
            }
        }
        e if e.starts_with("client-") => {
            let Some(Value::String(channel)) = env.channel else {
                return Err(ParseError::MissingField {
                    event: "client event",
                    field: "channel",
                });
            };
            ClientMessage::ClientEvent {
                event,
                channel,
                data: env
                    .data
                    .map_or_else(|| "null".to_owned(), |raw| Box::<str>::from(raw).into()),
            }
        }
        _ => ClientMessage::Other { event },
    })
}

/// A presence member parsed from `channel_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelData {
    /// `user_id`, stringified when it was a number.
    pub user_id: String,
    /// `user_info` re-serialised (`null` when absent).
    pub user_info: String,
}

/// Parses presence `channel_data`: an object with a non-empty string or
/// numeric `user_id` and optional `user_info`.
pub fn parse_channel_data(s: &str) -> Option<ChannelData> {
    let Value::Object(mut m) = serde_json::from_str(s).ok()? else {
        return None;
    };
    let user_id = user_id_of(m.remove("user_id")?)?;
    let user_info = m.remove("user_info").unwrap_or(Value::Null).to_string();
    Some(ChannelData { user_id, user_info })
}

fn user_id_of(v: Value) -> Option<String> {
    let id = match v {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!id.is_empty()).then_some(id)
}

/// The parts of sign-in `user_data` the server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    /// Non-empty string `id`.
    pub id: String,
    /// User ids to watch (`watchlist`), stringified.
    pub watchlist: Vec<String>,
}

/// Parses sign-in `user_data` (pusher-js requires a non-empty string `id`).
pub fn parse_user_data(s: &str) -> Option<UserData> {
    let Value::Object(mut m) = serde_json::from_str(s).ok()? else {
        return None;
    };
    let Value::String(id) = m.remove("id")? else {
        return None;
    };
    if id.is_empty() {
        return None;
    }
    let watchlist = match m.remove("watchlist") {
        Some(Value::Array(v)) => v.into_iter().filter_map(user_id_of).collect(),
        _ => Vec::new(),
    };
    Some(UserData { id, watchlist })
}

/// Why the `protocol` query of the handshake was refused.
pub fn check_protocol(protocol: Option<&str>) -> Result<u8, SessionError> {
    let p = protocol.ok_or(SessionError::NoProtocol)?;
    let v: u8 = p.parse().map_err(|_| SessionError::InvalidVersionFormat)?;
    if (5..=7).contains(&v) {
        Ok(v)
    } else {
        Err(SessionError::UnsupportedProtocol { version: v })
    }
}

/// Every error a Pusher session can hit. [`SessionError::action`] is the one
/// place that decides the wire code and whether the socket stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No app with that key.
    #[error("Application does not exist")]
    AppNotFound,
    /// The app is disabled.
    #[error("Application is disabled")]
    AppDisabled,
    /// The app has its maximum number of connections.
    #[error("Application is over connection quota")]
    OverQuota,
    /// Not `/app/{key}`.
    #[error("Path not found")]
    PathNotFound,
    /// `protocol` is not a number.
    #[error("Invalid version string format")]
    InvalidVersionFormat,
    /// A protocol version we do not speak.
    #[error("Unsupported protocol version {version}")]
    UnsupportedProtocol {
        /// The version asked for.
        version: u8,
    },
    /// No `protocol` query parameter.
    #[error("No protocol version supplied")]
    NoProtocol,
    /// The `Origin` is not on the app's allow-list.
    #[error("Origin not allowed")]
    OriginNotAllowed,
    /// User authentication is required and did not happen in time.
    #[error("Connection not authorized within timeout")]
    SigninTimeout,
    /// The outbound queue overflowed.
    #[error("Slow consumer: too many unsent messages")]
    SlowConsumer,
    /// The server is shutting down; reconnect.
    #[error("Server is shutting down")]
    ShuttingDown,
    /// The socket's app was removed from the configuration (reload);
    /// reconnect (with a key the server still knows).
    #[error("App removed from the server's configuration")]
    AppRemoved,
    /// No pong within the grace period after our ping.
    #[error("Pong reply not received in time")]
    PongTimeout,
    /// The user was terminated through the REST API.
    #[error("Connection terminated")]
    Terminated,
    /// An inbound message exceeded `max_message_size`.
    #[error("Message too large ({size} > {max} bytes)")]
    MessageTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A WebSocket protocol violation.
    #[error("WebSocket protocol error")]
    WebSocketProtocol,
    /// A text message that is not valid UTF-8.
    #[error("Invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// A frame that is not a valid Pusher message.
    #[error("Invalid message format: {0}")]
    InvalidMessage(ParseError),
    /// Subscribe with an invalid channel name.
    #[error("Invalid channel name {channel:?}: {source}")]
    InvalidChannel {
        /// The name.
        channel: String,
        /// Which rule.
        source: ChannelNameError,
    },
    /// Subscribe auth failed.
    #[error("{source}")]
    SubscriptionAuth {
        /// The channel.
        channel: String,
        /// Why.
        source: AuthError,
    },
    /// Presence subscribe without usable `channel_data`.
    #[error("Invalid presence channel_data: a user_id is required")]
    InvalidChannelData {
        /// The channel.
        channel: String,
    },
    /// Presence `user_id` or `user_info` over the limit.
    #[error("Presence member too large: {what} is {size} bytes, the limit is {max}")]
    MemberTooLarge {
        /// The channel.
        channel: String,
        /// `user_id` or `user_info`.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The presence channel is full.
    #[error("Presence channel has its maximum of {max} members")]
    PresenceFull {
        /// The channel.
        channel: String,
        /// The limit.
        max: usize,
    },
    /// `#server-to-user-{id}` of another user, or before sign-in.
    #[error("Subscribing to another user's channel is not allowed")]
    NotYourUserChannel {
        /// The channel.
        channel: String,
    },
    /// The connection already has the maximum number of subscriptions.
    #[error("Too many subscriptions on this connection (limit {max})")]
    TooManySubscriptions {
        /// The channel.
        channel: String,
        /// The limit.
        max: usize,
    },
    /// Client events are not enabled for the app.
    #[error("To send client events, you must enable this feature for the app")]
    ClientEventsDisabled,
    /// Client events on a public or encrypted channel.
    #[error("Client events are only allowed on private and presence channels, not on {channel}")]
    ClientEventsNotAllowed {
        /// The channel.
        channel: String,
    },
    /// A client event on a channel the socket has not subscribed to.
    #[error("Client event rejected: not subscribed to {channel}")]
    NotSubscribed {
        /// The channel.
        channel: String,
    },
    /// A client event whose name or data is too large.
    #[error("Client event rejected: {what} is {size} bytes, the limit is {max}")]
    ClientEventTooLarge {
        /// `name` or `data`.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Over the client-event rate limit (socket kept open).
    #[error("Client event rejected: rate limit exceeded")]
    RateLimited,
    /// Over the rate limit with `terminate_on_limit` (socket closed).
    #[error("Rate limit exceeded")]
    RateLimitedTerminate,
    /// `pusher:signin` with a bad signature.
    #[error("Invalid signin: {0}")]
    SigninAuth(AuthError),
    /// `pusher:signin` whose `user_data` lacks a string `id`.
    #[error("Invalid signin: user_data must be JSON with a non-empty string id")]
    SigninUserData,
    /// The watchlist is longer than allowed.
    #[error("Watchlist has {size} users, the limit is {max}")]
    WatchlistTooLarge {
        /// Its length.
        size: usize,
        /// The limit.
        max: usize,
    },
}

impl SessionError {
    /// A short stable label for metrics (`portico_handshake_failures`,
    /// `portico_auth_failures`). One exhaustive match.
    pub fn reason(&self) -> &'static str {
        match self {
            SessionError::AppNotFound => "app_not_found",
            SessionError::AppDisabled => "app_disabled",
            SessionError::OverQuota => "over_quota",
            SessionError::PathNotFound => "path_not_found",
            SessionError::InvalidVersionFormat => "invalid_version",
            SessionError::UnsupportedProtocol { .. } => "unsupported_protocol",
            SessionError::NoProtocol => "no_protocol",
            SessionError::OriginNotAllowed => "origin_not_allowed",
            SessionError::SigninTimeout => "signin_timeout",
            SessionError::SlowConsumer => "slow_consumer",
            SessionError::ShuttingDown => "shutting_down",
            SessionError::AppRemoved => "app_removed",
            SessionError::PongTimeout => "pong_timeout",
            SessionError::Terminated => "terminated",
            SessionError::MessageTooLarge { .. } => "message_too_large",
            SessionError::WebSocketProtocol => "websocket_protocol",
            SessionError::InvalidUtf8 => "invalid_utf8",
            SessionError::InvalidMessage(_) => "invalid_message",
            SessionError::InvalidChannel { .. } => "invalid_channel",
            SessionError::SubscriptionAuth { source, .. } => source.reason(),
            SessionError::InvalidChannelData { .. } => "invalid_channel_data",
            SessionError::MemberTooLarge { .. } => "member_too_large",
            SessionError::PresenceFull { .. } => "presence_full",
            SessionError::NotYourUserChannel { .. } => "not_your_user_channel",
            SessionError::TooManySubscriptions { .. } => "too_many_subscriptions",
            SessionError::ClientEventsDisabled => "client_events_disabled",
            SessionError::ClientEventsNotAllowed { .. } => "client_events_not_allowed",
            SessionError::NotSubscribed { .. } => "not_subscribed",
            SessionError::ClientEventTooLarge { .. } => "client_event_too_large",
            SessionError::RateLimited => "rate_limited",
            SessionError::RateLimitedTerminate => "rate_limited",
            SessionError::SigninAuth(source) => source.reason(),
            SessionError::SigninUserData => "signin_user_data",
            SessionError::WatchlistTooLarge { .. } => "watchlist_too_large",
        }
    }

    /// Whether this is a failed signature check (channel auth or sign-in).
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            SessionError::SubscriptionAuth { .. } | SessionError::SigninAuth(_)
        )
    }
}

/// What the session does with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Close the socket with this WebSocket close code (reason = message).
    Close(u16),
    /// Send `pusher:error` with this code (`None` → `null`) and keep open.
    Error(Option<u16>),
    /// Send `pusher:subscription_error` with this `type` and HTTP-like
    /// `status` and keep open.
    SubscriptionError {
        /// `data.type`.
        kind: &'static str,
        /// `data.status`.
        status: u16,
    },
}

impl SessionError {
    /// The wire code and action. Exhaustive on purpose: a new error must
    /// pick its code here.
    pub fn action(&self) -> Action {
        use SessionError as E;
        match self {
            E::AppNotFound => Action::Close(4001),
            E::AppDisabled => Action::Close(4003),
            E::OverQuota => Action::Close(4004),
            E::PathNotFound => Action::Close(4005),
            E::InvalidVersionFormat => Action::Close(4006),
            E::UnsupportedProtocol { .. } => Action::Close(4007),
            E::NoProtocol => Action::Close(4008),
            E::OriginNotAllowed => Action::Close(4009),
            E::SigninTimeout => Action::Close(4009),
            E::SlowConsumer => Action::Close(4100),
            E::ShuttingDown | E::AppRemoved => Action::Close(4200),
            E::PongTimeout => Action::Close(4201),
            E::Terminated => Action::Close(4009),
            E::MessageTooLarge { .. } => Action::Close(1009),
            E::WebSocketProtocol => Action::Close(1002),
            E::InvalidUtf8 => Action::Close(1007),
            E::InvalidMessage(_) => Action::Error(Some(4200)),
            E::InvalidChannel { .. } => Action::SubscriptionError {
                kind: "InvalidChannel",
                status: 400,
            },
            E::SubscriptionAuth { .. } => Action::SubscriptionError {
                kind: "AuthError",
                status: 401,
            },
            E::InvalidChannelData { .. } => Action::SubscriptionError {
                kind: "AuthError",
                status: 400,
            },
            E::MemberTooLarge { .. } => Action::SubscriptionError {
                kind: "LimitReached",
                status: 413,
            },
            E::PresenceFull { .. } => Action::SubscriptionError {
                kind: "LimitReached",
                status: 403,
            },
            E::NotYourUserChannel { .. } => Action::SubscriptionError {
                kind: "AuthError",
                status: 403,
            },
            E::TooManySubscriptions { .. } => Action::SubscriptionError {
                kind: "LimitReached",
                status: 403,
            },
            E::ClientEventsDisabled => Action::Error(None),
            E::ClientEventsNotAllowed { .. } => Action::Error(None),
            E::NotSubscribed { .. } => Action::Error(None),
            E::ClientEventTooLarge { .. } => Action::Error(None),
            E::RateLimited => Action::Error(Some(4301)),
            E::RateLimitedTerminate => Action::Close(4301),
            E::SigninAuth(_) => Action::Error(Some(4009)),
            E::SigninUserData => Action::Error(Some(4009)),
            E::WatchlistTooLarge { .. } => Action::Error(Some(4302)),
        }
    }

    /// The channel a subscription error belongs to.
    pub fn channel(&self) -> Option<&str> {
        use SessionError as E;
        match self {
            E::InvalidChannel { channel, .. }
            | E::SubscriptionAuth { channel, .. }
            | E::InvalidChannelData { channel }
            | E::MemberTooLarge { channel, .. }
            | E::PresenceFull { channel, .. }
            | E::NotYourUserChannel { channel }
            | E::TooManySubscriptions { channel, .. }
            | E::ClientEventsNotAllowed { channel }
            | E::NotSubscribed { channel } => Some(channel),
            _ => None,
        }
    }

    /// The message a session sends for this error: `pusher:error` or
    /// `pusher:subscription_error`; `None` when the action is a close.
    pub fn to_frame(&self) -> Option<Frame> {
        match self.action() {
            Action::Close(_) => None,
            Action::Error(code) => Some(error(code, &self.to_string())),
            Action::SubscriptionError { kind, status } => Some(subscription_error(
                self.channel().unwrap_or_default(),
                kind,
                &self.to_string(),
                status,
            )),
        }
    }
}

#[cfg(test)]
mod tests;
