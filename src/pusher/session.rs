//! One Pusher WebSocket connection, from upgrade to cleanup.
//!
//! Owns: the connection's subscriptions, its signed-in user and watchlist,
//! its liveness timers (ping after `ping_interval` — by default the announced
//! `activity_timeout` — of client silence, 4201 after `pong_timeout` more), the sign-in deadline, the client-event rate limit,
//! and its place in the drain spread. Receives: inbound frames from the
//! socket's stream half and the edge's shutdown signal. Hands on: replies
//! through the socket's outbound queue (written by the one writer task),
//! hub operations, and webhook events; on exit it leaves every channel so
//! member_removed/vacated fire exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, sleep_until};

use super::app::{App, WebhookKind};
use super::auth;
use super::channel::{self, Access, ChannelKind};
use super::protocol::{self, Action, ClientMessage, SessionError, Watch};
use super::state::Shared;
use super::webhooks::WebhookEvent;
use crate::hub::{
    AppHub, Conn, ConnRef, DataKind, Frames, Member, Message, Origin, SubscribeError,
};
use crate::ws::{self, CloseSpec, Frame, Inbound, QueueLimits, ReadError};

/// Deadline for one write (batch + flush) to the peer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing socket may take to flush its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// Longest client event name.
const MAX_EVENT_NAME: usize = 200;
/// Longest presence user id.
const MAX_USER_ID: usize = 128;

struct Sub {
    kind: ChannelKind,
    /// The presence user id this socket joined as.
    user_id: Option<Arc<str>>,
}

struct SignedIn {
    id: Arc<str>,
    watching: Vec<Arc<str>>,
}

struct Session {
    shared: Arc<Shared>,
    app: Arc<App>,
    hub: Arc<AppHub>,
    conn: ConnRef,
    subs: HashMap<Arc<str>, Sub>,
    user: Option<SignedIn>,
    window: (Instant, u32),
}

