//! One Supabase Realtime (Phoenix) WebSocket, from upgrade to cleanup.
//!
//! Owns: the socket's joined channels (topic → join ref, options, token,
//! grants), its liveness timers (idle after `idle_timeout` without an inbound
//! frame, no-channel timeout), token expiry timers, and its event and join
//! rate windows. Receives: inbound frames from the stream half and the
//! edge's shutdown signal. Hands on: replies and pushes through the socket's
//! outbound queue (written by its one writer task), broadcasts and presence
//! diffs to the hub through [`Shared`]; on exit it leaves every channel so
//! presence leaves are announced once.
//!
//! Channel operations (join, broadcast, presence, token refresh) are in
//! [`ops`]; this file is the loop and the routing.

mod ops;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, sleep_until};

use super::codec::{self, Outgoing, Payload, Push, Vsn};
use super::handshake::Accepted;
use super::jwt::Claims;
use super::policy::{Grants, Policy};
use super::state::{Budget, Shared, Window};
use super::wire::{self, ChannelEnd, ReplyStatus, SocketClose};
use crate::config::supabase::Supabase;
use crate::hub::{Conn, ConnRef, ConnSlot};
use crate::ws::{self, CloseSpec, Frame, Inbound, QueueLimits, ReadError};

/// Deadline for one write (batch + flush) to the peer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing socket may take to flush its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// Headroom over `max_payload` for the envelope of a message, so an
/// oversized payload gets Supabase's error reply rather than a close.
const ENVELOPE_SLACK: usize = 64 * 1024;

/// One joined channel.
struct Chan {
    /// `realtime:<name>`.
    topic: Arc<str>,
    /// `<name>`.
    sub_topic: Arc<str>,
    /// The hub channel (public/private namespaced).
    hub_channel: Arc<str>,
    /// The ref of the `phx_join`; every push on the channel carries it.
    join_ref: Arc<str>,
    private: bool,
    broadcast_self: bool,
    broadcast_ack: bool,
    presence_key: String,
    /// The token the channel was joined or refreshed with.
    token: String,
    claims: Claims,
    grants: Grants,
    /// When `claims` expire.
    expires: Option<Instant>,
    /// Relayed to the postgres_changes upstream instead of the hub.
    spliced: bool,
    /// Presence calls on this channel (`max_presence_events_per_channel`).
    presence_budget: Budget,
}

/// One socket's state.
pub(crate) struct Session {
    shared: Arc<Shared>,
    config: Arc<Supabase>,
    /// The rule table of `config`, built once for the socket's life.
    policy: Policy,
    vsn: Vsn,
    conn: ConnRef,
    peer: SocketAddr,
    /// The handshake token and claims (joins without `access_token`).
    token: String,
    claims: Claims,
    chans: HashMap<Arc<str>, Chan>,
    events: Window,
    joins: Window,
    last_inbound: Instant,
    /// When the socket last had no channel (for the no-channel timeout).
    empty_since: Option<Instant>,
    /// The postgres_changes upstream link, opened on first need.
    upstream: Option<super::upstream::Link>,
}

