//! Unit tests of the hub: fan-out, exclusion, slow-consumer eviction,
//! presence de-duplication, transitions, namespacing, cache TTL, users and
//! the publish seam (observers).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::*;
use crate::ws::CloseSpec;
use crate::ws::queue::Work;
use crate::ws::{OutboundRx, QueueLimits, outbound};

fn conn(hub: &Hub, socket: &str, limits: QueueLimits) -> (ConnRef, OutboundRx) {
    let (tx, rx) = outbound(limits);
    let c = Arc::new(Conn {
        id: hub.next_conn_id(),
        socket_id: Arc::from(socket),
        codec: 0,
        tx,
    });
    (c, rx)
}

fn member(id: &str) -> Member {
    Member {
        user_id: Arc::from(id),
        info: Bytes::from(format!("{{\"name\":\"{id}\"}}")),
    }
}

fn text(s: &'static str) -> Frames {
    Frames::One(Frame::from(s))
}

/// Publishes `frames` as a REST event `e` with no data.
fn publish(app: &AppHub, channel: &str, frames: &Frames, except: Option<&str>) -> Delivery {
    app.publish(&Message {
        channel,
        event: "e",
        data: &Bytes::new(),
        kind: DataKind::Json,
        except,
        origin: Origin::Rest,
        frames,
    })
}

