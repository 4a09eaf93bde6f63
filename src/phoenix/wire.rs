//! Wire codes of the Supabase Realtime front, each from one exhaustive match.
//!
//! Owns: reply statuses, the reasons of refused joins (Supabase's wording, so
//! people can search for them), how a channel ends (`phx_close` for terminal
//! ends, `phx_error` for recoverable ones, so realtime-js rejoins only when it
//! should), and the WebSocket close codes (never 1000 when the client should
//! come back, because realtime-js does not reconnect after 1000). Receives
//! decisions from the session; hands on JSON payloads and close specs.

use serde::Serialize;
use serde_json::value::RawValue;

/// A `phx_reply` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    /// The push succeeded.
    Ok,
    /// The push was refused; the response says why.
    Error,
}

impl ReplyStatus {
    /// The `status` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Ok => "ok",
            ReplyStatus::Error => "error",
        }
    }
}

/// Why a `phx_join` got an error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinRefusal {
    /// The topic does not start with `realtime:`.
    UnmatchedTopic,
    /// The join payload is not what realtime-js sends.
    InvalidJoinPayload {
        /// What was wrong.
        detail: String,
    },
    /// The token failed verification.
    InvalidToken {
        /// The verifier's message ("Token has expired 3 seconds ago", ...).
        detail: String,
    },
    /// A private channel the rules give no read access to.
    Unauthorized {
        /// The topic without `realtime:`.
        sub_topic: String,
    },
    /// `private_only` is set and the join is public.
    PrivateOnly,
    /// The socket already has its maximum of channels.
    TooManyChannels,
    /// Joins on this socket exceeded the per-second limit.
    TooManyJoins,
    /// The join asks for postgres_changes and no upstream is configured.
    PostgresChangesUnsupported,
    /// The postgres_changes upstream could not be reached.
    UpstreamUnavailable {
        /// What failed.
        detail: String,
    },
}

impl JoinRefusal {
    /// The `reason` of the error reply.
    pub fn reason(&self) -> String {
        match self {
            JoinRefusal::UnmatchedTopic => "unmatched topic".to_string(),
            JoinRefusal::InvalidJoinPayload { detail } => {
                format!("InvalidJoinPayload: {detail}")
            }
            JoinRefusal::InvalidToken { detail } => format!("InvalidJWTToken: {detail}"),
            JoinRefusal::Unauthorized { sub_topic } => format!(
                "Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}"
            ),
            JoinRefusal::PrivateOnly => {
                "PrivateOnly: This project only allows private channels".to_string()
            }
            JoinRefusal::TooManyChannels => {
                "ChannelRateLimitReached: Too many channels".to_string()
            }
            JoinRefusal::TooManyJoins => {
                "ClientJoinRateLimitReached: Too many joins per second".to_string()
            }
            JoinRefusal::PostgresChangesUnsupported => {
                "PostgresChangesUnsupported: postgres_changes needs a real Supabase Realtime; \
                 set [supabase] upstream in portico's config to splice these joins to it"
                    .to_string()
            }
            JoinRefusal::UpstreamUnavailable { detail } => {
                format!("UpstreamUnavailable: {detail}")
            }
        }
    }

    /// Whether the socket is closed after the reply (Supabase closes the
    /// socket when joins come too fast).
    pub const fn closes_socket(&self) -> Option<SocketClose> {
        match self {
            JoinRefusal::TooManyJoins => Some(SocketClose::JoinRateLimited),
            JoinRefusal::UnmatchedTopic
            | JoinRefusal::InvalidJoinPayload { .. }
            | JoinRefusal::InvalidToken { .. }
            | JoinRefusal::Unauthorized { .. }
            | JoinRefusal::PrivateOnly
            | JoinRefusal::TooManyChannels
            | JoinRefusal::PostgresChangesUnsupported
            | JoinRefusal::UpstreamUnavailable { .. } => None,
        }
    }
}

/// How a joined channel ended without the client leaving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelEnd {
    /// The client sent `phx_leave` (reply ok, then this).
    Left,
    /// A second join of the same topic replaced this one.
    Replaced,
    /// The token expired (after a system message).
    TokenExpired,
    /// The token refresh was refused or removed read access.
    AccessRevoked,
    /// Too many events per second, or too many presence calls on the
    /// channel (after a system message).
    RateLimited,
    /// The postgres_changes upstream dropped: the client should rejoin.
    UpstreamLost,
    /// The server is draining: the socket closes next.
    Shutdown,
}

