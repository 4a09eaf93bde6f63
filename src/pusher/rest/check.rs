//! The properties the `pusher_rest` fuzz target checks, kept in the library
//! so `tests/fuzz_corpus.rs` replays the corpus through the same code.
//!
//! Owns: the rules of the REST signature check and of the events bodies.
//! Receives: any bytes. Hands on: nothing; it panics when a rule breaks.

use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{Method, StatusCode};

use super::{Call, RestError, handle};
use crate::hub::Hub;
use crate::pusher::app::{App, AppRegistry};
use crate::pusher::auth::{self, Credentials, RestAuthError, RestRequest};
use crate::pusher::state::{FrontSettings, Shared};
use crate::pusher::webhooks::Webhooks;
use crate::shutdown::Shutdown;

const CREDS: Credentials<'static> = Credentials {
    key: "fuzz-key",
    secret: "fuzz-secret",
};

/// The endpoints a signed call goes to; `{}` is the fuzzed segment.
const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "events"),
    ("POST", "batch_events"),
    ("GET", "channels"),
    ("GET", "channels/{}"),
    ("GET", "channels/{}/users"),
    ("POST", "users/{}/terminate_connections"),
    ("GET", "connections"),
    ("PUT", "events"),
];

fn shared() -> Shared {
    Shared {
        hub: Arc::new(Hub::default()),
        apps: ArcSwap::from_pointee(AppRegistry::new([App::new("1", CREDS.key, CREDS.secret)])),
        settings: ArcSwap::from_pointee(FrontSettings::default()),
        webhooks: Webhooks::disabled(),
        shutdown: Shutdown::new(),
        counts: Default::default(),
        rest_windows: Default::default(),
        cluster: Default::default(),
        removals: Default::default(),
    }
}

/// Checks one fuzzed REST call at Unix time `now`. The first byte picks
/// the mode; the rest is `line \n body`:
/// - even: `line` is a raw query string, checked against `body` by
///   [`auth::verify_rest`], which never panics and never accepts a query
///   without our signature;
/// - odd: a call signed as the official libraries sign ([`auth::sign_rest`],
///   with `line` as the `info` parameter and the path segment) to the
///   endpoint the byte picks, with `body`: [`handle`] never panics, always
///   accepts the signature, answers 200 with a JSON body or a typed error;
///   and the same query with one more body byte fails on `body_md5`.
pub(crate) fn check_call(data: &[u8], now: u64) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (line, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let line = String::from_utf8_lossy(line);
    if mode % 2 == 0 {
        let _ = auth::parse_query(&line);
        let req = RestRequest {
            method: "POST",
            path: "/apps/1/events",
            query: &line,
            body,
        };
        match auth::verify_rest(CREDS, req, now) {
            Ok(()) => assert!(
                line.contains("auth_signature="),
                "accepted without a signature: {line:?}"
            ),
            Err(e) => {
                let _ = e.to_string();
            }
        }
        return;
    }
    let (method, tail) = ENDPOINTS[usize::from(mode / 2) % ENDPOINTS.len()];
    let seg: String = line.chars().filter(|&c| c != '/' && c != '?').collect();
    let path = format!("/apps/1/{}", tail.replace("{}", &seg));
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    let query = auth::sign_rest(CREDS, method.as_str(), &path, &[("info", &line)], body, now);
    let s = shared();
    let call = Call {
        method: &method,
        path: &path,
        query: &query,
        body,
    };
    match handle(&s, &call) {
        Ok(json) => {
            serde_json::from_str::<serde_json::Value>(&json)
                .unwrap_or_else(|e| panic!("200 with a body that is not JSON ({e}): {json:?}"));
        }
        Err(RestError::Auth(e)) => panic!("our own signature refused: {e} ({query:?})"),
        Err(e) => {
            assert_ne!(e.status(), StatusCode::OK);
            let _ = e.body();
        }
    }
    let longer = [body, b"x"].concat();
    let req = RestRequest {
        method: method.as_str(),
        path: &path,
        query: &query,
        body: &longer,
    };
    assert_eq!(
        auth::verify_rest(CREDS, req, now),
        Err(RestAuthError::BodyMd5),
        "a changed body passed"
    );
}