#[tokio::test]
async fn publish_reaches_all_but_excluded_and_shares_bytes() {
    let hub = Hub::default();
    let app = hub.app("1");
    let mut rxs = Vec::new();
    for i in 0..100 {
        let (c, rx) = conn(&hub, &format!("{i}.1"), QueueLimits::default());
        app.subscribe("news", &c).unwrap();
        rxs.push((c, rx));
    }
    let frames = Frames::One(Frame::from(String::from("payload")));
    let d = publish(&app, "news", &frames, Some("7.1"));
    assert_eq!(
        d,
        Delivery {
            delivered: 99,
            evicted: 0
        }
    );
    let Some(Frame::Text(original)) = frames.for_codec(0) else {
        unreachable!()
    };
    for (i, (c, rx)) in rxs.iter_mut().enumerate() {
        if i == 7 {
            assert_eq!(c.tx.queued(), (0, 0));
            continue;
        }
        match rx.next(Vec::new()).await {
            Work::Frames(f) => {
                let Frame::Text(t) = &f[0] else {
                    unreachable!()
                };
                // Same allocation, not a copy.
                assert_eq!(t.as_str().as_ptr(), original.as_str().as_ptr());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn slow_consumer_is_evicted_not_awaited() {
    let hub = Hub::default();
    let app = hub.app("1");
    let small = QueueLimits {
        max_messages: 2,
        ..QueueLimits::default()
    };
    let (slow, mut slow_rx) = conn(&hub, "1.1", small);
    let (fast, mut fast_rx) = conn(&hub, "2.2", QueueLimits::default());
    app.subscribe("c", &slow).unwrap();
    app.subscribe("c", &fast).unwrap();
    let mut evicted = 0;
    for _ in 0..5 {
        evicted += publish(&app, "c", &text("m"), None).evicted;
    }
    assert_eq!(evicted, 1, "evicted once, then its queue refuses as closed");
    assert!(slow.tx.is_closed());
    assert!(matches!(
        slow_rx.next(Vec::new()).await,
        Work::Close(CloseSpec { code: 4100, .. })
    ));
    match fast_rx.next(Vec::new()).await {
        Work::Frames(f) => assert_eq!(f.len(), 5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn occupied_and_vacated_transitions() {
    let hub = Hub::default();
    let app = hub.app("1");
    let (a, _ra) = conn(&hub, "1.1", QueueLimits::default());
    let (b, _rb) = conn(&hub, "2.2", QueueLimits::default());
    assert!(app.subscribe("c", &a).unwrap().occupied);
    let j = app.subscribe("c", &b).unwrap();
    assert!(!j.occupied);
    assert_eq!(j.subscription_count, 2);
    assert_eq!(
        app.subscribe("c", &b),
        Err(SubscribeError::AlreadySubscribed)
    );
    let l = app.unsubscribe("c", a.id).unwrap();
    assert!(!l.vacated);
    assert_eq!(app.unsubscribe("c", a.id), None);
    assert!(app.unsubscribe("c", b.id).unwrap().vacated);
    assert_eq!(app.channel_info("c"), None);
    assert!(app.channels("").is_empty());
}

#[test]
fn presence_dedupes_users_across_connections() {
    let hub = Hub::default();
    let app = hub.app("1");
    let (tab1, _r1) = conn(&hub, "1.1", QueueLimits::default());
    let (tab2, _r2) = conn(&hub, "2.2", QueueLimits::default());
    let (other, _r3) = conn(&hub, "3.3", QueueLimits::default());
    let j = app
        .subscribe_member("presence-r", &tab1, member("u1"), None)
        .unwrap();
    assert_eq!(j.presence.as_ref().unwrap().0, MemberJoin::Added);
    let j = app
        .subscribe_member("presence-r", &tab2, member("u1"), None)
        .unwrap();
    let (join, members) = j.presence.unwrap();
    assert_eq!(join, MemberJoin::AlreadyPresent);
    assert_eq!(members.len(), 1);
    app.subscribe_member("presence-r", &other, member("u2"), None)
        .unwrap();
    let info = app.channel_info("presence-r").unwrap();
    assert_eq!((info.subscription_count, info.user_count), (3, 2));
    assert_eq!(
        app.unsubscribe("presence-r", tab1.id)
            .unwrap()
            .member_removed,
        None
    );
    assert_eq!(
        app.unsubscribe("presence-r", tab2.id)
            .unwrap()
            .member_removed
            .as_deref(),
        Some("u1")
    );
    assert_eq!(app.members("presence-r").len(), 1);
    assert_eq!(app.presence_conns("u2").len(), 1);
}

#[test]
fn presence_limit_counts_users_not_connections() {
    let hub = Hub::default();
    let app = hub.app("1");
    let (a, _ra) = conn(&hub, "1.1", QueueLimits::default());
    let (b, _rb) = conn(&hub, "2.2", QueueLimits::default());
    let (c, _rc) = conn(&hub, "3.3", QueueLimits::default());
    app.subscribe_member("presence-x", &a, member("u1"), Some(1))
        .unwrap();
    app.subscribe_member("presence-x", &b, member("u1"), Some(1))
        .unwrap();
    assert_eq!(
        app.subscribe_member("presence-x", &c, member("u2"), Some(1)),
        Err(SubscribeError::PresenceFull { max: 1 })
    );
    assert_eq!(
        app.channel_info("presence-x").unwrap().subscription_count,
        2
    );
    // A refused first join leaves no empty channel behind.
    assert_eq!(
        app.subscribe_member("presence-y", &c, member("u2"), Some(0)),
        Err(SubscribeError::PresenceFull { max: 0 })
    );
    assert_eq!(app.channel_info("presence-y"), None);
}

#[test]
fn apps_are_namespaced() {
    let hub = Hub::default();
    let a = hub.app("A");
    let b = hub.app("B");
    let (c, _r) = conn(&hub, "1.1", QueueLimits::default());
    a.subscribe("x", &c).unwrap();
    assert_eq!(publish(&b, "x", &text("m"), None).delivered, 0);
    assert_eq!(publish(&a, "x", &text("m"), None).delivered, 1);
    assert!(Arc::ptr_eq(&a, &hub.app("A")));
    assert!(hub.existing_app("C").is_none());
}

#[test]
fn connection_cap() {
    let hub = Hub::default();
    let app = hub.app("1");
    let s1 = app.connect(Some(2)).unwrap();
    let _s2 = app.connect(Some(2)).unwrap();
    assert_eq!(app.connect(Some(2)).unwrap_err(), OverQuota { max: 2 });
    drop(s1);
    assert_eq!(app.connection_count(), 1);
    app.connect(Some(2)).unwrap();
}

#[tokio::test(start_paused = true)]
async fn cache_expires_after_ttl_even_without_subscribers() {
    let hub = Hub::default();
    let app = hub.app("1");
    app.cache_put("cache-x", text("last"), Duration::from_secs(10));
    assert!(app.cache_get("cache-x").is_some());
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(app.cache_get("cache-x").is_none());
    app.cache_put("cache-y", text("last"), Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(app.cache_sweep(), 1);
}

#[test]
fn users_online_offline_and_watchers() {
    let hub = Hub::default();
    let app = hub.app("1");
    let (t1, _r1) = conn(&hub, "1.1", QueueLimits::default());
    let (t2, _r2) = conn(&hub, "2.2", QueueLimits::default());
    let (w, _r3) = conn(&hub, "3.3", QueueLimits::default());
    let u: Arc<str> = Arc::from("u1");
    let start = app.watch(&w, &[u.clone(), Arc::from("u9")]);
    assert!(start.online.is_empty());
    assert_eq!(app.bind_user(&u, &t1), UserChange::Online);
    assert_eq!(app.bind_user(&u, &t2), UserChange::Unchanged);
    assert_eq!(app.watchers("u1").len(), 1);
    assert_eq!(app.user_conns("u1").len(), 2);
    assert_eq!(app.unbind_user("u1", t1.id), UserChange::Unchanged);
    assert_eq!(app.unbind_user("u1", t2.id), UserChange::Offline);
    assert_eq!(app.unbind_user("u1", t2.id), UserChange::Unchanged);
    app.unwatch(w.id, &[u]);
    assert!(app.watchers("u1").is_empty());
}

/// What an observer saw of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    app: String,
    channel: String,
    event: String,
    data: Bytes,
    kind: DataKind,
    except: Option<String>,
    origin: String,
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl Observer for Recorder {
    fn published(&self, app: &str, m: &Message<'_>) {
        self.0.lock().push(Seen {
            app: app.into(),
            channel: m.channel.into(),
            event: m.event.into(),
            data: m.data.clone(),
            kind: m.kind,
            except: m.except.map(Into::into),
            origin: format!("{:?}", m.origin),
        });
    }
}

#[test]
fn every_observer_sees_structured_publishes_but_not_internal_deliveries() {
    let rec = Arc::new(Recorder::default());
    let second = Arc::new(Recorder::default());
    let hub = Hub::new(vec![rec.clone(), second.clone()]);
    let app = hub.app("1");
    let (c, _r) = conn(&hub, "1.1", QueueLimits::default());
    app.subscribe("x", &c).unwrap();
    let data = Bytes::from_static(b"{\"a\":1}");
    let frames = text("m");
    let d = app.publish(&Message {
        channel: "x",
        event: "client-e",
        data: &data,
        kind: DataKind::Json,
        except: Some("9.9"),
        origin: Origin::Socket("9.9"),
        frames: &frames,
    });
    assert_eq!(d.delivered, 1);
    assert_eq!(app.deliver("x", &text("internal"), None).delivered, 1);
    assert_eq!(
        *rec.0.lock(),
        vec![Seen {
            app: "1".into(),
            channel: "x".into(),
            event: "client-e".into(),
            data: data.clone(),
            kind: DataKind::Json,
            except: Some("9.9".into()),
            origin: "Socket(\"9.9\")".into(),
        }]
    );
    // The data is shared with the publisher, not copied.
    assert_eq!(rec.0.lock()[0].data.as_ptr(), data.as_ptr());
    assert_eq!(*second.0.lock(), *rec.0.lock());
}

#[test]
fn observers_see_every_origin() {
    let rec = Arc::new(Recorder::default());
    let hub = Hub::new(vec![rec.clone()]);
    let app = hub.app("1");
    let frames = text("m");
    for origin in [
        Origin::Socket("1.2"),
        Origin::Rest,
        Origin::Bridge,
        Origin::Node("n2"),
    ] {
        app.publish(&Message {
            channel: "x",
            event: "e",
            data: &Bytes::from_static(b"hi"),
            kind: DataKind::Text,
            except: None,
            origin,
            frames: &frames,
        });
    }
    let seen: Vec<String> = rec.0.lock().iter().map(|s| s.origin.clone()).collect();
    assert_eq!(seen, ["Socket(\"1.2\")", "Rest", "Bridge", "Node(\"n2\")"]);
    assert!(Origin::Socket("1.2").is_entry() && Origin::Rest.is_entry());
    assert!(!Origin::Bridge.is_entry() && !Origin::Node("n2").is_entry());
}

#[test]
fn per_codec_frames() {
    let hub = Hub::default();
    let app = hub.app("1");
    let (tx, _rx) = outbound(QueueLimits::default());
    let c1 = Arc::new(Conn {
        id: hub.next_conn_id(),
        socket_id: "a".into(),
        codec: 1,
        tx,
    });
    let (c0, _r0) = conn(&hub, "b", QueueLimits::default());
    app.subscribe("x", &c1).unwrap();
    app.subscribe("x", &c0).unwrap();
    let frames = Frames::PerCodec(Arc::from(vec![Some(Frame::from("v0")), None]));
    assert_eq!(publish(&app, "x", &frames, None).delivered, 1);
}

#[test]
fn many_subscribers_churn_keeps_index_consistent() {
    let hub = Hub::default();
    let app = hub.app("1");
    let conns: Vec<_> = (0..1000)
        .map(|i| conn(&hub, &format!("{i}.0"), QueueLimits::default()))
        .collect();
    for (c, _) in &conns {
        app.subscribe("big", c).unwrap();
    }
    for (c, _) in conns.iter().step_by(2) {
        app.unsubscribe("big", c.id).unwrap();
    }
    assert_eq!(publish(&app, "big", &text("m"), None).delivered, 500);
    for (c, _) in conns.iter().skip(1).step_by(2) {
        app.unsubscribe("big", c.id).unwrap();
    }
    assert_eq!(app.channel_info("big"), None);
}

/// Rough fan-out cost: `cargo test --release --lib fanout_10k -- --ignored --nocapture`.
#[test]
#[ignore = "timing report, run by hand in release mode"]
fn fanout_10k_timing() {
    let hub = Hub::default();
    let app = hub.app("1");
    let limits = QueueLimits {
        max_messages: 200,
        max_bytes: usize::MAX,
        ..QueueLimits::default()
    };
    let conns: Vec<_> = (0..10_000)
        .map(|i| conn(&hub, &format!("{i}.0"), limits.clone()))
        .collect();
    let t = std::time::Instant::now();
    for (c, _) in &conns {
        app.subscribe("big", c).unwrap();
    }
    let subscribe = t.elapsed();
    let frames = Frames::One(Frame::from("x".repeat(200)));
    let t = std::time::Instant::now();
    let mut delivered = 0;
    for _ in 0..100 {
        delivered += publish(&app, "big", &frames, None).delivered;
    }
    let publish = t.elapsed();
    println!(
        "10k subscribe: {subscribe:?}; 100 publishes to 10k: {publish:?} ({:.0} ns/delivery, {delivered} deliveries)",
        publish.as_nanos() as f64 / delivered as f64
    );
}