/// Runs a session over an upgraded stream.
pub(crate) async fn run<S>(
    shared: Arc<Shared>,
    config: Arc<Supabase>,
    io: S,
    acc: Accepted,
    slot: ConnSlot,
    peer: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _slot = slot;
    let socket = ws::server_socket(io, config.limits.max_payload + ENVELOPE_SLACK).await;
    let (sink, mut stream) = socket.split();
    let limits = QueueLimits {
        slow_close: CloseSpec::new(
            SocketClose::SlowConsumer.code(),
            SocketClose::SlowConsumer.reason(),
        ),
        max_bytes: (4 << 20).max(config.limits.max_payload * 2),
        ..QueueLimits::default()
    };
    let (tx, rx) = ws::outbound(limits);
    let mut writer = tokio::spawn(ws::run_writer(sink, rx, WRITE_TIMEOUT));
    let id = shared.hub.next_conn_id();
    let conn = Arc::new(Conn {
        id,
        socket_id: Arc::from(format!("phx.{id}")),
        codec: acc.vsn.codec(),
        tx: tx.clone(),
    });
    let now = Instant::now();
    let mut s = Session {
        shared: shared.clone(),
        policy: Policy::from(&config.policy),
        config,
        vsn: acc.vsn,
        conn,
        peer,
        token: acc.token,
        claims: acc.claims,
        chans: HashMap::new(),
        events: Window::new(),
        joins: Window::new(),
        last_inbound: now,
        empty_since: Some(now),
        upstream: None,
    };
    tracing::debug!(peer = %peer, vsn = s.vsn.as_str(), role = %s.claims.role, "supabase socket open");
    // The peer closed first: its close code is echoed so it sees a clean
    // close rather than 1006.
    let mut peer_closed: Option<u16> = None;
    let end: Option<SocketClose> = loop {
        let deadline = s.next_deadline();
        tokio::select! {
            biased;
            _ = &mut writer => break None,
            _ = shared.shutdown.aborted() => break Some(SocketClose::Drain),
            _ = shared.shutdown.draining() => break Some(SocketClose::Drain),
            lost = upstream_lost(&mut s.upstream) => s.on_upstream_lost(&lost),
            _ = sleep_until(deadline) => {
                if let Some(c) = s.on_timer(Instant::now()) {
                    break Some(c);
                }
            }
            // Backpressure: the next push is read only once the replies to
            // the last ones have room (never an eviction).
            msg = async { tx.room().await; ws::next_inbound(&mut stream).await } => {
                s.last_inbound = Instant::now();
                let res = match msg {
                    Ok(Inbound::Text(t)) => codec::decode_text(s.vsn, &t)
                        .map_err(|e| s.bad_message(&e))
                        .and_then(|p| s.dispatch(p, Frame::Text(t))),
                    Ok(Inbound::Binary(b)) => codec::decode_binary(s.vsn, &b)
                        .map_err(|e| s.bad_message(&e))
                        .and_then(|p| s.dispatch(p, Frame::Binary(b))),
                    Ok(Inbound::Alive) => Ok(()),
                    Ok(Inbound::Closed(code)) => {
                        peer_closed = Some(code.unwrap_or(1000));
                        break None;
                    }
                    Err(ReadError::Io) => break None,
                    Err(ReadError::TooLarge { .. }) => Err(SocketClose::MessageTooLarge),
                    Err(ReadError::Protocol) => Err(SocketClose::Protocol),
                    Err(ReadError::InvalidUtf8) => Err(SocketClose::InvalidUtf8),
                };
                if let Err(c) = res {
                    break Some(c);
                }
            }
        }
    };
    s.cleanup();
    if let Some(c) = end {
        tracing::debug!(peer = %peer, code = c.code(), reason = c.reason(), "supabase socket closed by server");
        tx.close(CloseSpec::new(c.code(), c.reason()));
        let _ = tokio::time::timeout(CLOSE_WAIT, &mut writer).await;
    } else if let Some(code) = peer_closed {
        // 1005/1006/1015 must not appear in a close frame.
        let code = if matches!(code, 1005 | 1006 | 1015) {
            1000
        } else {
            code
        };
        tx.close(CloseSpec::new(code, ""));
        let _ = tokio::time::timeout(CLOSE_WAIT, &mut writer).await;
    }
    writer.abort();
}

impl Session {
    fn bad_message(&self, e: &codec::CodecError) -> SocketClose {
        tracing::debug!(peer = %self.peer, error = %e, "supabase: undecodable message");
        SocketClose::BadMessage
    }

    /// The earliest timer: idle, no-channel, or a token expiry.
    fn next_deadline(&self) -> Instant {
        let l = &self.config.limits;
        let mut d = self.last_inbound + l.idle_timeout;
        if let Some(t) = self.empty_since {
            d = d.min(t + l.no_channel_timeout);
        }
        for c in self.chans.values() {
            if let Some(e) = c.expires {
                d = d.min(e);
            }
        }
        d
    }