impl ChannelEnd {
    /// The event sent on the channel.
    pub const fn event(self) -> &'static str {
        match self {
            ChannelEnd::Left
            | ChannelEnd::Replaced
            | ChannelEnd::TokenExpired
            | ChannelEnd::AccessRevoked
            | ChannelEnd::RateLimited
            | ChannelEnd::Shutdown => "phx_close",
            ChannelEnd::UpstreamLost => "phx_error",
        }
    }

    /// The payload sent with the event.
    pub const fn payload(self) -> &'static str {
        match self {
            ChannelEnd::UpstreamLost => r#"{"reason":"upstream closed"}"#,
            ChannelEnd::Left
            | ChannelEnd::Replaced
            | ChannelEnd::TokenExpired
            | ChannelEnd::AccessRevoked
            | ChannelEnd::RateLimited
            | ChannelEnd::Shutdown => "{}",
        }
    }
}

/// Why the server closes a whole socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketClose {
    /// Joins came faster than the limit.
    JoinRateLimited,
    /// No inbound frame for the idle timeout (Phoenix: 60 s).
    Idle,
    /// No channel joined for the no-channel timeout.
    NoChannels,
    /// The outbound queue overflowed.
    SlowConsumer,
    /// The server is draining (restart or deploy).
    Drain,
    /// An inbound message exceeded the size limit.
    MessageTooLarge,
    /// An inbound message could not be decoded.
    BadMessage,
    /// A text message (or close reason) that is not valid UTF-8.
    InvalidUtf8,
    /// A WebSocket protocol violation (bad frame, invalid close code).
    Protocol,
}

impl SocketClose {
    /// The WebSocket close code. 1001/1012 make realtime-js reconnect with
    /// backoff; 1000 would not, so it is never used.
    pub const fn code(self) -> u16 {
        match self {
            SocketClose::JoinRateLimited
            | SocketClose::Idle
            | SocketClose::NoChannels
            | SocketClose::SlowConsumer => 1001,
            SocketClose::Drain => 1012,
            SocketClose::MessageTooLarge => 1009,
            SocketClose::BadMessage | SocketClose::InvalidUtf8 => 1007,
            SocketClose::Protocol => 1002,
        }
    }

    /// The close reason (at most 123 bytes).
    pub const fn reason(self) -> &'static str {
        match self {
            SocketClose::JoinRateLimited => "ClientJoinRateLimitReached: Too many joins per second",
            SocketClose::Idle => "no message within the idle timeout",
            SocketClose::NoChannels => "no channels joined",
            SocketClose::SlowConsumer => "slow consumer: outbound queue full",
            SocketClose::Drain => "server restarting",
            SocketClose::MessageTooLarge => "message too large",
            SocketClose::BadMessage => "malformed message",
            SocketClose::InvalidUtf8 => "invalid UTF-8 in a text message",
            SocketClose::Protocol => "websocket protocol violation",
        }
    }
}

fn raw(json: String) -> Box<RawValue> {
    RawValue::from_string(json).expect("serde_json output is valid JSON")
}

fn to_raw<T: Serialize>(v: &T) -> Box<RawValue> {
    raw(serde_json::to_string(v).expect("plain structs always serialise"))
}

/// `{"status":..,"response":..}`.
pub fn reply_payload(status: ReplyStatus, response: &RawValue) -> Box<RawValue> {
    #[derive(Serialize)]
    struct R<'a> {
        status: &'static str,
        response: &'a RawValue,
    }
    to_raw(&R {
        status: status.as_str(),
        response,
    })
}

/// `{"reason": ..}`, the response of an error reply.
pub fn reason_response(reason: &str) -> Box<RawValue> {
    #[derive(Serialize)]
    struct R<'a> {
        reason: &'a str,
    }
    to_raw(&R { reason })
}

/// The payload of a `system` push: Supabase tells clients about rate limits
/// and token expiry this way, before closing the channel.
pub fn system_payload(status: ReplyStatus, message: &str, sub_topic: &str) -> Box<RawValue> {
    #[derive(Serialize)]
    struct S<'a> {
        extension: &'static str,
        status: &'static str,
        message: &'a str,
        channel: &'a str,
    }
    to_raw(&S {
        extension: "system",
        status: status.as_str(),
        message,
        channel: sub_topic,
    })
}

