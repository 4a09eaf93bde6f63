//! The diagnostics page at `/.portico/` (`[diagnostics]`): one HTML page
//! with inline script and style, compiled into the binary, that runs the
//! checks people do by hand — TLS, the WebSocket upgrade, a public
//! subscribe, a publish coming back, private-channel auth through the
//! app, the Supabase front — in the browser, each green or red with the
//! reason and the fix.
//!
//! Owns: the page and its two endpoints, `GET /.portico/info` (what the
//! page needs to know: the app key, paths, the certificate served for
//! this host; [`info`]) and `POST /.portico/publish` (a publish into the
//! hub for the page's app, signed by nothing since it never leaves the
//! process; it reaches the Pusher front only through
//! [`crate::http::Publish`]), and the token check in front of all three.
//! Receives: requests [`super::router::dispatch`] sent here before
//! routing. Hands on: answers; nothing else.

mod info;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use subtle::ConstantTimeEq;

use super::ConnInfo;
use super::stack::{Runtime, Stack};
use crate::config::Config;
use crate::http::body::{Body, full};

/// The page itself.
const PAGE: &str = include_str!("page.html");

/// Channels the page may publish on: its own, nothing of the app's.
pub(crate) const CHANNEL_PREFIX: &str = "portico-diagnostics-";

/// The event name the page publishes and listens for.
const EVENT: &str = "portico-diagnostics";

/// Largest `/.portico/publish` body.
const MAX_BODY: usize = 4096;

/// The header that may carry the token instead of `?token=`.
const TOKEN_HEADER: &str = "x-portico-token";

/// Answers one request under `/.portico/`.
pub(crate) async fn answer(
    req: Request<Incoming>,
    stack: &Stack,
    rt: &Runtime,
    conn: &ConnInfo,
) -> Response<Body> {
    let cfg = &rt.config;
    if !token_ok(cfg, &req) {
        return text(
            StatusCode::FORBIDDEN,
            "the diagnostics page needs its token: open /.portico/?token=… with the value of `diagnostics.token`\n",
        );
    }
    let path = req.uri().path();
    let bare = !path.ends_with('/');
    let sub = path
        .strip_prefix(crate::config::diagnostics::PATH)
        .unwrap_or("")
        .to_owned();
    let method = req.method().clone();
    match (&method, sub.as_str()) {
        (&Method::GET | &Method::HEAD, "") if bare => {
            // `/.portico` → `/.portico/`, keeping the query (the token).
            let to = match req.uri().query() {
                Some(q) => format!("{}?{q}", crate::config::diagnostics::PATH),
                None => crate::config::diagnostics::PATH.to_string(),
            };
            let mut r = text(StatusCode::PERMANENT_REDIRECT, "");
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        (&Method::GET | &Method::HEAD, "") => page(),
        (&Method::GET, "info") => {
            let host = super::router::request_host(&req);
            json(
                StatusCode::OK,
                info::info(cfg, stack, conn, host.as_deref()),
            )
        }
        (&Method::POST, "publish") => publish(req, cfg, stack).await,
        _ => text(StatusCode::NOT_FOUND, "not a diagnostics endpoint\n"),
    }
}

/// Whether the request carries the configured token (or none is needed).
fn token_ok<B>(cfg: &Config, req: &Request<B>) -> bool {
    let Some(want) = &cfg.diagnostics.token else {
        return true;
    };
    let from_header = req
        .headers()
        .get(TOKEN_HEADER)
        .map(|v| v.as_bytes().to_vec());
    let from_query = || url_query(req.uri().query()?, "token").map(String::into_bytes);
    match from_header.or_else(from_query) {
        Some(got) => got.ct_eq(want.as_bytes()).into(),
        None => false,
    }
}

/// The percent-decoded value of `name` in a query string.
fn url_query(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /.portico/publish` with `{"key": …, "channel": …, "data": …}`:
/// publishes [`EVENT`] on one of the page's own channels of the app with
/// that key.
async fn publish(req: Request<Incoming>, cfg: &Config, stack: &Stack) -> Response<Body> {
    let json_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_body {
        // A form post from another site cannot set this without CORS.
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send application/json");
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"),
    };
    #[derive(serde::Deserialize)]
    struct Ask {
        key: String,
        channel: String,
        data: String,
    }
    let Ok(ask) = serde_json::from_slice::<Ask>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"key\", \"channel\", \"data\"} strings",
        );
    };
    let channel_ok = ask
        .channel
        .strip_prefix(CHANNEL_PREFIX)
        .is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 64
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !channel_ok {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("the page publishes only on its own channels, `{CHANNEL_PREFIX}…`"),
        );
    }
    let Some(app) = cfg.apps.apps.iter().find(|a| *a.key == *ask.key) else {
        return error(
            StatusCode::NOT_FOUND,
            "no app has this key: check VITE_REVERB_APP_KEY against [[apps]] key",
        );
    };
    let delivered = stack
        .publisher()
        .publish(&app.id, &ask.channel, EVENT, ask.data);
    json(
        StatusCode::OK,
        serde_json::json!({ "event": EVENT, "delivered": delivered }),
    )
}

fn page() -> Response<Body> {
    let mut r = Response::new(full(PAGE));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Inline script and style only, connections to this origin only, never
    // framed; the token in the URL is not sent on as a referrer.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        ),
    );
    secure_headers(r)
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    secure_headers(r)
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, serde_json::json!({ "error": message }))
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    secure_headers(r)
}

fn secure_headers(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            url_query("a=1&token=x%2By+z", "token").as_deref(),
            Some("x+y z")
        );
        assert_eq!(url_query("token=%zz%4", "token").as_deref(), Some("%zz%4"));
        assert_eq!(url_query("tokens=1", "token"), None);
        assert_eq!(url_query("token", "token").as_deref(), Some(""));
    }

    #[test]
    fn token_from_query_or_header() {
        let cfg = Config::from_str_with_env(
            "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n[diagnostics]\nenabled = true\ntoken = \"t0k\"\n",
            "t.toml",
            &|_| None,
        )
        .unwrap();
        let req = |uri: &str, h: Option<&str>| {
            let mut b = Request::builder().uri(uri);
            if let Some(h) = h {
                b = b.header(TOKEN_HEADER, h);
            }
            b.body(()).unwrap()
        };
        assert!(token_ok(&cfg, &req("/.portico/?token=t0k", None)));
        assert!(token_ok(&cfg, &req("/.portico/info", Some("t0k"))));
        assert!(!token_ok(&cfg, &req("/.portico/", None)));
        assert!(!token_ok(&cfg, &req("/.portico/?token=t0", None)));
        assert!(!token_ok(&cfg, &req("/.portico/?token=t0k", Some("bad"))));
    }
}