    fn on_timer(&mut self, now: Instant) -> Option<SocketClose> {
        let l = &self.config.limits;
        if now >= self.last_inbound + l.idle_timeout {
            return Some(SocketClose::Idle);
        }
        if self
            .empty_since
            .is_some_and(|t| now >= t + l.no_channel_timeout)
        {
            return Some(SocketClose::NoChannels);
        }
        let expired: Vec<Arc<str>> = self
            .chans
            .values()
            .filter(|c| c.expires.is_some_and(|e| now >= e))
            .map(|c| c.topic.clone())
            .collect();
        for topic in expired {
            let ago = self
                .chans
                .get(&topic)
                .and_then(|c| c.claims.exp)
                .map_or(0, |exp| super::state::unix_now().saturating_sub(exp));
            self.system(
                &topic,
                ReplyStatus::Error,
                &format!("Token has expired {ago} seconds ago"),
            );
            self.end_channel(&topic, ChannelEnd::TokenExpired);
        }
        None
    }

    /// Queues a frame to this socket in answer to its own pushes: never an
    /// eviction, the loop reads the next push only once there is room (see
    /// `ws::queue`).
    fn send(&self, f: Frame) {
        let _ = self.conn.tx.send_reply(f);
    }

    /// Answers a heartbeat ahead of any queued fan-out, so a socket busy
    /// with broadcasts is never timed out by the client's heartbeat timer.
    fn reply_heartbeat(&self, p: &Push) {
        let payload = wire::reply_payload(ReplyStatus::Ok, &wire::empty_object());
        let frame = self.encode(
            &p.topic,
            p.join_ref.as_deref(),
            p.r#ref.as_deref(),
            "phx_reply",
            &payload,
        );
        let _ = self.conn.tx.send_reply_first(frame);
    }

    fn encode(
        &self,
        topic: &str,
        join_ref: Option<&str>,
        r#ref: Option<&str>,
        event: &str,
        payload: &RawValue,
    ) -> Frame {
        Frame::from(codec::encode_text(
            self.vsn,
            &Outgoing {
                join_ref,
                r#ref,
                topic,
                event,
                payload,
            },
        ))
    }