/// Runs a session over an upgraded stream. `pre` is the outcome of the
/// handshake checks (app, protocol, origin): an error is sent and the
/// socket closed with its code, as pusher-js expects.
pub(crate) async fn run<S>(
    shared: Arc<Shared>,
    io: S,
    pre: Result<Arc<App>, SessionError>,
    max_message_size: usize,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let socket = ws::server_socket(io, max_message_size).await;
    let (sink, mut stream) = socket.split();
    let limits = pre
        .as_ref()
        .map_or_else(|_| QueueLimits::default(), |a| a.queue_limits());
    let (tx, rx) = ws::outbound(limits);
    let mut writer = tokio::spawn(ws::run_writer(sink, rx, WRITE_TIMEOUT));

    let refuse = |e: SessionError| {
        if let Some(f) = error_frame_for_close(&e) {
            let _ = tx.send_reply(f);
        }
        if let Action::Close(code) = e.action() {
            tx.close(CloseSpec {
                code,
                reason: e.to_string().into(),
            });
        }
    };
    // A socket upgraded while the edge drains is told to reconnect elsewhere.
    let pre = pre.and_then(|app| {
        if shared.shutdown.is_draining() {
            Err(SessionError::ShuttingDown)
        } else {
            Ok(app)
        }
    });
    let app = match pre {
        Ok(app) => app,
        Err(e) => {
            crate::metrics::handshake_failed("pusher", e.reason());
            refuse(e);
            let _ = tokio::time::timeout(CLOSE_WAIT, &mut writer).await;
            return;
        }
    };
    let hub = shared.app_hub(&app);
    let _slot = match hub.connect(app.max_connections) {
        Ok(slot) => slot,
        Err(_) => {
            crate::metrics::handshake_failed("pusher", SessionError::OverQuota.reason());
            refuse(SessionError::OverQuota);
            let _ = tokio::time::timeout(CLOSE_WAIT, &mut writer).await;
            return;
        }
    };
    let socket_id: Arc<str> = Arc::from(auth::socket_id());
    let conn = Arc::new(Conn {
        id: shared.hub.next_conn_id(),
        socket_id: socket_id.clone(),
        codec: 0,
        tx: tx.clone(),
    });
    let _ = tx.send_reply(protocol::connection_established(
        &socket_id,
        app.activity_timeout.as_secs().max(1),
    ));
    let mut s = Session {
        shared: shared.clone(),
        app: app.clone(),
        hub,
        conn,
        subs: HashMap::new(),
        user: None,
        window: (Instant::now(), 0),
    };

    let ping_after = app.ping_after();
    let timer = sleep_until(Instant::now() + ping_after);
    tokio::pin!(timer);
    let mut pinged = false;
    let signin_deadline = app.user_authentication_timeout.map(|t| Instant::now() + t);
    let signin = sleep_until(signin_deadline.unwrap_or_else(Instant::now));
    tokio::pin!(signin);
    let drain = sleep_until(Instant::now());
    tokio::pin!(drain);
    let mut draining = false;
    // Why the spread close comes: the drain, or a reload removing the app.
    let mut closing = SessionError::ShuttingDown;
    let removed = shared.removal(&app.id);
    let spread_close = |drain: std::pin::Pin<&mut tokio::time::Sleep>| {
        let spread = shared.settings.load().drain_spread;
        let jitter = spread.mul_f64(rand::random::<f64>());
        drain.reset(Instant::now() + jitter);
    };

    let end: Option<SessionError> = loop {
        tokio::select! {
            biased;
            _ = &mut writer => break None,
            _ = shared.shutdown.aborted() => break Some(SessionError::ShuttingDown),
            _ = shared.shutdown.draining(), if !draining => {
                draining = true;
                spread_close(drain.as_mut());
            }
            _ = removed.cancelled(), if !draining => {
                draining = true;
                closing = SessionError::AppRemoved;
                spread_close(drain.as_mut());
            }
            _ = &mut drain, if draining => break Some(std::mem::replace(&mut closing, SessionError::ShuttingDown)),
            _ = &mut signin, if signin_deadline.is_some() && s.user.is_none() => {
                break Some(SessionError::SigninTimeout);
            }
            _ = &mut timer => {
                if pinged {
                    break Some(SessionError::PongTimeout);
                }
                pinged = true;
                let _ = tx.send_reply(protocol::ping());
                timer.as_mut().reset(Instant::now() + app.pong_timeout);
            }
            // Backpressure: the next request is read only once the
            // replies to the last ones have room (never an eviction).
            msg = async { tx.room().await; ws::next_inbound(&mut stream).await } => {
                pinged = false;
                timer.as_mut().reset(Instant::now() + ping_after);
                let res = match msg {
                    Ok(Inbound::Text(t)) => s.on_text(t.as_bytes()),
                    Ok(Inbound::Binary(_)) => Err(SessionError::InvalidMessage(protocol::ParseError::NotJson)),
                    Ok(Inbound::Alive) => Ok(()),
                    Ok(Inbound::Closed(_)) => {
                        // Answer the peer's close frame so its close is clean.
                        tx.close(CloseSpec::new(1000, ""));
                        let _ = tokio::time::timeout(CLOSE_WAIT, &mut writer).await;
                        break None;
                    }
                    Err(ReadError::Io) => break None,
                    Err(ReadError::TooLarge { size, max }) => Err(SessionError::MessageTooLarge { size, max }),
                    Err(ReadError::Protocol) => Err(SessionError::WebSocketProtocol),
                    Err(ReadError::InvalidUtf8) => Err(SessionError::InvalidUtf8),
                };
                if let Err(e) = res {
                    if e.is_auth_failure() {
                        crate::metrics::auth_failed("pusher", e.reason());
                    }
                    match e.action() {
                        Action::Close(_) => break Some(e),
                        Action::Error(_) | Action::SubscriptionError { .. } => {
                            tracing::debug!(socket_id = %s.conn.socket_id, error = %e, "pusher client error");
                            if let Some(f) = e.to_frame() {
                                s.send(f);
                            }
                        }
                    }
                }
            }
        }
    };
    s.cleanup();
    if let Some(e) = end {
        refuse(e);
        let _ = tokio::time::timeout(CLOSE_WAIT, &mut writer).await;
    }
    writer.abort();
}

