//! The `phx_join` payload as realtime-js, supabase-py and older clients send it.
//!
//! Owns: parsing of `config.broadcast.{self,ack}`, `config.presence.{key,
//! enabled}`, `config.private`, `config.postgres_changes`, and the
//! `access_token` (or legacy `user_token`), with Supabase's leniency:
//! booleans may be `"true"`/`"false"` strings, a missing `presence.enabled`
//! means enabled, an empty presence key means "generate one". Receives: the
//! raw payload. Hands on: a typed [`JoinConfig`].

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// What a join asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinConfig {
    /// Deliver the socket's own broadcasts back to it.
    pub broadcast_self: bool,
    /// Reply `ok` to each broadcast.
    pub broadcast_ack: bool,
    /// The presence key; `None` means the server picks one.
    pub presence_key: Option<String>,
    /// Presence events are wanted (defaults to true for pre-2025 clients).
    pub presence_enabled: bool,
    /// A private channel (checked against the rules).
    pub private: bool,
    /// The requested postgres_changes bindings, raw.
    pub postgres_changes: Vec<Value>,
    /// A token to use instead of the socket's, if any (not `sb_…`).
    pub access_token: Option<String>,
}

/// A join payload that is not an object of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JoinPayloadError(pub String);

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawJoin {
    config: RawJoinConfig,
    access_token: Option<Value>,
    user_token: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawJoinConfig {
    broadcast: Option<RawBroadcast>,
    presence: Option<RawPresence>,
    private: Option<Flex>,
    postgres_changes: Option<Vec<Value>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawBroadcast {
    #[serde(rename = "self")]
    self_: Option<Flex>,
    ack: Option<Flex>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawPresence {
    key: Option<Value>,
    enabled: Option<Flex>,
}

/// A boolean that may arrive as a string (`payloads/flexible_boolean.ex`).
#[derive(Debug, Clone, Copy)]
struct Flex(bool);

impl<'de> Deserialize<'de> for Flex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Flex(b)),
            Value::Null => Ok(Flex(false)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Flex(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Flex(false)),
            other => Err(serde::de::Error::custom(format!(
                "expected a boolean, got {other}"
            ))),
        }
    }
}

fn token(v: Option<Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() && !s.starts_with("sb_") => Some(s),
        _ => None,
    }
}

/// Parses a join payload.
pub fn parse(payload: &RawValue) -> Result<JoinConfig, JoinPayloadError> {
    if !payload.get().trim_start().starts_with('{') {
        return Err(JoinPayloadError(
            "the join payload must be an object".into(),
        ));
    }
    let raw: RawJoin =
        serde_json::from_str(payload.get()).map_err(|e| JoinPayloadError(e.to_string()))?;
    let c = raw.config;
    let b = c.broadcast.unwrap_or_default();
    let p = c.presence.unwrap_or_default();
    let presence_key = match p.key {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(JoinPayloadError(format!(
                "presence key must be a string, got {other}"
            )));
        }
    };
    Ok(JoinConfig {
        broadcast_self: b.self_.is_some_and(|f| f.0),
        broadcast_ack: b.ack.is_some_and(|f| f.0),
        presence_key,
        presence_enabled: p.enabled.is_none_or(|f| f.0),
        private: c.private.is_some_and(|f| f.0),
        postgres_changes: c.postgres_changes.unwrap_or_default(),
        access_token: token(raw.access_token).or_else(|| token(raw.user_token)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<JoinConfig, JoinPayloadError> {
        parse(&RawValue::from_string(s.to_string()).unwrap())
    }

    #[test]
    fn realtime_js_join() {
        let c = p(r#"{"config":{"broadcast":{"ack":true,"self":false},"presence":{"key":"","enabled":true},"postgres_changes":[],"private":false},"access_token":"eyJ.x.y"}"#).unwrap();
        assert!(c.broadcast_ack && !c.broadcast_self && c.presence_enabled && !c.private);
        assert_eq!(c.presence_key, None);
        assert_eq!(c.access_token.as_deref(), Some("eyJ.x.y"));
        assert!(c.postgres_changes.is_empty());
    }

    #[test]
    fn defaults_for_old_and_minimal_clients() {
        let c = p("{}").unwrap();
        assert!(!c.broadcast_ack && !c.broadcast_self && c.presence_enabled && !c.private);
        let c = p(r#"{"config":{"presence":{"key":"u1"}}}"#).unwrap();
        assert!(c.presence_enabled);
        assert_eq!(c.presence_key.as_deref(), Some("u1"));
    }

    #[test]
    fn flexible_booleans() {
        let c = p(r#"{"config":{"broadcast":{"self":"true","ack":"false"},"private":"TRUE","presence":{"enabled":"false"}}}"#).unwrap();
        assert!(c.broadcast_self && !c.broadcast_ack && c.private && !c.presence_enabled);
        assert!(p(r#"{"config":{"private":3}}"#).is_err());
    }

    #[test]
    fn opaque_and_empty_tokens_fall_back_to_the_socket() {
        assert_eq!(
            p(r#"{"access_token":"sb_publishable_x"}"#)
                .unwrap()
                .access_token,
            None
        );
        assert_eq!(p(r#"{"access_token":null}"#).unwrap().access_token, None);
        assert_eq!(p(r#"{"access_token":""}"#).unwrap().access_token, None);
        assert_eq!(
            p(r#"{"user_token":"eyJ.a.b"}"#)
                .unwrap()
                .access_token
                .as_deref(),
            Some("eyJ.a.b")
        );
    }

    #[test]
    fn postgres_changes_are_kept() {
        let c =
            p(r#"{"config":{"postgres_changes":[{"event":"*","schema":"public","table":"t"}]}}"#)
                .unwrap();
        assert_eq!(c.postgres_changes.len(), 1);
    }

    #[test]
    fn non_object_is_refused() {
        assert!(p("[]").is_err());
        assert!(p(r#"{"config":{"presence":{"key":{}}}}"#).is_err());
    }
}
