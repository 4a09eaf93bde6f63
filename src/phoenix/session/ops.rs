//! Channel operations of one socket: join, broadcast, presence, token refresh.

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::{Chan, Session, json_payload};
use crate::config::supabase::{PostgresChanges, Upstream};
use crate::hub::Origin;
use crate::phoenix::codec::{Outgoing, Payload, Push, encode_text};
use crate::phoenix::fanout::Broadcast;
use crate::phoenix::join;
use crate::phoenix::jwt::{Claims, Verifier};
use crate::phoenix::policy::Grants;
use crate::phoenix::presence::add_entries;
use crate::phoenix::state::{Budget, hub_channel, unix_now};
use crate::phoenix::upstream;
use crate::phoenix::wire::{self, ChannelEnd, JoinRefusal, ReplyStatus, SocketClose};
use crate::ws::Frame;

/// When a token with `exp` (Unix seconds) expires, on the tokio clock.
fn expiry(claims: &Claims) -> Option<Instant> {
    let exp = claims.exp?;
    let left = exp.saturating_sub(unix_now());
    Some(Instant::now() + Duration::from_secs(left))
}

/// `postgres_changes = "accept"`: each binding echoed with an id, as the
/// client checks index by index.
fn accepted_bindings(bindings: &[Value]) -> Vec<Value> {
    bindings
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut b = b.clone();
            if let Value::Object(m) = &mut b {
                m.insert("id".into(), Value::from(i as u64 + 1));
            }
            b
        })
        .collect()
}

/// The system message when one socket tracks too often on one channel
/// (Supabase's wording, logged there as `ClientPresenceRateLimitReached`).
pub(crate) const CLIENT_PRESENCE_LIMITED: &str = "Client presence rate limit exceeded";

fn random_key() -> String {
    let b: [u8; 16] = rand::random();
    hex::encode(b)
}

impl Session {
    fn verify(&self, token: &str) -> Result<Claims, JoinRefusal> {
        let v: Option<Arc<Verifier>> = self.shared.verifier();
        let v = v.ok_or_else(|| JoinRefusal::InvalidToken {
            detail: "Supabase Realtime is not configured".into(),
        })?;
        v.verify(token, unix_now())
            .map_err(|e| JoinRefusal::InvalidToken {
                detail: e.to_string(),
            })
    }

