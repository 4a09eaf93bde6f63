//! One proxied request: rewrite, forward, relay the answer (or splice a
//! WebSocket after a matching 101).

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::Upstream;
use super::dial::DialError;
use super::headers::{
    ClientSide, is_websocket_upgrade, set_forwarded, strip_hop_by_hop, upgrade_is_websocket,
};
use super::path::rewrite_path;
use super::pool::UpstreamError;
use super::request_body::{ClientBody, ClientBodyError};
use super::tunnel;
use crate::config::{HostHeader, ProxyTarget, Route};
use crate::http::body::{self, Body, BoxError};
use crate::http::error::{ErrorKind, HttpError};
use crate::shutdown::Shutdown;

/// Forwards `req` to `up` according to `route`.
pub async fn forward(
    mut req: Request<Incoming>,
    route: &Route,
    up: &Upstream,
    client: ClientSide<'_>,
    shutdown: &Shutdown,
) -> Result<Response<Body>, HttpError> {
    let t = &up.target;
    let fail = |kind| HttpError::with_upstream(kind, t.url.clone());
    let ws = req.method() == Method::GET && is_websocket_upgrade(req.headers());
    if ws && !t.websocket {
        return Err(fail(ErrorKind::WebSocketDisabled));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > t.max_body) {
        return Err(fail(ErrorKind::BodyTooLarge { limit: t.max_body }));
    }
    let client_upgrade = ws.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, incoming) = req.into_parts();

    let original_host: Option<HeaderValue> =
        parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
    let path = rewrite_path(route, parts.uri.path());
    let pq = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    // Origin-form: the connection already names the upstream.
    let uri = Uri::builder().path_and_query(pq).build().map_err(|_| {
        fail(ErrorKind::BadRequest {
            reason: "the request path cannot be forwarded",
        })
    })?;

    rewrite_request_headers(&mut parts.headers, original_host, t, client, ws);
    parts.uri = uri;
    parts.version = Version::HTTP_11;

    // No request body (most GETs): no length limiter and no boxed stream.
    let body: Body = if ws || http_body::Body::is_end_stream(&incoming) {
        body::empty()
    } else {
        let chunked = declared.is_none();
        let checked = ClientBody::new(incoming, chunked);
        Limited::new(checked, usize::try_from(t.max_body).unwrap_or(usize::MAX))
            .map_err(|e| -> BoxError { e })
            .boxed()
    };
    let outgoing = Request::from_parts(parts, body);
    let Some(client_upgrade) = client_upgrade else {
        // The common case: a pooled keep-alive exchange.
        let resp = match tokio::time::timeout(t.response_timeout, up.pool.send(outgoing)).await {
            Err(_) => return Err(fail(ErrorKind::UpstreamResponseTimeout)),
            Ok(Err(e)) => return Err(classify(&e, t.max_body, &t.url)),
            Ok(Ok(r)) => r,
        };
        return relay(resp, &t.url);
    };
    let exchange = up.pool.send_upgrade(outgoing, shutdown);
    let mut resp = match tokio::time::timeout(t.response_timeout, exchange).await {
        Err(_) => return Err(fail(ErrorKind::UpstreamResponseTimeout)),
        Ok(Err(e)) => return Err(classify(&e, t.max_body, &t.url)),
        Ok(Ok(r)) => r,
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS && upgrade_is_websocket(resp.headers()) {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        let (mut parts, _) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts
            .headers
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        shutdown.spawn(tunnel::run(
            client_upgrade,
            upstream_upgrade,
            t.websocket_idle_timeout,
            shutdown.clone(),
            t.url.clone(),
        ));
        return Ok(Response::from_parts(parts, body::empty()));
    }
    let (parts, incoming) = resp.into_parts();
    relay(Response::from_parts(parts, body::boxed(incoming)), &t.url)
}

/// Turns the client's request headers into the ones the upstream sees:
/// hop-by-hop headers out, `X-Forwarded-*` set, `Proxy` dropped (httpoxy),
/// `Host` chosen by the target's `host_header` policy. Shared by the hyper
/// path above and the hand-written HTTP/1.1 path ([`crate::server::h1`]).
pub(crate) fn rewrite_request_headers(
    headers: &mut HeaderMap,
    original_host: Option<HeaderValue>,
    t: &ProxyTarget,
    client: ClientSide<'_>,
    ws: bool,
) {
    strip_hop_by_hop(headers);
    set_forwarded(headers, client, original_host.as_ref());
    // httpoxy: a client `Proxy` header must never reach a CGI-style app.
    headers.remove("proxy");
    let host = match &t.host_header {
        HostHeader::PassThrough => original_host,
        HostHeader::Upstream => None,
        HostHeader::Fixed(v) => Some(v.clone()),
    };
    // HTTP/1.1 requires a Host: the upstream's authority when there is no
    // other.
    let host = host.or_else(|| HeaderValue::from_str(t.authority.as_str()).ok());
    match host {
        Some(h) => {
            headers.insert(header::HOST, h);
        }
        None => {
            headers.remove(header::HOST);
        }
    }
    if ws {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
}

/// Relays a non-upgrade response. A 101 cannot be relayed: 101 is per hop,
/// and with its Upgrade header stripped the client would get a switch to
/// nothing.
fn relay(resp: Response<Body>, url: &Arc<str>) -> Result<Response<Body>, HttpError> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err(HttpError::with_upstream(
            ErrorKind::UpstreamBroken {
                reason: Arc::from("it switched protocols without a matching WebSocket upgrade"),
            },
            url.clone(),
        ));
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, body))
}

/// Maps a failed dial to what the user sees.
pub(crate) fn dial_failure(d: &DialError, url: &Arc<str>) -> HttpError {
    let kind = match d {
        DialError::Timeout => ErrorKind::UpstreamConnectTimeout,
        d => ErrorKind::UpstreamUnreachable {
            reason: Arc::from(d.to_string().as_str()),
        },
    };
    HttpError::with_upstream(kind, url.clone())
}

/// Maps an upstream error to what the user sees.
fn classify(e: &UpstreamError, limit: u64, url: &Arc<str>) -> HttpError {
    let e = match e {
        UpstreamError::Dial(d) => return dial_failure(d, url),
        UpstreamError::Http(e) => e,
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut innermost = e.to_string();
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return HttpError::with_upstream(ErrorKind::BodyTooLarge { limit }, url.clone());
        }
        if s.is::<ClientBodyError>() {
            return HttpError::with_upstream(ErrorKind::BadBody, url.clone());
        }
        innermost = s.to_string();
        source = s.source();
    }
    let kind = ErrorKind::UpstreamBroken {
        reason: Arc::from(innermost.as_str()),
    };
    HttpError::with_upstream(kind, url.clone())
}
