//! `[supabase.limits]`: rates, sizes, timeouts and error delays of the
//! Supabase front, with Supabase's tenant defaults.
//!
//! Owns: the accepted limit keys, their defaults and their rules. Receives:
//! the raw table from [`super::RawSupabase`]. Hands on: a validated
//! [`Limits`] inside [`super::Supabase`].

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::ctx::{Ctx, SpStr};
use crate::config::error::ConfigError;

/// `[supabase.limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) max_channels_per_socket: Option<Spanned<i64>>,
    pub(crate) max_events_per_second: Option<Spanned<i64>>,
    pub(crate) max_joins_per_second: Option<Spanned<i64>>,
    pub(crate) max_presence_events_per_second: Option<Spanned<i64>>,
    pub(crate) max_presence_events_per_channel: Option<Spanned<i64>>,
    pub(crate) presence_events_window: Option<SpStr>,
    pub(crate) max_concurrent_users: Option<Spanned<i64>>,
    pub(crate) max_payload: Option<SpStr>,
    pub(crate) idle_timeout: Option<SpStr>,
    pub(crate) no_channel_timeout: Option<SpStr>,
    pub(crate) join_error_delay: Option<SpStr>,
    pub(crate) handshake_error_delay: Option<SpStr>,
}

/// `[supabase.limits]`, with Supabase's tenant defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Channels one socket may join (100).
    pub max_channels_per_socket: usize,
    /// Client messages per second per socket (100).
    pub max_events_per_second: u32,
    /// Joins per second per socket (100); beyond it the socket is closed.
    pub max_joins_per_second: u32,
    /// Presence track/untrack per second over all sockets (1000).
    pub max_presence_events_per_second: u32,
    /// Presence calls one socket may make on one joined channel per
    /// `presence_events_window` (5); past it the channel is closed.
    pub max_presence_events_per_channel: u32,
    /// The window of `max_presence_events_per_channel` (30 s), starting at
    /// the first call after the previous window ended.
    pub presence_events_window: Duration,
    /// Sockets at once (200).
    pub max_concurrent_users: usize,
    /// Largest inbound message and broadcast payload (3000 KB).
    pub max_payload: usize,
    /// Close a socket with no inbound frame for this long (60 s).
    pub idle_timeout: Duration,
    /// Close a socket that joined no channel for this long (10 min).
    pub no_channel_timeout: Duration,
    /// Wait this long before sending a join error (5 s; damps retry storms).
    pub join_error_delay: Duration,
    /// Wait this long before answering a refused WebSocket handshake (2 s;
    /// damps reconnect storms). Only that one response waits.
    pub handshake_error_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_channels_per_socket: 100,
            max_events_per_second: 100,
            max_joins_per_second: 100,
            max_presence_events_per_second: 1000,
            max_presence_events_per_channel: 5,
            presence_events_window: Duration::from_secs(30),
            max_concurrent_users: 200,
            max_payload: 3000 * 1024,
            idle_timeout: Duration::from_secs(60),
            no_channel_timeout: Duration::from_secs(600),
            join_error_delay: Duration::from_secs(5),
            handshake_error_delay: Duration::from_secs(2),
        }
    }
}

pub(super) fn validate(cx: &Ctx<'_>, l: &RawLimits) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let k = |f: &str| format!("supabase.limits.{f}");
    let rate = |f: &str, v: Option<&Spanned<i64>>, def: u32| -> Result<u32, ConfigError> {
        let n = cx.count(&k(f), v, def as usize)?;
        u32::try_from(n).map_err(|_| {
            cx.err(
                k(f),
                v.map(Spanned::span),
                "is too large",
                "write a number below 4294967296",
            )
        })
    };
    let max_payload = cx.size_or(
        &k("max_payload"),
        l.max_payload.as_ref(),
        d.max_payload as u64,
    )?;
    let delay = |f: &str, v: Option<&SpStr>, def: Duration| -> Result<Duration, ConfigError> {
        match v {
            None => Ok(def),
            Some(v) => Ok(cx.duration(&k(f), v)?.unwrap_or(Duration::ZERO)),
        }
    };
    let presence_events_window = cx.duration_or(
        &k("presence_events_window"),
        l.presence_events_window.as_ref(),
        d.presence_events_window,
    )?;
    if presence_events_window.is_zero() {
        return Err(cx.err(
            k("presence_events_window"),
            l.presence_events_window.as_ref().map(Spanned::span),
            "a zero-length window never limits anything",
            "write a duration such as \"30s\" (Supabase's default), or raise `max_presence_events_per_channel`",
        ));
    }
    if max_payload < 1024 {
        return Err(cx.err(
            k("max_payload"),
            l.max_payload.as_ref().map(Spanned::span),
            format!("{max_payload} bytes cannot even hold a join message"),
            "write at least \"1KiB\" (Supabase's default is \"3000KB\")",
        ));
    }
    Ok(Limits {
        max_channels_per_socket: cx.count(
            &k("max_channels_per_socket"),
            l.max_channels_per_socket.as_ref(),
            d.max_channels_per_socket,
        )?,
        max_events_per_second: rate(
            "max_events_per_second",
            l.max_events_per_second.as_ref(),
            d.max_events_per_second,
        )?,
        max_joins_per_second: rate(
            "max_joins_per_second",
            l.max_joins_per_second.as_ref(),
            d.max_joins_per_second,
        )?,
        max_presence_events_per_second: rate(
            "max_presence_events_per_second",
            l.max_presence_events_per_second.as_ref(),
            d.max_presence_events_per_second,
        )?,
        max_presence_events_per_channel: rate(
            "max_presence_events_per_channel",
            l.max_presence_events_per_channel.as_ref(),
            d.max_presence_events_per_channel,
        )?,
        presence_events_window,
        max_concurrent_users: cx.count(
            &k("max_concurrent_users"),
            l.max_concurrent_users.as_ref(),
            d.max_concurrent_users,
        )?,
        max_payload: usize::try_from(max_payload).unwrap_or(usize::MAX),
        idle_timeout: cx.duration_or(
            &k("idle_timeout"),
            l.idle_timeout.as_ref(),
            d.idle_timeout,
        )?,
        no_channel_timeout: cx.duration_or(
            &k("no_channel_timeout"),
            l.no_channel_timeout.as_ref(),
            d.no_channel_timeout,
        )?,
        join_error_delay: delay(
            "join_error_delay",
            l.join_error_delay.as_ref(),
            d.join_error_delay,
        )?,
        handshake_error_delay: delay(
            "handshake_error_delay",
            l.handshake_error_delay.as_ref(),
            d.handshake_error_delay,
        )?,
    })
}