    fn push(
        &self,
        topic: &str,
        join_ref: Option<&str>,
        r#ref: Option<&str>,
        event: &str,
        payload: &RawValue,
    ) {
        self.send(self.encode(topic, join_ref, r#ref, event, payload));
    }

    fn reply(&self, p: &Push, status: ReplyStatus, response: &RawValue) {
        let payload = wire::reply_payload(status, response);
        self.push(
            &p.topic,
            p.join_ref.as_deref(),
            p.r#ref.as_deref(),
            "phx_reply",
            &payload,
        );
    }

    fn reply_error(&self, p: &Push, reason: &str) {
        self.reply(p, ReplyStatus::Error, &wire::reason_response(reason));
    }

    /// A `system` push on a joined channel.
    fn system(&self, topic: &str, status: ReplyStatus, message: &str) {
        if let Some(c) = self.chans.get(topic) {
            let payload = wire::system_payload(status, message, &c.sub_topic);
            self.push(topic, Some(&c.join_ref), None, "system", &payload);
        }
    }

    fn dispatch(&mut self, p: Push, raw: Frame) -> Result<(), SocketClose> {
        if p.topic == "phoenix" {
            if p.event == "heartbeat" {
                self.reply_heartbeat(&p);
            }
            return Ok(());
        }
        if p.event == "phx_join" {
            return self.join(p, raw);
        }
        if self.chans.get(p.topic.as_str()).is_some_and(|c| c.spliced) {
            self.relay(&p, raw);
            if p.event == "phx_leave" {
                self.chans.remove(p.topic.as_str());
                self.note_if_empty();
            }
            return Ok(());
        }
        let joined = self
            .chans
            .get(p.topic.as_str())
            .is_some_and(|c| p.join_ref.as_deref().is_none_or(|j| j == &*c.join_ref));
        if !joined {
            if p.event == "phx_leave" {
                self.reply(&p, ReplyStatus::Ok, &wire::empty_object());
            } else if p.r#ref.is_some() {
                self.reply_error(&p, "unmatched topic");
            }
            return Ok(());
        }
        match p.event.as_str() {
            "phx_leave" => {
                self.reply(&p, ReplyStatus::Ok, &wire::empty_object());
                self.end_channel(&p.topic, ChannelEnd::Left);
            }
            "broadcast" => self.counted(&p.topic, |s| s.broadcast(&p)),
            "presence" => self.counted(&p.topic, |s| s.presence(&p)),
            "access_token" => self.refresh(&p),
            _ => {}
        }
        Ok(())
    }

    /// Runs a client event under the per-socket events-per-second limit:
    /// past it, Supabase sends a system message and closes the channel.
    fn counted(&mut self, topic: &str, f: impl FnOnce(&mut Self)) {
        if self
            .events
            .hit(Instant::now(), self.config.limits.max_events_per_second)
        {
            f(self);
        } else {
            tracing::info!(peer = %self.peer, topic, "supabase: too many messages per second; closing channel");
            self.system(topic, ReplyStatus::Error, "Too many messages per second");
            self.end_channel(topic, ChannelEnd::RateLimited);
        }
    }

    /// Ends a channel: untracks presence, leaves the hub channel, sends
    /// `phx_close` (or `phx_error`) with the channel's join ref.
    fn end_channel(&mut self, topic: &str, how: ChannelEnd) {
        let Some(c) = self.chans.remove(topic) else {
            return;
        };
        if c.spliced {
            // The upstream ends its own channels.
            self.note_if_empty();
            return;
        }
        self.leave_hub(&c);
        let payload = RawValue::from_string(how.payload().to_string())
            .unwrap_or_else(|_| wire::empty_object());
        self.push(
            &c.topic,
            Some(&c.join_ref),
            Some(&c.join_ref),
            how.event(),
            &payload,
        );
        self.note_if_empty();
    }

    fn note_if_empty(&mut self) {
        if self.chans.is_empty() && self.empty_since.is_none() {
            self.empty_since = Some(Instant::now());
        }
    }

    /// Forwards a client frame on a spliced topic to the upstream.
    fn relay(&mut self, p: &Push, raw: Frame) {
        let ok = self.upstream.as_ref().is_some_and(|l| {
            l.send(super::upstream::Relay {
                topic: Arc::from(p.topic.as_str()),
                event: p.event.clone(),
                join_ref: p.join_ref.clone(),
                r#ref: p.r#ref.clone(),
                frame: raw,
            })
        });
        if !ok {
            tracing::debug!(peer = %self.peer, topic = %p.topic, "supabase: upstream link backed up or gone; frame dropped");
        }
    }

    /// The upstream link failed: it already sent `phx_error` on each
    /// spliced topic; forget them so the client's rejoin opens a new link.
    fn on_upstream_lost(&mut self, lost: &Option<super::upstream::Lost>) {
        if let Some(l) = lost {
            tracing::info!(peer = %self.peer, detail = %l.detail, "supabase: postgres_changes upstream lost");
        }
        self.upstream = None;
        self.chans.retain(|_, c| !c.spliced);
        self.note_if_empty();
    }

    fn leave_hub(&self, c: &Chan) {
        let diff = self
            .shared
            .presences
            .with(&c.hub_channel, |p| p.untrack(self.conn.id));
        self.shared.app.unsubscribe(&c.hub_channel, self.conn.id);
        if let Some(d) = diff {
            self.shared.presence_diff(&c.topic, &c.hub_channel, &d);
            self.shared.presence_changed(&c.hub_channel);
        }
    }

    fn cleanup(&mut self) {
        self.upstream = None;
        for (_, c) in std::mem::take(&mut self.chans) {
            if !c.spliced {
                self.leave_hub(&c);
            }
        }
    }
}

/// Resolves when the upstream link reports failure; pends without a link.
async fn upstream_lost(link: &mut Option<super::upstream::Link>) -> Option<super::upstream::Lost> {
    match link {
        Some(l) => l.lost.recv().await,
        None => std::future::pending().await,
    }
}

/// A payload that is only JSON for text messages.
fn json_payload(p: &Push) -> Option<&RawValue> {
    match &p.payload {
        Payload::Json(r) => Some(r),
        Payload::UserBroadcast { .. } => None,
    }
}
