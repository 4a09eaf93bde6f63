//! REST API tests against a real hub with queue-backed fake sockets.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::{Value, json};

use super::*;
use crate::hub::{Conn, Hub, Member};
use crate::pusher::app::AppRegistry;
use crate::pusher::auth::{Credentials, sign_rest};
use crate::pusher::state::{FrontSettings, Shared};
use crate::pusher::webhooks::Webhooks;
use crate::shutdown::Shutdown;
use crate::ws::{OutboundRx, QueueLimits, outbound};

fn shared() -> Shared {
    Shared {
        hub: std::sync::Arc::new(Hub::default()),
        apps: ArcSwap::from_pointee(AppRegistry::new([App::new("1", "key", "secret")])),
        settings: ArcSwap::from_pointee(FrontSettings::default()),
        webhooks: Webhooks::disabled(),
        shutdown: Shutdown::new(),
        counts: Default::default(),
        rest_windows: Default::default(),
        cluster: Default::default(),
        removals: Default::default(),
    }
}

const CREDS: Credentials<'static> = Credentials {
    key: "key",
    secret: "secret",
};

fn call(
    s: &Shared,
    method: Method,
    path: &str,
    params: &[(&str, &str)],
    body: &str,
) -> Result<Value, StatusCode> {
    let q = sign_rest(CREDS, method.as_str(), path, params, body.as_bytes(), now());
    let c = Call {
        method: &method,
        path,
        query: &q,
        body: body.as_bytes(),
    };
    handle(s, &c)
        .map(|b| serde_json::from_str(&b).unwrap_or(Value::Null))
        .map_err(|e| e.status())
}

fn sub(s: &Shared, channel: &str, socket: &str, member: Option<&str>) -> (Arc<Conn>, OutboundRx) {
    let (tx, rx) = outbound(QueueLimits::default());
    let c = Arc::new(Conn {
        id: s.hub.next_conn_id(),
        socket_id: Arc::from(socket),
        codec: 0,
        tx,
    });
    let hub = s.hub.app("1");
    match member {
        Some(u) => {
            let m = Member {
                user_id: Arc::from(u),
                info: bytes::Bytes::from_static(b"null"),
            };
            hub.subscribe_member(channel, &c, m, None)
                .map(|_| ())
                .unwrap_or_default();
        }
        None => hub.subscribe(channel, &c).map(|_| ()).unwrap_or_default(),
    }
    (c, rx)
}

#[test]
fn publish_excludes_socket_and_reports_info() {
    let s = shared();
    let (a, _ra) = sub(&s, "presence-r", "1.1", Some("u1"));
    let (b, _rb) = sub(&s, "presence-r", "2.2", Some("u2"));
    let body = json!({"name":"ev","data":"{\"x\":1}","channels":["presence-r","news"],"socket_id":"1.1","info":"user_count,subscription_count"}).to_string();
    let out = call(&s, Method::POST, "/apps/1/events", &[], &body).unwrap_or_default();
    assert_eq!(
        out,
        json!({"channels":{"presence-r":{"subscription_count":2,"user_count":2},"news":{"subscription_count":0}}})
    );
    assert_eq!(a.tx.queued().0, 0, "excluded socket");
    assert_eq!(b.tx.queued().0, 1);
    let plain = json!({"name":"ev","data":"x","channel":"news"}).to_string();
    assert_eq!(
        call(&s, Method::POST, "/apps/1/events", &[], &plain),
        Ok(json!({}))
    );
}

#[test]
fn publish_rejections() {
    let s = shared();
    let big = json!({"name":"ev","data":"x".repeat(20_000),"channel":"a"}).to_string();
    assert_eq!(
        call(&s, Method::POST, "/apps/1/events", &[], &big),
        Err(StatusCode::PAYLOAD_TOO_LARGE)
    );
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let body = json!({"name":"ev","data":"x","channels":many}).to_string();
    assert_eq!(
        call(&s, Method::POST, "/apps/1/events", &[], &body),
        Err(StatusCode::BAD_REQUEST)
    );
    let bad = json!({"name":"ev","data":"x","channel":"bad name"}).to_string();
    assert_eq!(
        call(&s, Method::POST, "/apps/1/events", &[], &bad),
        Err(StatusCode::BAD_REQUEST)
    );
    assert_eq!(
        call(&s, Method::POST, "/apps/1/events", &[], "nope"),
        Err(StatusCode::BAD_REQUEST)
    );
    assert_eq!(
        call(&s, Method::POST, "/apps/2/events", &[], "{}"),
        Err(StatusCode::NOT_FOUND)
    );
    assert_eq!(
        call(&s, Method::GET, "/apps/1/events", &[], ""),
        Err(StatusCode::METHOD_NOT_ALLOWED)
    );
    assert_eq!(
        call(&s, Method::GET, "/apps/1/nope", &[], ""),
        Err(StatusCode::NOT_FOUND)
    );
    let m = Method::POST;
    let c = Call {
        method: &m,
        path: "/apps/1/events",
        query: "auth_key=key&auth_timestamp=1&auth_version=1.0&auth_signature=00",
        body: b"",
    };
    assert_eq!(
        handle(&s, &c).map_err(|e| e.status()),
        Err(StatusCode::UNAUTHORIZED)
    );
}

