//! Per-request handling: health → port-80 redirect → the diagnostics page
//! → route → proxy,
//! php-fpm or files, or a built-in front, with one access-log line per request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::access_log::{Entry, Logged, redact_query};
use super::router::{Decision, Dispatch, dispatch};
use super::{ConnInfo, redirect, router, strict};
use crate::config::Target;
use crate::http::body::{Body, full};
use crate::http::error::{ErrorKind, HttpError, Side, wants_html};
use crate::http::{ListenerKind, RequestCtx};
use crate::proxy::headers::ClientSide;
use crate::server::Stack;

/// Serves one request. Never fails: errors become responses. `decided` is
/// the hand-written path's decision for this request, when it made one;
/// `both_framings` says its raw head had both `Content-Length` and
/// `Transfer-Encoding` ([`super::sniff`]).
pub async fn handle(
    edge: Arc<Stack>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
    decided: Option<Decision>,
    both_framings: bool,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let (rt, to) = match decided {
        Some(d) => (d.rt, Some(d.to)),
        None => (edge.runtime(), None),
    };
    let cfg = &rt.config;
    // Only what the access log needs is copied out of the request, and only
    // when it is on: the proxy path should not allocate for a log it skips.
    let logged = cfg.log.access.then(|| {
        (
            req.method().clone(),
            redact_query(req.uri().path(), req.uri().query()),
        )
    });
    let html = wants_html(req.headers());
    let host = router::request_host(&req);
    let path = req.uri().path();

    let refused = strict::check(&req, cfg.server.max_request_target, both_framings);
    let (resp, route_label, target_label): (Response<Body>, Arc<str>, Arc<str>) = if let Err(e) =
        refused
    {
        (
            refuse(&e, html, conn.peer),
            "refused".into(),
            "portico".into(),
        )
    } else {
        match to.unwrap_or_else(|| dispatch(cfg, conn.kind, host.as_deref(), path)) {
            Dispatch::Health => (
                health(edge.shutdown().is_unready()),
                "health".into(),
                "portico".into(),
            ),
            Dispatch::Acme => {
                let token = router::acme_token(path).unwrap_or_default();
                let resp = match edge.tls().http01(token) {
                    Some(key_auth) => redirect::acme_answer(&key_auth),
                    None => redirect::acme_not_configured(),
                };
                (resp, "acme".into(), "portico".into())
            }
            Dispatch::Diagnostics => (
                super::diag::answer(req, &edge, &rt, &conn).await,
                "diagnostics".into(),
                "portico".into(),
            ),
            Dispatch::Redirect(https) => {
                let host = host.as_deref().unwrap_or("localhost");
                (
                    redirect::to_https(&req, host, edge.https_port().unwrap_or(https)),
                    "redirect".into(),
                    "https".into(),
                )
            }
            Dispatch::Route(idx) if rt.waiting_for(idx).is_some() => {
                let name = rt.waiting_for(idx).map(|r| r.name().clone());
                let name = name.unwrap_or_else(|| "?".into());
                (
                    super::waiting::not_ready(&name),
                    cfg.routes[idx].path.clone(),
                    name,
                )
            }
            Dispatch::Route(idx) => {
                let route = &cfg.routes[idx];
                let route_label = route.path.clone();
                match &route.target {
                    Target::Proxy(_) => {
                        let up = rt.upstream(idx);
                        let client = ClientSide {
                            peer: conn.peer.ip(),
                            tls: conn.kind == ListenerKind::Https,
                            local_port: conn.local.port(),
                            trusted_proxies: &cfg.server.trusted_proxies,
                        };
                        let started = Instant::now();
                        let resp = match up {
                            Some(up) => {
                                crate::proxy::forward(req, route, up, client, edge.shutdown()).await
                            }
                            None => Err(HttpError::new(ErrorKind::NotBuilt {
                                what: "this upstream",
                            })),
                        };
                        super::upstream_metrics::observe(
                            rt.upstream_metrics(idx),
                            started,
                            resp.as_ref().err(),
                        );
                        let target = up.map_or_else(|| Arc::from("?"), |u| u.target.url.clone());
                        match resp {
                            Ok(r) => (r, route_label, target),
                            Err(e) => {
                                log_error(&e, &route_label, conn.peer);
                                (e.to_response(html), route_label, target)
                            }
                        }
                    }
                    Target::FastCgi(_) | Target::Files(_) => {
                        let target = route.target.label();
                        let started = Instant::now();
                        let resp = super::site::serve(
                            req,
                            route,
                            rt.site(idx),
                            &conn,
                            &cfg.server.trusted_proxies,
                            edge.shutdown(),
                        )
                        .await;
                        // A file route has no upstream counters: a no-op.
                        super::upstream_metrics::observe(
                            rt.upstream_metrics(idx),
                            started,
                            resp.as_ref().err(),
                        );
                        match resp {
                            Ok(r) => (r, route_label, target),
                            Err(e) => {
                                log_error(&e, &route_label, conn.peer);
                                (e.to_response(html), route_label, target)
                            }
                        }
                    }
                    Target::Pusher | Target::Supabase => {
                        let ctx = hub_ctx(&edge, &conn, &route.path);
                        let target = route.target.label();
                        let resp = match edge.front(&route.target) {
                            Some(front) => front.handle(req, ctx).await,
                            None => HttpError::new(ErrorKind::NotBuilt { what: "this front" })
                                .to_response(html),
                        };
                        (resp, route_label, target)
                    }
                }
            }
        }
    };
    let Some((method, logged_path)) = logged else {
        return Ok(resp);
    };
    let (parts, body) = resp.into_parts();
    let entry = Entry {
        method,
        path: logged_path,
        status: parts.status,
        route: route_label,
        target: target_label,
        peer: conn.peer.ip(),
        listener: conn.kind.name(),
        started,
    };
    Ok(Response::from_parts(parts, Logged::wrap(body, entry)))
}

/// What a hub front needs to know about the request's connection and route.
fn hub_ctx(edge: &Stack, conn: &ConnInfo, route_path: &Arc<str>) -> RequestCtx {
    RequestCtx {
        peer: conn.peer,
        local: conn.local,
        tls: conn.kind == ListenerKind::Https,
        route_path: route_path.clone(),
        shutdown: edge.shutdown().clone(),
    }
}

/// The answer to a head [`strict::check`] refused; the connection closes
/// after it (hyper does so for `connection: close`).
fn refuse(e: &HttpError, html: bool, peer: SocketAddr) -> Response<Body> {
    log_error(e, "-", peer);
    let mut resp = e.to_response(html);
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn health(draining: bool) -> Response<Body> {
    let (status, text) = if draining {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ok\n")
    };
    let mut r = Response::new(full(text));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(super) fn log_error(e: &HttpError, route: &str, peer: SocketAddr) {
    let (status, side) = e.status();
    let upstream = e.upstream.as_deref().unwrap_or("-");
    match side {
        Side::Upstream => {
            tracing::warn!(status = status.as_u16(), route, upstream, peer = %peer, "{}", e.message())
        }
        Side::Internal => {
            tracing::warn!(status = status.as_u16(), route, peer = %peer, "{}", e.message())
        }
        Side::Downstream => {
            tracing::info!(status = status.as_u16(), route, upstream, peer = %peer, "{}", e.message())
        }
    }
}
