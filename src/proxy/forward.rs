//! One proxied request: rewrite, forward, relay the answer (or splice a
//! WebSocket after a matching 101).

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::Upstream;
use super::headers::{
    ClientSide, is_websocket_upgrade, set_forwarded, strip_hop_by_hop, upgrade_is_websocket,
};
use super::tunnel;
use crate::config::{HostHeader, Route};
use crate::http::body::{self, Body, BoxError};
use crate::http::error::{ErrorKind, HttpError};
use crate::http::router::rewrite_path;
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
    let uri = Uri::builder()
        .scheme(t.scheme.clone())
        .authority(t.authority.clone())
        .path_and_query(pq)
        .build()
        .map_err(|_| {
            fail(ErrorKind::BadRequest {
                reason: "the request path cannot be forwarded",
            })
        })?;

    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    set_forwarded(
        headers,
        client,
        original_host.as_ref().and_then(|h| h.to_str().ok()),
    );
    // httpoxy: a client `Proxy` header must never reach a CGI-style app.
    headers.remove("proxy");
    let host = match &t.host_header {
        HostHeader::PassThrough => original_host.clone(),
        HostHeader::Upstream => HeaderValue::from_str(t.authority.as_str()).ok(),
        HostHeader::Fixed(v) => Some(v.clone()),
    };
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
    parts.uri = uri;
    parts.version = Version::HTTP_11;

    // No request body (most GETs): no length limiter and no boxed stream.
    let body: Body = if ws || http_body::Body::is_end_stream(&incoming) {
        body::empty()
    } else {
        Limited::new(incoming, usize::try_from(t.max_body).unwrap_or(usize::MAX))
            .map_err(|e| -> BoxError { e })
            .boxed()
    };
    let outgoing = Request::from_parts(parts, body);
    let mut resp = match tokio::time::timeout(t.response_timeout, up.client.request(outgoing)).await
    {
        Err(_) => return Err(fail(ErrorKind::UpstreamResponseTimeout)),
        Ok(Err(e)) => return Err(classify(&e, t.max_body, &t.url)),
        Ok(Ok(r)) => r,
    };

    if let Some(client_upgrade) = client_upgrade
        && resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && upgrade_is_websocket(resp.headers())
    {
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
    // A 101 that is not a WebSocket answer to a WebSocket request cannot be
    // relayed: 101 is per hop, and with its Upgrade header stripped the
    // client would get a switch to nothing.
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err(fail(ErrorKind::UpstreamBroken {
            reason: Arc::from("it switched protocols without a matching WebSocket upgrade"),
        }));
    }
    // Anything else is relayed as a normal response.
    let (mut parts, incoming) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, body::boxed(incoming)))
}

/// Maps a client error to what the user sees.
fn classify(e: &hyper_util::client::legacy::Error, limit: u64, url: &Arc<str>) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut innermost = e.to_string();
    let mut timed_out = false;
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return HttpError::with_upstream(ErrorKind::BodyTooLarge { limit }, url.clone());
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        innermost = s.to_string();
        source = s.source();
    }
    timed_out |= innermost.contains("timed out");
    let kind = if e.is_connect() {
        if timed_out {
            ErrorKind::UpstreamConnectTimeout
        } else {
            ErrorKind::UpstreamUnreachable {
                reason: Arc::from(innermost.as_str()),
            }
        }
    } else {
        ErrorKind::UpstreamBroken {
            reason: Arc::from(innermost.as_str()),
        }
    };
    HttpError::with_upstream(kind, url.clone())
}