#[test]
fn batch_events() {
    let s = shared();
    let (_a, _ra) = sub(&s, "a", "1.1", None);
    let body = json!({"batch":[{"name":"e","data":"1","channel":"a","info":"subscription_count"},{"name":"e","data":"2","channel":"b"}]}).to_string();
    assert_eq!(
        call(&s, Method::POST, "/apps/1/batch_events", &[], &body),
        Ok(json!({"batch":[{"subscription_count":1},{}]}))
    );
    let items: Vec<Value> = (0..11)
        .map(|_| json!({"name":"e","data":"1","channel":"a"}))
        .collect();
    let body = json!({ "batch": items }).to_string();
    assert_eq!(
        call(&s, Method::POST, "/apps/1/batch_events", &[], &body),
        Err(StatusCode::BAD_REQUEST)
    );
}

#[test]
fn channel_queries() {
    let s = shared();
    let (_a, _ra) = sub(&s, "presence-r", "1.1", Some("u1"));
    let (_b, _rb) = sub(&s, "presence-r", "2.2", Some("u1"));
    let (_c, _rc) = sub(&s, "news", "3.3", None);
    assert_eq!(
        call(&s, Method::GET, "/apps/1/channels", &[], ""),
        Ok(json!({"channels":{"news":{},"presence-r":{}}}))
    );
    assert_eq!(
        call(
            &s,
            Method::GET,
            "/apps/1/channels",
            &[("filter_by_prefix", "presence-"), ("info", "user_count")],
            ""
        ),
        Ok(json!({"channels":{"presence-r":{"user_count":1}}}))
    );
    assert_eq!(
        call(
            &s,
            Method::GET,
            "/apps/1/channels",
            &[("info", "user_count")],
            ""
        ),
        Err(StatusCode::BAD_REQUEST)
    );
    assert_eq!(
        call(
            &s,
            Method::GET,
            "/apps/1/channels/presence-r",
            &[("info", "user_count,subscription_count")],
            ""
        ),
        Ok(json!({"occupied":true,"user_count":1,"subscription_count":2}))
    );
    assert_eq!(
        call(&s, Method::GET, "/apps/1/channels/empty", &[], ""),
        Ok(json!({"occupied":false}))
    );
    assert_eq!(
        call(
            &s,
            Method::GET,
            "/apps/1/channels/news",
            &[("info", "user_count")],
            ""
        ),
        Err(StatusCode::BAD_REQUEST)
    );
    assert_eq!(
        call(
            &s,
            Method::GET,
            "/apps/1/channels/presence-r/users",
            &[],
            ""
        ),
        Ok(json!({"users":[{"id":"u1"}]}))
    );
    assert_eq!(
        call(&s, Method::GET, "/apps/1/channels/news/users", &[], ""),
        Err(StatusCode::BAD_REQUEST)
    );
}

#[test]
fn cache_info_and_terminate() {
    let s = shared();
    let body = json!({"name":"ev","data":"last","channel":"cache-x"}).to_string();
    call(&s, Method::POST, "/apps/1/events", &[], &body).unwrap_or_default();
    assert_eq!(
        call(
            &s,
            Method::GET,
            "/apps/1/channels/cache-x",
            &[("info", "cache")],
            ""
        ),
        Ok(json!({"occupied":false,"cache":{"event":"ev","data":"last"}}))
    );
    let (a, _ra) = sub(&s, "presence-r", "1.1", Some("u1"));
    assert_eq!(
        call(
            &s,
            Method::POST,
            "/apps/1/users/u1/terminate_connections",
            &[],
            ""
        ),
        Ok(json!({}))
    );
    assert!(a.tx.is_closed());
}

#[test]
fn api_rate_limit_per_app() {
    let s = shared();
    let mut limited = App::new("1", "key", "secret");
    limited.api_rate_limit = Some(crate::pusher::app::ApiRateLimit {
        max: 2,
        per: std::time::Duration::from_secs(60),
    });
    s.apps.store(Arc::new(AppRegistry::new([limited])));
    let body = json!({"name":"ev","data":"{}","channel":"a"}).to_string();
    for _ in 0..2 {
        assert!(call(&s, Method::POST, "/apps/1/events", &[], &body).is_ok());
    }
    // Any endpoint counts; over the limit: 429 with a JSON error and Retry-After.
    assert_eq!(
        call(&s, Method::GET, "/apps/1/channels", &[], ""),
        Err(StatusCode::TOO_MANY_REQUESTS)
    );
    let q = sign_rest(CREDS, "GET", "/apps/1/channels", &[], b"", now());
    let e = handle(
        &s,
        &Call {
            method: &Method::GET,
            path: "/apps/1/channels",
            query: &q,
            body: b"",
        },
    )
    .err()
    .unwrap_or(RestError::NotFound);
    assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = e.retry_after().unwrap_or(0);
    assert!((59..=60).contains(&retry), "{retry}");
    let v: Value = serde_json::from_str(&e.body()).unwrap_or(Value::Null);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|m| m.contains("Too many requests"))
    );
    // A forged call is refused by the signature check and spends nothing.
    let c = Call {
        method: &Method::GET,
        path: "/apps/1/channels",
        query: "auth_key=key&auth_timestamp=1&auth_version=1.0&auth_signature=00",
        body: b"",
    };
    assert_eq!(
        handle(&s, &c).err().map(|e| e.status()),
        Some(StatusCode::UNAUTHORIZED)
    );
}

#[test]
fn no_api_rate_limit_by_default() {
    let s = shared();
    for _ in 0..500 {
        assert!(call(&s, Method::GET, "/apps/1/channels", &[], "").is_ok());
    }
}
