//! Unit tests of the bridge: the channel and payload mapping, both
//! directions through real fronts on one hub, and that nothing is bridged
//! twice or back (its own traffic is `Origin::Bridge`).

use bytes::Bytes;
use futures_util::FutureExt;
use parking_lot::Mutex;
use serde_json::json;

use super::*;
use crate::config::apps::Apps;
use crate::hub::{Conn, ConnRef, Frames, Hub};
use crate::shutdown::Shutdown;
use crate::ws::queue::Work;
use crate::ws::{Frame, OutboundRx, QueueLimits, outbound};

#[test]
fn channel_mapping() {
    assert_eq!(from_pusher("orders"), Some(("orders", false)));
    assert_eq!(from_pusher("private-orders.1"), Some(("orders.1", true)));
    assert_eq!(from_pusher("presence-room"), None);
    assert_eq!(from_pusher("private-encrypted-x"), None);
    assert_eq!(from_pusher("private-"), None);
    assert_eq!(to_pusher("orders", false), "orders");
    assert_eq!(to_pusher("orders.1", true), "private-orders.1");
}

#[test]
fn data_becomes_json_payload() {
    assert_eq!(
        payload_from_pusher_data(Some(&json!("{\"a\":1}"))),
        "{\"a\":1}"
    );
    assert_eq!(payload_from_pusher_data(Some(&json!("hello"))), "\"hello\"");
    assert_eq!(payload_from_pusher_data(Some(&json!({"a":1}))), "{\"a\":1}");
    assert_eq!(payload_from_pusher_data(None), "{}");
}

#[test]
fn structured_data_becomes_json_payload() {
    // A REST data string: JSON as is, anything else as a JSON string.
    assert_eq!(
        payload_from(DataKind::Text, b"{\"a\":1}").as_deref(),
        Some("{\"a\":1}")
    );
    assert_eq!(
        payload_from(DataKind::Text, b"hello").as_deref(),
        Some("\"hello\"")
    );
    // A client event's JSON value, read as its frame's `data` field was.
    assert_eq!(
        payload_from(DataKind::Json, b"\"{\\\"a\\\":1}\"").as_deref(),
        Some("{\"a\":1}")
    );
    assert_eq!(
        payload_from(DataKind::Json, b"{\"a\": 1}").as_deref(),
        Some("{\"a\":1}")
    );
    assert_eq!(payload_from(DataKind::Json, b"{").as_deref(), None);
    assert_eq!(payload_from(DataKind::Binary, b"\x01").as_deref(), None);
}

/// What an observer saw: (app, channel, event, origin).
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String, String, String)>>);

impl Observer for Recorder {
    fn published(&self, app: &str, m: &Message<'_>) {
        self.0.lock().push((
            app.into(),
            m.channel.into(),
            m.event.into(),
            format!("{:?}", m.origin),
        ));
    }
}

impl Recorder {
    fn take(&self) -> Vec<(String, String, String, String)> {
        std::mem::take(&mut *self.0.lock())
    }
}

fn seen(app: &str, channel: &str, event: &str, origin: &str) -> (String, String, String, String) {
    (app.into(), channel.into(), event.into(), origin.into())
}

const APP: &str = "app-id";

/// Both fronts on one hub with the bridge and a recorder as observers,
/// wired as the edge wires them; `APP` is bridged.
struct Setup {
    hub: Arc<Hub>,
    bridge: Arc<Bridge>,
    rec: Arc<Recorder>,
    pusher: Arc<PusherFront>,
    supabase: Arc<SupabaseFront>,
}

fn setup() -> Setup {
    let bridge = Arc::new(Bridge::default());
    let rec = Arc::new(Recorder::default());
    // The recorder first, so it lists a message before its republish.
    let hub = Arc::new(Hub::new(vec![rec.clone(), bridge.clone()]));
    let pusher = Arc::new(PusherFront::with_hub(
        &Apps::default(),
        hub.clone(),
        Shutdown::new(),
    ));
    let supabase = Arc::new(SupabaseFront::new(hub.clone(), None, Shutdown::new()));
    bridge.attach(&pusher, &supabase);
    bridge.set_app(Some(APP));
    Setup {
        hub,
        bridge,
        rec,
        pusher,
        supabase,
    }
}

impl Setup {
    /// A socket subscribed to `channel` of `app`, taking `codec`.
    fn subscriber(&self, app: &str, channel: &str, codec: u8) -> (ConnRef, OutboundRx) {
        let (tx, rx) = outbound(QueueLimits::default());
        let c = Arc::new(Conn {
            id: self.hub.next_conn_id(),
            socket_id: Arc::from(format!("s.{channel}")),
            codec,
            tx,
        });
        self.hub.app(app).subscribe(channel, &c).unwrap();
        (c, rx)
    }
}

