//! State shared by every Pusher session and REST call, and the channel
//! operations both need.
//!
//! Owns: the hub, the current app registry (swapped on reload), the webhook
//! queue and the drain settings. Receives: join/leave/publish requests from
//! `session` and `rest`. Hands on: the protocol messages those transitions
//! imply (member_added/removed, subscription_count, cache replay) to the hub,
//! and the matching webhook events to the webhook queue.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::app::{App, AppRegistry, WebhookKind};
use super::channel::{Access, ChannelKind};
use super::protocol;
use super::webhooks::{WebhookEvent, Webhooks};
use crate::hub::{AppHub, ConnRef, Delivery, Frames, Hub, Joined, Left, Member, MemberJoin};
use crate::shutdown::Shutdown;
use crate::ws::{CloseSpec, Frame};

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

/// Shared by all sessions and REST calls.
pub(crate) struct Shared {
    pub(crate) hub: Hub,
    pub(crate) apps: ArcSwap<AppRegistry>,
    pub(crate) settings: ArcSwap<FrontSettings>,
    pub(crate) webhooks: Webhooks,
    pub(crate) shutdown: Shutdown,
}

impl Shared {
    /// The app hub of `app`.
    pub(crate) fn app_hub(&self, app: &App) -> Arc<AppHub> {
        self.hub.app(&app.id)
    }

    /// After a successful subscribe: occupied webhook, member_added to the
    /// others, subscription_count.
    pub(crate) fn after_join(
        &self,
        app: &Arc<App>,
        hub: &AppHub,
        (name, kind): (&Arc<str>, ChannelKind),
        conn: &ConnRef,
        joined: &Joined,
        member: Option<&Member>,
    ) {
        if joined.occupied {
            self.webhooks
                .emit(app, WebhookEvent::new(WebhookKind::ChannelOccupied, name));
        }
        if let (Some((MemberJoin::Added, _)), Some(m)) = (&joined.presence, member) {
            let f = protocol::member_added(name, &m.user_id, &m.info);
            hub.publish(name, &Frames::One(f), Some(&conn.socket_id));
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
        hub: &AppHub,
        name: &Arc<str>,
        kind: ChannelKind,
        left: &Left,
    ) {
        if let Some(uid) = &left.member_removed {
            hub.publish(
                name,
                &Frames::One(protocol::member_removed(name, uid)),
                None,
            );
            let mut ev = WebhookEvent::new(WebhookKind::MemberRemoved, name);
            ev.user_id = Some(uid.clone());
            self.webhooks.emit(app, ev);
        }
        if left.vacated {
            self.webhooks
                .emit(app, WebhookEvent::new(WebhookKind::ChannelVacated, name));
        } else {
            self.count_changed(app, hub, name, kind, left.subscription_count);
        }
    }

    fn count_changed(
        &self,
        app: &Arc<App>,
        hub: &AppHub,
        name: &Arc<str>,
        kind: ChannelKind,
        n: usize,
    ) {
        if !app.subscription_count || kind.access == Access::Presence {
            return;
        }
        hub.publish(
            name,
            &Frames::One(protocol::subscription_count(name, n)),
            None,
        );
        let mut ev = WebhookEvent::new(WebhookKind::SubscriptionCount, name);
        ev.subscription_count = Some(n);
        self.webhooks.emit(app, ev);
    }

    /// Publishes an already-encoded event on `channel`, caching it on cache
    /// channels.
    pub(crate) fn publish(
        &self,
        app: &App,
        hub: &AppHub,
        channel: &str,
        kind: ChannelKind,
        frame: Frame,
        except: Option<&str>,
    ) -> Delivery {
        let frames = Frames::One(frame);
        if kind.cache {
            hub.cache_put(channel, frames.clone(), app.cache_ttl);
        }
        hub.publish(channel, &frames, except)
    }

    /// Closes every connection of `user_id` (signed in or present on a
    /// presence channel) with 4009; returns how many.
    pub(crate) fn terminate_user(&self, app: &App, user_id: &str) -> usize {
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