/// The empty object `{}`.
pub fn empty_object() -> Box<RawValue> {
    raw("{}".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_statuses() {
        assert_eq!(ReplyStatus::Ok.as_str(), "ok");
        assert_eq!(ReplyStatus::Error.as_str(), "error");
    }

    #[test]
    fn join_refusal_reasons_use_supabase_wording() {
        let rows: [(JoinRefusal, &str, Option<u16>); 9] = [
            (JoinRefusal::UnmatchedTopic, "unmatched topic", None),
            (
                JoinRefusal::InvalidJoinPayload { detail: "x".into() },
                "InvalidJoinPayload: x",
                None,
            ),
            (
                JoinRefusal::InvalidToken {
                    detail: "Token has expired 3 seconds ago".into(),
                },
                "InvalidJWTToken: Token has expired 3 seconds ago",
                None,
            ),
            (
                JoinRefusal::Unauthorized {
                    sub_topic: "room1".into(),
                },
                "Unauthorized: You do not have permissions to read from this Channel topic: room1",
                None,
            ),
            (
                JoinRefusal::PrivateOnly,
                "PrivateOnly: This project only allows private channels",
                None,
            ),
            (
                JoinRefusal::TooManyChannels,
                "ChannelRateLimitReached: Too many channels",
                None,
            ),
            (
                JoinRefusal::TooManyJoins,
                "ClientJoinRateLimitReached: Too many joins per second",
                Some(1001),
            ),
            (
                JoinRefusal::PostgresChangesUnsupported,
                "PostgresChangesUnsupported: ",
                None,
            ),
            (
                JoinRefusal::UpstreamUnavailable {
                    detail: "refused".into(),
                },
                "UpstreamUnavailable: refused",
                None,
            ),
        ];
        for (r, want, close) in rows {
            assert!(r.reason().starts_with(want), "{r:?}: {}", r.reason());
            assert_eq!(r.closes_socket().map(SocketClose::code), close, "{r:?}");
        }
        assert!(
            JoinRefusal::PostgresChangesUnsupported
                .reason()
                .contains("upstream")
        );
    }

    #[test]
    fn channel_ends() {
        for (end, event, payload) in [
            (ChannelEnd::Left, "phx_close", "{}"),
            (ChannelEnd::Replaced, "phx_close", "{}"),
            (ChannelEnd::TokenExpired, "phx_close", "{}"),
            (ChannelEnd::AccessRevoked, "phx_close", "{}"),
            (ChannelEnd::RateLimited, "phx_close", "{}"),
            (ChannelEnd::Shutdown, "phx_close", "{}"),
            (
                ChannelEnd::UpstreamLost,
                "phx_error",
                r#"{"reason":"upstream closed"}"#,
            ),
        ] {
            assert_eq!(end.event(), event, "{end:?}");
            assert_eq!(end.payload(), payload, "{end:?}");
        }
    }

    #[test]
    fn socket_close_codes_never_1000() {
        for (c, code) in [
            (SocketClose::JoinRateLimited, 1001),
            (SocketClose::Idle, 1001),
            (SocketClose::NoChannels, 1001),
            (SocketClose::SlowConsumer, 1001),
            (SocketClose::Drain, 1012),
            (SocketClose::MessageTooLarge, 1009),
            (SocketClose::BadMessage, 1007),
            (SocketClose::InvalidUtf8, 1007),
            (SocketClose::Protocol, 1002),
        ] {
            assert_eq!(c.code(), code, "{c:?}");
            assert!(c.reason().len() <= 123);
        }
    }

    #[test]
    fn payload_builders() {
        let r = reply_payload(ReplyStatus::Error, &reason_response("unmatched topic"));
        assert_eq!(
            r.get(),
            r#"{"status":"error","response":{"reason":"unmatched topic"}}"#
        );
        let s = system_payload(ReplyStatus::Error, "Too many messages per second", "room1");
        assert_eq!(
            s.get(),
            r#"{"extension":"system","status":"error","message":"Too many messages per second","channel":"room1"}"#
        );
        assert_eq!(empty_object().get(), "{}");
    }
}