/// Before a close, Pusher also sends the error as `pusher:error` so clients
/// can log the reason; not for drains and liveness closes, which are routine.
fn error_frame_for_close(e: &SessionError) -> Option<Frame> {
    match e.action() {
        Action::Close(code) if (4000..4100).contains(&code) => {
            Some(protocol::error(Some(code), &e.to_string()))
        }
        _ => None,
    }
}

impl Session {
    /// Queues a frame to this socket in answer to its own request: never
    /// an eviction, the loop reads the next request only once there is
    /// room (see `ws::queue`).
    fn send(&self, f: Frame) {
        let _ = self.conn.tx.send_reply(f);
    }

    fn on_text(&mut self, text: &[u8]) -> Result<(), SessionError> {
        match protocol::parse(text).map_err(SessionError::InvalidMessage)? {
            ClientMessage::Subscribe {
                channel,
                auth,
                channel_data,
            } => self.subscribe(channel, auth, channel_data),
            ClientMessage::Unsubscribe { channel } => {
                self.unsubscribe(&channel);
                Ok(())
            }
            ClientMessage::Ping => {
                self.send(protocol::pong());
                Ok(())
            }
            ClientMessage::Pong | ClientMessage::Other { .. } => Ok(()),
            ClientMessage::Signin { auth, user_data } => self.signin(&auth, &user_data),
            ClientMessage::ClientEvent {
                event,
                channel,
                data,
            } => self.client_event(event, channel, data),
        }
    }

