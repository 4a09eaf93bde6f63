//! State shared by every Pusher session and REST call, and the channel
//! operations both need.
//!
//! Owns: the hub, the current app registry (swapped on reload), the webhook
//! queue and the drain settings. Receives: join/leave/publish requests from
//! `session` and `rest`. Hands on: the protocol messages those transitions
//! imply (member_added/removed, subscription_count, cache replay) to the hub,
//! and the matching webhook events to the webhook queue.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use std::collections::HashMap;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::app::{App, AppRegistry, WebhookKind};
use super::channel::{Access, ChannelKind};
use super::protocol;
use super::webhooks::{WebhookEvent, Webhooks};
use crate::cluster::{Cluster, Transitions};
use crate::hub::{
    AppHub, ConnRef, Delivery, Frames, Hub, Joined, Left, Member, MemberJoin, Members, Message,
};
use crate::shutdown::Shutdown;
use crate::ws::CloseSpec;

/// Front-wide settings from `[pusher]`.
#[derive(Debug, Clone)]
pub struct FrontSettings {
    /// Sockets are closed with 4200 spread evenly at random over this window
    /// once draining starts.
    pub drain_spread: Duration,
    /// A path prefix in front of `/app` and `/apps` (Reverb's
    /// `REVERB_SERVER_PATH`), stripped before signatures are checked.
    pub path_prefix: Option<Arc<str>>,
}

impl Default for FrontSettings {
    fn default() -> Self {
        FrontSettings {
            drain_spread: Duration::from_secs(5),
            path_prefix: None,
        }
    }
}

/// Channels up to this many subscribers get every subscription_count.
pub(crate) const COUNT_DIRECT: usize = 100;
/// Larger channels get at most one subscription_count per this window.
pub(crate) const COUNT_WINDOW: Duration = Duration::from_secs(2);

/// Per (app, channel): when the last count went out, and whether a delayed
/// one is scheduled.
pub(crate) type CountThrottle = Arc<Mutex<HashMap<(Arc<str>, Arc<str>), (Option<Instant>, bool)>>>;

fn send_count(webhooks: &Webhooks, app: &Arc<App>, hub: &AppHub, name: &Arc<str>, n: usize) {
    hub.deliver(
        name,
        &Frames::One(protocol::subscription_count(name, n)),
        None,
    );
    let mut ev = WebhookEvent::new(WebhookKind::SubscriptionCount, name);
    ev.subscription_count = Some(n);
    webhooks.emit(app, ev);
}

/// Shared by all sessions and REST calls.
pub(crate) struct Shared {
    pub(crate) hub: Arc<Hub>,
    pub(crate) apps: ArcSwap<AppRegistry>,
    pub(crate) settings: ArcSwap<FrontSettings>,
    pub(crate) webhooks: Webhooks,
    pub(crate) shutdown: Shutdown,
    pub(crate) counts: CountThrottle,
    /// Per app id: the current REST rate-limit window's start and calls.
    pub(crate) rest_windows: Mutex<HashMap<Arc<str>, (Instant, u32)>>,
    /// This node's part of the cluster (`[cluster]`): it then decides
    /// occupied/vacated and member added/removed cluster-wide
    /// ([`ClusterTransitions`]) and answers presence joins.
    pub(crate) cluster: OnceLock<Arc<Cluster>>,
    /// Per app id: cancelled when a reload removes the app, so its
    /// sockets (and only its) close with 4200, spread over `drain_spread`.
    pub(crate) removals: Mutex<HashMap<Arc<str>, CancellationToken>>,
}

impl Shared {
    /// The token a socket of app `id` watches: cancelled when a reload
    /// removes the app. Already cancelled when the app is gone from the
    /// current registry (a socket that raced the reload).
    pub(crate) fn removal(&self, id: &Arc<str>) -> CancellationToken {
        let token = self.removals.lock().entry(id.clone()).or_default().clone();
        if self.apps.load().by_id(id).is_none() {
            token.cancel();
        }
        token
    }

    /// After a reload swapped in `apps`: the sockets of every app no
    /// longer in it are told to close. Returns how many apps were removed.
    pub(crate) fn retire_removed(&self, apps: &AppRegistry) -> usize {
        let mut removals = self.removals.lock();
        let before = removals.len();
        removals.retain(|id, token| {
            let keep = apps.by_id(id).is_some();
            if !keep {
                tracing::info!(app = %id, "app removed from the config; closing its sockets (4200, spread)");
                token.cancel();
            }
            keep
        });
        before - removals.len()
    }

    /// The app hub of `app`.
    pub(crate) fn app_hub(&self, app: &App) -> Arc<AppHub> {
        self.hub.app(&app.id)
    }

    /// Counts one REST call against the app's `api_rate_limit` (fixed
    /// windows). Over the limit: `Err` with the time until the window ends.
    pub(crate) fn rest_call_allowed(&self, app: &App) -> Result<(), Duration> {
        let Some(rl) = app.api_rate_limit else {
            return Ok(());
        };
        let now = Instant::now();
        let mut windows = self.rest_windows.lock();
        let w = windows.entry(app.id.clone()).or_insert((now, 0));
        let age = now.duration_since(w.0);
        if age >= rl.per {
            *w = (now, 0);
        } else if w.1 >= rl.max {
            return Err(rl.per - age);
        }
        w.1 += 1;
        Ok(())
    }