/// The text frames waiting in `rx`.
fn texts(rx: &mut OutboundRx) -> Vec<String> {
    match rx.next(Vec::new()).now_or_never() {
        Some(Work::Frames(v)) => v
            .iter()
            .map(|f| match f {
                Frame::Text(t) => t.as_str().to_owned(),
                Frame::Binary(b) => format!("binary {b:?}"),
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn pusher_event_reaches_supabase_once() {
    let s = setup();
    let (_p, mut prx) = s.subscriber(APP, "orders", 0);
    let (_v1, mut v1rx) = s.subscriber(phoenix::NAMESPACE, "p:orders", 0);
    let (_x, mut xrx) = s.subscriber(phoenix::NAMESPACE, "x:orders", 0);
    s.pusher.publish_event(
        APP,
        "orders",
        "OrderCreated",
        r#"{"id":1}"#.into(),
        Origin::Rest,
    );
    assert_eq!(
        s.rec.take(),
        [
            seen(APP, "orders", "OrderCreated", "Rest"),
            seen(phoenix::NAMESPACE, "p:orders", "OrderCreated", "Bridge"),
        ]
    );
    assert_eq!(
        texts(&mut prx),
        [r#"{"event":"OrderCreated","channel":"orders","data":"{\"id\":1}"}"#]
    );
    assert_eq!(
        texts(&mut v1rx),
        [
            r#"{"topic":"realtime:orders","event":"broadcast","payload":{"type":"broadcast","event":"OrderCreated","payload":{"id":1}},"ref":null}"#
        ]
    );
    assert!(texts(&mut xrx).is_empty(), "public and private stay apart");

    // private-X ↔ private realtime:X
    s.pusher
        .publish_event(APP, "private-orders", "E", "plain".into(), Origin::Rest);
    assert_eq!(
        s.rec.take(),
        [
            seen(APP, "private-orders", "E", "Rest"),
            seen(phoenix::NAMESPACE, "x:orders", "E", "Bridge"),
        ]
    );
    assert_eq!(
        texts(&mut xrx),
        [
            r#"{"topic":"realtime:orders","event":"broadcast","payload":{"type":"broadcast","event":"E","payload":"plain"},"ref":null}"#
        ]
    );
}

#[tokio::test]
async fn supabase_broadcast_reaches_pusher_once() {
    let s = setup();
    let (_p, mut prx) = s.subscriber(APP, "shipments", 0);
    let (_v2, mut v2rx) = s.subscriber(phoenix::NAMESPACE, "p:shipments", 1);
    s.supabase
        .publish_event(
            "shipments",
            false,
            "Shipped",
            r#"{"id":2}"#,
            Origin::Socket("phx.1"),
        )
        .unwrap();
    assert_eq!(
        s.rec.take(),
        [
            seen(
                phoenix::NAMESPACE,
                "p:shipments",
                "Shipped",
                "Socket(\"phx.1\")"
            ),
            seen(APP, "shipments", "Shipped", "Bridge"),
        ]
    );
    assert_eq!(
        texts(&mut prx),
        [r#"{"event":"Shipped","channel":"shipments","data":"{\"id\":2}"}"#]
    );
    assert_eq!(texts(&mut v2rx).len(), 1);

    // A private topic goes to private-X.
    let (_pp, mut pprx) = s.subscriber(APP, "private-shipments", 0);
    s.supabase
        .publish_event("shipments", true, "S", "[1]", Origin::Rest)
        .unwrap();
    assert_eq!(
        s.rec.take()[1],
        seen(APP, "private-shipments", "S", "Bridge")
    );
    assert_eq!(
        texts(&mut pprx),
        [r#"{"event":"S","channel":"private-shipments","data":"[1]"}"#]
    );
}

#[tokio::test]
async fn own_and_remote_traffic_is_never_bridged() {
    let s = setup();
    let (_p, mut prx) = s.subscriber(APP, "orders", 0);
    let (_v1, mut v1rx) = s.subscriber(phoenix::NAMESPACE, "p:orders", 0);
    for origin in [Origin::Bridge, Origin::Node("n2")] {
        s.pusher
            .publish_event(APP, "orders", "E", "{}".into(), origin);
        s.supabase
            .publish_event("orders", false, "E", "{}", origin)
            .unwrap();
    }
    // Each publish was seen once, on its own side only.
    assert_eq!(s.rec.take().len(), 4);
    assert_eq!(texts(&mut prx).len(), 2);
    assert_eq!(texts(&mut v1rx).len(), 2);
}

#[tokio::test]
async fn what_is_not_bridged() {
    let s = setup();
    let publish = |app: &str, channel: &str, event: &str, kind: DataKind| {
        s.hub.app(app).publish(&Message {
            channel,
            event,
            data: &Bytes::from_static(b"{}"),
            kind,
            except: None,
            origin: Origin::Rest,
            frames: &Frames::One(Frame::from("{}")),
        });
    };
    publish(APP, "presence-room", "E", DataKind::Text);
    publish(APP, "private-encrypted-x", "E", DataKind::Text);
    publish(
        APP,
        "orders",
        "pusher_internal:subscription_count",
        DataKind::Text,
    );
    publish("other-app", "orders", "E", DataKind::Text);
    // Pusher has no binary events, and a broadcast needs an event name.
    publish(phoenix::NAMESPACE, "p:orders", "E", DataKind::Binary);
    publish(phoenix::NAMESPACE, "p:orders", "", DataKind::Json);
    assert_eq!(s.rec.take().len(), 6, "nothing republished");

    // Off: neither direction.
    s.bridge.set_app(None);
    assert_eq!(s.bridge.app(), None);
    publish(APP, "orders", "E", DataKind::Text);
    publish(phoenix::NAMESPACE, "p:orders", "E", DataKind::Json);
    assert_eq!(s.rec.take().len(), 2);

    // Without fronts (not attached, or gone) it does nothing either.
    let lone = Bridge::default();
    lone.set_app(Some(APP));
    let hub = Hub::new(vec![Arc::new(lone)]);
    hub.app(APP).publish(&Message {
        channel: "orders",
        event: "E",
        data: &Bytes::from_static(b"{}"),
        kind: DataKind::Text,
        except: None,
        origin: Origin::Rest,
        frames: &Frames::One(Frame::from("{}")),
    });
}