    fn subscribe(
        &mut self,
        channel: String,
        auth: Option<String>,
        channel_data: Option<String>,
    ) -> Result<(), SessionError> {
        let kind = channel::classify(&channel).map_err(|source| SessionError::InvalidChannel {
            channel: channel.clone(),
            source,
        })?;
        if self.subs.contains_key(channel.as_str()) {
            // Idempotent: confirm again.
            let f = match kind.access {
                Access::Presence => {
                    protocol::presence_subscription_succeeded(&channel, &self.hub.members(&channel))
                }
                _ => protocol::subscription_succeeded(&channel),
            };
            self.send(f);
            return Ok(());
        }
        if let Some(max) = self.app.max_subscriptions
            && self.subs.len() >= max
        {
            return Err(SessionError::TooManySubscriptions { channel, max });
        }
        let creds = self.app.creds();
        let socket_id = &self.conn.socket_id;
        let mut member = None;
        match kind.access {
            Access::Public => {}
            Access::ServerToUser => {
                let mine = self.user.as_ref().map(|u| &*u.id);
                if mine.is_none() || mine != channel::server_to_user_id(&channel) {
                    return Err(SessionError::NotYourUserChannel { channel });
                }
            }
            Access::Private | Access::PrivateEncrypted => {
                if let Err(source) =
                    auth::verify_channel(creds, socket_id, &channel, None, auth.as_deref())
                {
                    return Err(SessionError::SubscriptionAuth { channel, source });
                }
            }
            Access::Presence => {
                let Some(data) = channel_data else {
                    return Err(SessionError::InvalidChannelData { channel });
                };
                if let Err(source) =
                    auth::verify_channel(creds, socket_id, &channel, Some(&data), auth.as_deref())
                {
                    return Err(SessionError::SubscriptionAuth { channel, source });
                }
                let Some(cd) = protocol::parse_channel_data(&data) else {
                    return Err(SessionError::InvalidChannelData { channel });
                };
                if cd.user_id.len() > MAX_USER_ID {
                    return Err(SessionError::MemberTooLarge {
                        channel,
                        what: "user_id",
                        size: cd.user_id.len(),
                        max: MAX_USER_ID,
                    });
                }
                if cd.user_info.len() > self.app.max_presence_user_info {
                    return Err(SessionError::MemberTooLarge {
                        channel,
                        what: "user_info",
                        size: cd.user_info.len(),
                        max: self.app.max_presence_user_info,
                    });
                }
                member = Some(Member {
                    user_id: Arc::from(cd.user_id),
                    info: Bytes::from(cd.user_info),
                });
            }
        }
        let joined = match &member {
            Some(m) => self.hub.subscribe_member(
                &channel,
                &self.conn,
                m.clone(),
                Some(self.app.max_presence_members),
            ),
            None => self.hub.subscribe(&channel, &self.conn),
        };
        let joined = match joined {
            Ok(j) => j,
            Err(SubscribeError::PresenceFull { max }) => {
                return Err(SessionError::PresenceFull { channel, max });
            }
            Err(SubscribeError::AlreadySubscribed) => return Ok(()),
        };
        let name: Arc<str> = Arc::from(channel);
        self.subs.insert(
            name.clone(),
            Sub {
                kind,
                user_id: member.as_ref().map(|m| m.user_id.clone()),
            },
        );
        let reply = match &joined.presence {
            // In a cluster the member list is every node's: the cluster
            // answers once it has recorded this member (`after_join`).
            Some(_) if self.shared.cluster.get().is_some() => None,
            Some((_, members)) => Some(protocol::presence_subscription_succeeded(&name, members)),
            None => Some(protocol::subscription_succeeded(&name)),
        };
        if let Some(reply) = reply {
            self.send(reply);
        }
        if kind.cache {
            match self.hub.cache_get(&name) {
                Some(frames) => {
                    if let Some(f) = frames.for_codec(self.conn.codec) {
                        self.send(f.clone());
                    }
                }
                None => {
                    self.send(protocol::cache_miss(&name));
                    self.shared
                        .webhooks
                        .emit(&self.app, WebhookEvent::new(WebhookKind::CacheMiss, &name));
                }
            }
        }
        self.shared.after_join(
            &self.app,
            &self.hub,
            (&name, kind),
            &self.conn,
            &joined,
            member.as_ref(),
        );
        Ok(())
    }

    fn unsubscribe(&mut self, channel: &str) {
        let Some((name, sub)) = self.subs.remove_entry(channel) else {
            return;
        };
        if let Some(left) = self.hub.unsubscribe(&name, self.conn.id) {
            self.shared
                .after_leave(&self.app, &self.hub, &name, sub.kind, &left);
        }
    }

    fn signin(&mut self, auth_token: &str, user_data: &str) -> Result<(), SessionError> {
        auth::verify_user(
            self.app.creds(),
            &self.conn.socket_id,
            user_data,
            Some(auth_token),
        )
        .map_err(SessionError::SigninAuth)?;
        let ud = protocol::parse_user_data(user_data).ok_or(SessionError::SigninUserData)?;
        if self.app.watchlist && ud.watchlist.len() > self.app.max_watchlist {
            return Err(SessionError::WatchlistTooLarge {
                size: ud.watchlist.len(),
                max: self.app.max_watchlist,
            });
        }
        self.sign_out();
        let id: Arc<str> = Arc::from(ud.id);
        if self.hub.bind_user(&id, &self.conn) == crate::hub::UserChange::Online
            && self.app.watchlist
        {
            self.tell_watchers(&id, Watch::Online);
        }
        self.send(protocol::signin_success(user_data));
        let mut watching = Vec::new();
        if self.app.watchlist && !ud.watchlist.is_empty() {
            watching = ud.watchlist.into_iter().map(Arc::from).collect();
            let start = self.hub.watch(&self.conn, &watching);
            if !start.online.is_empty() {
                self.send(protocol::watchlist_event(Watch::Online, &start.online));
            }
        }
        self.user = Some(SignedIn { id, watching });
        Ok(())
    }