    /// After a successful subscribe: occupied webhook, member_added to the
    /// others, subscription_count.
    pub(crate) fn after_join(
        &self,
        app: &Arc<App>,
        hub: &Arc<AppHub>,
        (name, kind): (&Arc<str>, ChannelKind),
        conn: &ConnRef,
        joined: &Joined,
        member: Option<&Member>,
    ) {
        if let Some(c) = self.cluster.get() {
            match member {
                Some(_) => c.presence_joined(&app.id, name, conn),
                None => c.changed(&app.id, name),
            }
            self.count_changed(app, hub, name, kind, joined.subscription_count);
            return;
        }
        if joined.occupied {
            self.webhooks
                .emit(app, WebhookEvent::new(WebhookKind::ChannelOccupied, name));
        }
        if let (Some((MemberJoin::Added, _)), Some(m)) = (&joined.presence, member) {
            let f = protocol::member_added(name, &m.user_id, &m.info);
            hub.deliver(name, &Frames::One(f), Some(&conn.socket_id));
            let mut ev = WebhookEvent::new(WebhookKind::MemberAdded, name);
            ev.user_id = Some(m.user_id.clone());
            self.webhooks.emit(app, ev);
        }
        self.count_changed(app, hub, name, kind, joined.subscription_count);
    }

    /// After an unsubscribe or disconnect: member_removed, vacated webhook,
    /// subscription_count.
    pub(crate) fn after_leave(
        &self,
        app: &Arc<App>,
        hub: &Arc<AppHub>,
        name: &Arc<str>,
        kind: ChannelKind,
        left: &Left,
    ) {
        if let Some(c) = self.cluster.get() {
            c.changed(&app.id, name);
            if left.vacated {
                self.counts.lock().remove(&(app.id.clone(), name.clone()));
            } else {
                self.count_changed(app, hub, name, kind, left.subscription_count);
            }
            return;
        }
        if let Some(uid) = &left.member_removed {
            hub.deliver(
                name,
                &Frames::One(protocol::member_removed(name, uid)),
                None,
            );
            let mut ev = WebhookEvent::new(WebhookKind::MemberRemoved, name);
            ev.user_id = Some(uid.clone());
            self.webhooks.emit(app, ev);
        }
        if left.vacated {
            self.counts.lock().remove(&(app.id.clone(), name.clone()));
            self.webhooks
                .emit(app, WebhookEvent::new(WebhookKind::ChannelVacated, name));
        } else {
            self.count_changed(app, hub, name, kind, left.subscription_count);
        }
    }

    /// Announces a new subscription count. Small channels hear every
    /// change; above [`COUNT_DIRECT`] subscribers a channel gets at most one
    /// count per [`COUNT_WINDOW`] (the last value is always delivered), so a
    /// 10k-subscriber join wave costs O(n) frames, not O(n²).
    fn count_changed(
        &self,
        app: &Arc<App>,
        hub: &Arc<AppHub>,
        name: &Arc<str>,
        kind: ChannelKind,
        n: usize,
    ) {
        if !app.subscription_count || kind.access == Access::Presence {
            return;
        }
        if n <= COUNT_DIRECT {
            send_count(&self.webhooks, app, hub, name, n);
            return;
        }
        let now = Instant::now();
        let key = (app.id.clone(), name.clone());
        let mut map = self.counts.lock();
        let entry = map.entry(key.clone()).or_insert((None, false));
        match *entry {
            (_, true) => {}
            (Some(last), false) if now.duration_since(last) < COUNT_WINDOW => {
                entry.1 = true;
                let at = last + COUNT_WINDOW;
                let (counts, webhooks) = (self.counts.clone(), self.webhooks.clone());
                let (app, hub, name) = (app.clone(), hub.clone(), name.clone());
                tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    let n = hub.channel_info(&name).map(|c| c.subscription_count);
                    match n {
                        Some(n) => {
                            counts.lock().insert(key, (Some(Instant::now()), false));
                            send_count(&webhooks, &app, &hub, &name, n);
                        }
                        None => {
                            counts.lock().remove(&key);
                        }
                    }
                });
            }
            _ => {
                *entry = (Some(now), false);
                drop(map);
                send_count(&self.webhooks, app, hub, name, n);
            }
        }
    }

    /// Publishes an app event (its frames already encoded in `msg`),
    /// caching it on cache channels.
    pub(crate) fn publish(
        &self,
        app: &App,
        hub: &AppHub,
        kind: ChannelKind,
        msg: &Message<'_>,
    ) -> Delivery {
        if kind.cache {
            hub.cache_put(msg.channel, msg.frames.clone(), app.cache_ttl);
        }
        hub.publish(msg)
    }

    /// Closes every connection of `user_id` (signed in or present on a
    /// presence channel) with 4009; returns how many.
    pub(crate) fn terminate_user(&self, app: &App, user_id: &str) -> usize {
        if let Some(c) = self.cluster.get() {
            c.terminate_user(&app.id, user_id);
        }
        self.terminate_local(app, user_id)
    }

    /// Like [`Shared::terminate_user`] for this node's connections only.
    pub(crate) fn terminate_local(&self, app: &App, user_id: &str) -> usize {
        let hub = self.app_hub(app);
        let mut conns = hub.user_conns(user_id);
        for c in hub.presence_conns(user_id) {
            if !conns.iter().any(|o| o.id == c.id) {
                conns.push(c);
            }
        }
        let e = protocol::SessionError::Terminated;
        for c in &conns {
            c.tx.close_now(CloseSpec {
                code: 4009,
                reason: e.to_string().into(),
            });
        }
        conns.len()
    }
}