    /// Sends a join error, after `join_error_delay` (Supabase damps retry
    /// storms this way), and closes the socket when the refusal says so.
    fn refuse_join(&self, p: &Push, r: &JoinRefusal) -> Result<(), SocketClose> {
        tracing::info!(peer = %self.peer, topic = %p.topic, reason = %r.reason(), "supabase join refused");
        match r {
            JoinRefusal::InvalidToken { .. } => {
                crate::metrics::auth_failed("supabase", "bad_token")
            }
            JoinRefusal::Unauthorized { .. } => {
                crate::metrics::auth_failed("supabase", "unauthorized_channel")
            }
            _ => {}
        }
        let payload = wire::reply_payload(ReplyStatus::Error, &wire::reason_response(&r.reason()));
        let frame = Frame::from(encode_text(
            self.vsn,
            &Outgoing {
                join_ref: p.join_ref.as_deref(),
                r#ref: p.r#ref.as_deref(),
                topic: &p.topic,
                event: "phx_reply",
                payload: &payload,
            },
        ));
        if let Some(close) = r.closes_socket() {
            self.send(frame);
            return Err(close);
        }
        let delay = self.config.limits.join_error_delay;
        if delay.is_zero() {
            self.send(frame);
        } else {
            let tx = self.conn.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tx.try_send(frame);
            });
        }
        Ok(())
    }

    pub(super) fn join(&mut self, p: Push, raw: Frame) -> Result<(), SocketClose> {
        if !self
            .joins
            .hit(Instant::now(), self.config.limits.max_joins_per_second)
        {
            return self.refuse_join(&p, &JoinRefusal::TooManyJoins);
        }
        let Some(sub_topic) = p.topic.strip_prefix("realtime:").map(str::to_string) else {
            return self.refuse_join(&p, &JoinRefusal::UnmatchedTopic);
        };
        // A second join of the same topic closes the old channel first.
        if self.chans.contains_key(p.topic.as_str()) {
            self.end_channel(&p.topic.clone(), ChannelEnd::Replaced);
        }
        let Some(payload) = json_payload(&p) else {
            return self.refuse_join(
                &p,
                &JoinRefusal::InvalidJoinPayload {
                    detail: "binary join".into(),
                },
            );
        };
        let cfg = match join::parse(payload) {
            Ok(c) => c,
            Err(e) => {
                return self.refuse_join(
                    &p,
                    &JoinRefusal::InvalidJoinPayload {
                        detail: e.to_string(),
                    },
                );
            }
        };
        let (token, claims) = match &cfg.access_token {
            Some(t) if *t != self.token => match self.verify(t) {
                Ok(c) => (t.clone(), c),
                Err(r) => return self.refuse_join(&p, &r),
            },
            _ => {
                // The handshake token may have expired since the socket opened.
                match self.verify(&self.token.clone()) {
                    Ok(c) => (self.token.clone(), c),
                    Err(r) => return self.refuse_join(&p, &r),
                }
            }
        };
        if self.chans.len() >= self.config.limits.max_channels_per_socket {
            return self.refuse_join(&p, &JoinRefusal::TooManyChannels);
        }
        if self.config.private_only && !cfg.private {
            return self.refuse_join(&p, &JoinRefusal::PrivateOnly);
        }
        let mut pg_ids = Vec::new();
        if !cfg.postgres_changes.is_empty() {
            if let Some(up) = self.config.upstream.clone() {
                self.splice(&p, raw, &up, sub_topic);
                return Ok(());
            }
            match self.config.postgres_changes {
                PostgresChanges::Refuse => {
                    return self.refuse_join(&p, &JoinRefusal::PostgresChangesUnsupported);
                }
                PostgresChanges::Accept => pg_ids = accepted_bindings(&cfg.postgres_changes),
            }
        }
        let grants = if cfg.private {
            self.policy.grants(&sub_topic, &claims)
        } else {
            Grants::ALL
        };
        if !grants.can_join() {
            return self.refuse_join(&p, &JoinRefusal::Unauthorized { sub_topic });
        }
        let topic: Arc<str> = Arc::from(p.topic.as_str());
        let join_ref: Arc<str> =
            Arc::from(p.join_ref.as_deref().or(p.r#ref.as_deref()).unwrap_or(""));
        let chan = Chan {
            topic: topic.clone(),
            hub_channel: Arc::from(hub_channel(&sub_topic, cfg.private)),
            sub_topic: Arc::from(sub_topic),
            join_ref: join_ref.clone(),
            private: cfg.private,
            broadcast_self: cfg.broadcast_self,
            broadcast_ack: cfg.broadcast_ack,
            presence_key: cfg.presence_key.clone().unwrap_or_else(random_key),
            expires: expiry(&claims),
            token,
            claims,
            grants,
            spliced: false,
            presence_budget: Budget::default(),
        };
        if self
            .shared
            .app
            .subscribe(&chan.hub_channel, &self.conn)
            .is_err()
        {
            // Only possible if the hub still has us from a replaced channel.
            self.shared.app.unsubscribe(&chan.hub_channel, self.conn.id);
            let _ = self.shared.app.subscribe(&chan.hub_channel, &self.conn);
        }
        let response =
            RawValue::from_string(serde_json::json!({ "postgres_changes": pg_ids }).to_string())
                .unwrap_or_else(|_| wire::empty_object());
        self.reply(&p, ReplyStatus::Ok, &response);
        // Always, even with `presence.enabled: false`: realtime-js joins
        // without presence when no presence listener exists yet and tracks
        // later; its Presence buffers every diff until a `presence_state`
        // for the current join ref arrives.
        // In a cluster it holds every node's metas: the cluster answers
        // once this node's are written.
        match self.shared.cluster.get() {
            Some(c) => {
                let (tx, vsn, shared) = (self.conn.tx.clone(), self.vsn, self.shared.clone());
                let (t, jr, hc) = (topic.clone(), join_ref.clone(), chan.hub_channel.clone());
                let answer = move |all: Option<Vec<bytes::Bytes>>| {
                    let state = match all {
                        Some(all) => {
                            let mut m = Map::new();
                            add_entries(&mut m, &all);
                            Value::Object(m)
                        }
                        None => shared.presences.with(&hc, |pr| pr.state()),
                    };
                    if let Ok(p) = RawValue::from_string(state.to_string()) {
                        let out = Outgoing {
                            join_ref: Some(&jr),
                            r#ref: None,
                            topic: &t,
                            event: "presence_state",
                            payload: &p,
                        };
                        let _ = tx.send_reply(Frame::from(encode_text(vsn, &out)));
                    }
                };
                c.entries_state(self.shared.app.id(), &chan.hub_channel, Box::new(answer));
            }
            None => {
                let state = self
                    .shared
                    .presences
                    .with(&chan.hub_channel, |pr| pr.state());
                if let Ok(state) = RawValue::from_string(state.to_string()) {
                    self.push(&topic, Some(&join_ref), None, "presence_state", &state);
                }
            }
        }
        tracing::debug!(peer = %self.peer, topic = %topic, private = chan.private, "supabase join");
        self.chans.insert(topic, chan);
        self.empty_since = None;
        Ok(())
    }

    /// Hands a postgres_changes join to the upstream (opening the link on
    /// first use); the upstream's reply reaches the client verbatim.
    fn splice(&mut self, p: &Push, raw: Frame, up: &Upstream, sub_topic: String) {
        if self.upstream.is_none() {
            let token = self.token.clone();
            self.upstream = Some(upstream::spawn(up, self.vsn, &token, self.conn.tx.clone()));
        }
        let topic: Arc<str> = Arc::from(p.topic.as_str());
        let join_ref: Arc<str> =
            Arc::from(p.join_ref.as_deref().or(p.r#ref.as_deref()).unwrap_or(""));
        tracing::debug!(peer = %self.peer, topic = %topic, upstream = %up.url, "supabase: postgres_changes join spliced");
        self.relay(p, raw);
        let claims = self.claims.clone();
        self.chans.insert(
            topic.clone(),
            Chan {
                topic,
                hub_channel: Arc::from(""),
                sub_topic: Arc::from(sub_topic),
                join_ref,
                private: false,
                broadcast_self: false,
                broadcast_ack: false,
                presence_key: String::new(),
                token: self.token.clone(),
                claims,
                grants: Grants::default(),
                expires: None,
                spliced: true,
                presence_budget: Budget::default(),
            },
        );
        self.empty_since = None;
    }

    pub(super) fn broadcast(&mut self, p: &Push) {
        let Some(c) = self.chans.get(p.topic.as_str()) else {
            return;
        };
        let max = self.config.limits.max_payload;
        let (b, size) = match &p.payload {
            Payload::Json(raw) => (Broadcast::Json(raw), raw.get().len()),
            Payload::UserBroadcast {
                event,
                encoding,
                meta,
                data,
            } => (
                Broadcast::User {
                    event,
                    encoding: *encoding,
                    meta: meta.as_deref().map(RawValue::get),
                    data,
                },
                data.len(),
            ),
        };
        if c.private && !c.grants.broadcast_write {
            // Supabase drops it silently: an ack client sees a timeout.
            tracing::debug!(peer = %self.peer, topic = %p.topic, "supabase: broadcast without write permission dropped");
            return;
        }
        if size > max {
            if c.broadcast_ack {
                self.reply_error(
                    p,
                    &format!("Payload too large: {size} bytes, the limit is {max}"),
                );
            }
            return;
        }
        if let Payload::Json(raw) = &p.payload
            && !raw.get().trim_start().starts_with('{')
        {
            if p.r#ref.is_some() {
                self.reply_error(p, "Broadcast payload must be a map");
            }
            return;
        }
        let except = (!c.broadcast_self).then(|| self.conn.socket_id.clone());
        match self.shared.broadcast(
            &c.sub_topic,
            c.private,
            b,
            except.as_deref(),
            Origin::Socket(&self.conn.socket_id),
        ) {
            Ok(_) => {
                if c.broadcast_ack {
                    self.reply(p, ReplyStatus::Ok, &wire::empty_object());
                }
            }
            Err(e) => self.reply_error(p, &e.to_string()),
        }
    }

    pub(super) fn presence(&mut self, p: &Push) {
        let Some(raw) = json_payload(p) else { return };
        let Ok(msg) = serde_json::from_str::<Map<String, Value>>(raw.get()) else {
            self.reply_error(p, "Presence payload must be a map");
            return;
        };
        let l = &self.config.limits;
        let (max, window) = (l.max_presence_events_per_channel, l.presence_events_window);
        // Supabase counts every presence call (track and untrack) per
        // channel process, before any other check, and closes the channel
        // past the limit without replying to the call.
        let spent = match self.chans.get_mut(p.topic.as_str()) {
            Some(c) => c.presence_budget.spend(Instant::now(), max, window),
            None => return,
        };
        if !spent {
            tracing::info!(peer = %self.peer, topic = %p.topic, max, window = ?window, "supabase: client presence rate limit exceeded; closing channel");
            self.system(&p.topic, ReplyStatus::Error, CLIENT_PRESENCE_LIMITED);
            self.end_channel(&p.topic, ChannelEnd::RateLimited);
            return;
        }
        let Some(c) = self.chans.get(p.topic.as_str()) else {
            return;
        };
        if c.private && !c.grants.presence_write {
            self.reply_error(
                p,
                "You do not have permissions to track presence on this channel",
            );
            return;
        }
        if !self
            .shared
            .presence_allowed(self.config.limits.max_presence_events_per_second)
        {
            self.reply_error(p, "Too many presence messages per second");
            return;
        }
        let (conn, key, hub_ch, topic) = (
            self.conn.id,
            c.presence_key.clone(),
            c.hub_channel.clone(),
            c.topic.clone(),
        );
        let diff = match msg.get("event").and_then(Value::as_str) {
            Some("track") => {
                let payload = match msg.get("payload") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(m)) => m.clone(),
                    Some(_) => {
                        self.reply_error(p, "Presence track payload must be a map");
                        return;
                    }
                };
                self.shared
                    .presences
                    .with(&hub_ch, |pr| pr.track(conn, &key, payload))
            }
            Some("untrack") => self.shared.presences.with(&hub_ch, |pr| pr.untrack(conn)),
            _ => {
                self.reply_error(
                    p,
                    "UnknownPresenceEvent: Presence event type not recognized",
                );
                return;
            }
        };
        self.reply(p, ReplyStatus::Ok, &wire::empty_object());
        if let Some(d) = diff {
            self.shared.presence_diff(&topic, &hub_ch, &d);
            self.shared.presence_changed(&hub_ch);
        }
    }

    /// `access_token`: ignored when unchanged, null or opaque; otherwise
    /// re-verified and policies re-evaluated. A refused token or lost read
    /// access sends a system message and closes the channel.
    pub(super) fn refresh(&mut self, p: &Push) {
        let Some(raw) = json_payload(p) else { return };
        let token = serde_json::from_str::<Map<String, Value>>(raw.get())
            .ok()
            .and_then(|m| {
                m.get("access_token")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        let Some(token) = token.filter(|t| !t.is_empty() && !Verifier::is_opaque(t)) else {
            return;
        };
        let Some(c) = self.chans.get(p.topic.as_str()) else {
            return;
        };
        if c.token == token {
            return;
        }
        let (private, sub_topic) = (c.private, c.sub_topic.clone());
        let claims = match self.verify(&token) {
            Ok(c) => c,
            Err(r) => {
                let msg = match &r {
                    JoinRefusal::InvalidToken { detail } => detail.clone(),
                    other => other.reason(),
                };
                self.system(&p.topic, ReplyStatus::Error, &msg);
                self.end_channel(&p.topic, ChannelEnd::AccessRevoked);
                return;
            }
        };
        let grants = if private {
            self.policy.grants(&sub_topic, &claims)
        } else {
            Grants::ALL
        };
        if !grants.can_join() {
            let r = JoinRefusal::Unauthorized {
                sub_topic: sub_topic.to_string(),
            };
            self.system(&p.topic, ReplyStatus::Error, &r.reason());
            self.end_channel(&p.topic, ChannelEnd::AccessRevoked);
            return;
        }
        if let Some(c) = self.chans.get_mut(p.topic.as_str()) {
            c.expires = expiry(&claims);
            c.token = token;
            c.claims = claims;
            c.grants = grants;
        }
    }
}