    fn sign_out(&mut self) {
        let Some(user) = self.user.take() else { return };
        self.hub.unwatch(self.conn.id, &user.watching);
        if self.hub.unbind_user(&user.id, self.conn.id) == crate::hub::UserChange::Offline
            && self.app.watchlist
        {
            self.tell_watchers(&user.id, Watch::Offline);
        }
    }

    fn tell_watchers(&self, id: &Arc<str>, what: Watch) {
        let watchers = self.hub.watchers(id);
        if watchers.is_empty() {
            return;
        }
        let f = protocol::watchlist_event(what, std::slice::from_ref(id));
        for w in watchers {
            if let Err(ws::SendError::Full { .. }) = w.tx.try_send(f.clone()) {
                w.tx.evict_slow();
            }
        }
    }

    fn client_event(
        &mut self,
        event: String,
        channel: String,
        data: String,
    ) -> Result<(), SessionError> {
        if !self.app.client_events {
            return Err(SessionError::ClientEventsDisabled);
        }
        let kind = channel::kind_of(&channel);
        if !kind.allows_client_events() {
            return Err(SessionError::ClientEventsNotAllowed { channel });
        }
        let Some(sub) = self.subs.get(channel.as_str()) else {
            return Err(SessionError::NotSubscribed { channel });
        };
        if event.len() > MAX_EVENT_NAME {
            return Err(SessionError::ClientEventTooLarge {
                what: "name",
                size: event.len(),
                max: MAX_EVENT_NAME,
            });
        }
        // What the webhook reports and the size limit counts: a JSON string
        // decoded, any other value as its text.
        let data_str = if data.starts_with('"') {
            serde_json::from_str::<String>(&data).unwrap_or_else(|_| data.clone())
        } else {
            data.clone()
        };
        if data_str.len() > self.app.max_event_size {
            return Err(SessionError::ClientEventTooLarge {
                what: "data",
                size: data_str.len(),
                max: self.app.max_event_size,
            });
        }
        if let Some(limit) = self.app.client_event_rate {
            let now = Instant::now();
            if now.duration_since(self.window.0) >= limit.per {
                self.window = (now, 0);
            }
            self.window.1 += 1;
            if self.window.1 > limit.max {
                return Err(if limit.terminate {
                    SessionError::RateLimitedTerminate
                } else {
                    SessionError::RateLimited
                });
            }
        }
        let user_id = sub.user_id.clone();
        let frames = Frames::One(protocol::client_event(
            &channel,
            &event,
            &data,
            user_id.as_deref(),
        ));
        // The data is the JSON text the client sent; moved, not copied.
        let data = Bytes::from(data);
        let msg = Message {
            channel: &channel,
            event: &event,
            data: &data,
            kind: DataKind::Json,
            except: Some(&self.conn.socket_id),
            origin: Origin::Socket(&self.conn.socket_id),
            frames: &frames,
        };
        self.shared.publish(&self.app, &self.hub, kind, &msg);
        let name: Arc<str> = Arc::from(channel);
        let mut ev = WebhookEvent::new(WebhookKind::ClientEvent, &name);
        ev.event = Some(event);
        ev.data = Some(data_str);
        ev.socket_id = Some(self.conn.socket_id.clone());
        ev.user_id = user_id;
        self.shared.webhooks.emit(&self.app, ev);
        Ok(())
    }

    fn cleanup(&mut self) {
        let subs: Vec<(Arc<str>, Sub)> = self.subs.drain().collect();
        for (name, sub) in subs {
            if let Some(left) = self.hub.unsubscribe(&name, self.conn.id) {
                self.shared
                    .after_leave(&self.app, &self.hub, &name, sub.kind, &left);
            }
        }
        self.sign_out();
    }
}