/// The Pusher front's side of the cluster's decisions: the webhooks (on
/// the one node that decided) and the `pusher_internal:` frames every
/// node's subscribers get.
pub(crate) struct ClusterTransitions {
    pub(crate) shared: Weak<Shared>,
}

impl ClusterTransitions {
    fn emit(&self, app: &str, kind: WebhookKind, channel: &str, user: Option<&str>) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let Some(app) = shared.apps.load().by_id(app).cloned() else {
            return;
        };
        let mut ev = WebhookEvent::new(kind, &Arc::from(channel));
        ev.user_id = user.map(Arc::from);
        shared.webhooks.emit(&app, ev);
    }
}

impl Transitions for ClusterTransitions {
    fn occupied(&self, app: &str, channel: &str) {
        self.emit(app, WebhookKind::ChannelOccupied, channel, None);
    }

    fn vacated(&self, app: &str, channel: &str) {
        self.emit(app, WebhookKind::ChannelVacated, channel, None);
    }

    fn member_added(&self, app: &str, channel: &str, m: &Member) -> Option<Frames> {
        self.emit(app, WebhookKind::MemberAdded, channel, Some(&m.user_id));
        Some(Frames::One(protocol::member_added(
            channel, &m.user_id, &m.info,
        )))
    }

    fn member_removed(&self, app: &str, channel: &str, user_id: &str) -> Option<Frames> {
        self.emit(app, WebhookKind::MemberRemoved, channel, Some(user_id));
        Some(Frames::One(protocol::member_removed(channel, user_id)))
    }

    fn presence_state(&self, _app: &str, channel: &str, conn: &ConnRef, members: &Members) {
        let _ = conn
            .tx
            .send_reply(protocol::presence_subscription_succeeded(channel, members));
    }

    fn remote_published(&self, app: &str, msg: &Message<'_>) {
        if !super::channel::kind_of(msg.channel).cache {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if let Some(app) = shared.apps.load().by_id(app) {
            // The last event of a cache channel is every node's: a
            // subscriber here gets the one published on any node.
            shared
                .app_hub(app)
                .cache_put(msg.channel, msg.frames.clone(), app.cache_ttl);
        }
    }

    fn terminate(&self, app: &str, user_id: &str) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if let Some(app) = shared.apps.load().by_id(app).cloned() {
            shared.terminate_local(&app, user_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Conn;
    use crate::pusher::channel::kind_of;
    use crate::ws::{QueueLimits, outbound};

    #[tokio::test(start_paused = true)]
    async fn subscription_count_is_throttled_on_big_channels() {
        let mut app = App::new("1", "k", "s");
        app.subscription_count = true;
        let app = Arc::new(app);
        let shared = Shared {
            hub: Arc::new(Hub::default()),
            apps: ArcSwap::from_pointee(AppRegistry::new([App::clone(&app)])),
            settings: ArcSwap::from_pointee(FrontSettings::default()),
            webhooks: Webhooks::disabled(),
            shutdown: Shutdown::new(),
            counts: Default::default(),
            rest_windows: Default::default(),
            cluster: OnceLock::new(),
            removals: Default::default(),
        };
        let hub = shared.app_hub(&app);
        let name: Arc<str> = Arc::from("big");
        let limits = QueueLimits {
            max_messages: 100_000,
            max_bytes: usize::MAX,
            ..QueueLimits::default()
        };
        let (first_tx, _first_rx) = outbound(limits.clone());
        let mut rxs = Vec::new();
        for i in 0..300 {
            let tx = if i == 0 {
                first_tx.clone()
            } else {
                let (tx, rx) = outbound(limits.clone());
                rxs.push(rx);
                tx
            };
            let conn = Arc::new(Conn {
                id: shared.hub.next_conn_id(),
                socket_id: Arc::from(format!("{i}.0")),
                codec: 0,
                tx,
            });
            let joined = hub
                .subscribe(&name, &conn)
                .unwrap_or_else(|e| panic!("{e}"));
            shared.after_join(&app, &hub, (&name, kind_of(&name)), &conn, &joined, None);
        }
        // 100 direct counts, one at 101, the rest coalesced into one later.
        assert_eq!(first_tx.queued().0, 101);
        tokio::time::sleep(COUNT_WINDOW * 2).await;
        assert_eq!(first_tx.queued().0, 102);
    }
}
