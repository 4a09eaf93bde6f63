//! The connection loop of the hand-written path: read a head, route it,
//! relay it to its upstream, repeat; hand the connection to hyper at the
//! first request this path does not serve.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use http::StatusCode;
use http::header;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::Handle;

use super::head::{self, Parsed, RequestHead};
use super::rewind::Rewind;
use super::static_file;
use crate::config::Target;
use crate::http::ListenerKind;
use crate::http::error::accepts_html;
use crate::io::movable::Movable;
use crate::proxy::headers::ClientSide;
use crate::proxy::headers::push_decimal;
use crate::proxy::relay::{Outgoing, RelayError, relay};
use crate::proxy::rewrite_path;
use crate::proxy::wire::{push_date, push_line, push_status_line};
use crate::server::Stack;
use crate::server::access_log::{Entry, redact_query};
use crate::server::hyper_conn::serve_hyper;
use crate::server::router;
use crate::server::router::{Decision, Dispatch, dispatch};
use crate::server::service::log_error;
use crate::server::upstream_metrics;
use crate::server::{ConnInfo, ConnSettings};

/// A head that has not ended within this many bytes goes to hyper, which
/// answers 431 (its buffer limit is the same).
const MAX_HEAD: usize = 64 * 1024;

/// Serves the connection until the client leaves, the header timeout or
/// a drain ends it, or a request this path does not serve hands it over.
/// `hub_home` is set when the connection runs on a per-core worker: a
/// request for a hub front moves the connection there first
/// ([`Movable`]).
pub(crate) async fn serve<I>(
    io: I,
    conn: ConnInfo,
    settings: ConnSettings,
    edge: Arc<Stack>,
    hub_home: Option<Handle>,
) where
    I: AsyncRead + AsyncWrite + Movable + Unpin + Send + 'static,
{
    // The loop's buffers and timers are gone before hyper takes over: a
    // WebSocket keeps its connection task for hours.
    let Some(Handover {
        mut io,
        buf,
        decided,
    }) = serve_loop(io, &conn, settings, &edge).await
    else {
        return;
    };
    let hub = decided.as_ref().is_some_and(Decision::is_hub);
    let Some(home) = hub_home.filter(|_| hub) else {
        return hand_to_hyper(io, buf, conn, settings, edge, decided).await;
    };
    if let Err(e) = io.detach() {
        tracing::debug!(peer = %conn.peer, error = %e, "cannot move a hub connection off its worker");
        return;
    }
    let shutdown = edge.shutdown().clone();
    let moved = async move {
        match io.attach() {
            Ok(()) => {
                tracing::debug!(peer = %conn.peer, "hub connection moved to the shared runtime");
                hand_to_hyper(io, buf, conn, settings, edge, decided).await
            }
            Err(e) => {
                tracing::debug!(peer = %conn.peer, error = %e, "cannot move a hub connection to the shared runtime")
            }
        }
    };
    drop(shutdown.spawn_on(moved, &home));
}

/// hyper serves the rest of the connection, starting with the bytes the
/// loop has read and the decision it made for them.
async fn hand_to_hyper<I>(
    io: I,
    buf: BytesMut,
    conn: ConnInfo,
    settings: ConnSettings,
    edge: Arc<Stack>,
    decided: Option<Decision>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Boxed: hyper's connection future is large and most connections
    // never need it.
    Box::pin(serve_hyper(
        Rewind::new(buf.freeze(), io),
        conn,
        settings,
        edge,
        decided,
    ))
    .await;
}

/// A connection the loop gives up, with the bytes it has already read and
/// where the request they start with goes, when the loop could tell.
struct Handover<I> {
    io: I,
    buf: BytesMut,
    decided: Option<Decision>,
}

/// The keep-alive loop; returns the connection when hyper must take over.
async fn serve_loop<I>(
    mut io: I,
    conn: &ConnInfo,
    settings: ConnSettings,
    edge: &Arc<Stack>,
) -> Option<Handover<I>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = edge.shutdown().clone();
    let mut buf = BytesMut::with_capacity(4096);
    // Scratch buffers, reused by every request on the connection.
    let mut fields = Vec::new();
    let mut request = Vec::new();
    let mut out = Vec::new();
    let mut rbuf = BytesMut::new();
    let deadline = tokio::time::sleep(settings.header_timeout);
    let draining = shutdown.draining();
    let aborted = shutdown.aborted();
    tokio::pin!(deadline, draining, aborted);
    let mut first = true;
    // No request read yet: in a hand-over drain (binary upgrade) such a
    // connection is a client of the listener, which lives on in the new
    // process, so it gets its request answered instead of a close.
    let mut fresh = true;
    loop {
        // As hyper does: each head, and the idle time before it, must fit
        // in the header timeout.
        if !first {
            deadline
                .as_mut()
                .reset(tokio::time::Instant::now() + settings.header_timeout);
        }
        first = false;
        let head = loop {
            if !buf.is_empty() {
                match head::parse(&buf, &mut fields, settings.max_target) {
                    Parsed::Served(h) if buf.len() >= h.len + h.body => break h,
                    // The body is read whole first, within the same
                    // deadline as the head.
                    Parsed::Served(_) => {}
                    Parsed::Partial if buf.len() < MAX_HEAD => {}
                    Parsed::Partial | Parsed::Other => {
                        let decided = decide(&buf, conn, edge);
                        return Some(Handover { io, buf, decided });
                    }
                }
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(4096);
            }
            tokio::select! {
                biased;
                r = io.read_buf(&mut buf) => match r {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                },
                _ = &mut deadline => {
                    tracing::debug!(peer = %conn.peer, failure = "timeout", "no request within the header timeout");
                    return None;
                }
                // An idle connection closes at once; one mid-head finishes
                // its request first.
                _ = &mut draining, if buf.is_empty() && !(fresh && shutdown.is_handover()) => return None,
            }
        };
        fresh = false;

        let rt = edge.runtime();
        let cfg = &rt.config;
        let host_value = head::value(&buf, &fields, "host");
        let host = host_value
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(router::host_from_header);
        let to = dispatch(cfg, conn.kind, host.as_deref(), head.target.path());
        let idx = match to {
            // A route waiting for its process is answered by the hyper path.
            Dispatch::Route(idx)
                if !is_hub(&cfg.routes[idx].target) && rt.waiting_for(idx).is_none() =>
            {
                idx
            }
            _ => {
                let decided = Some(Decision { rt: rt.clone(), to });
                return Some(Handover { io, buf, decided });
            }
        };
        drop(host);
        if let Some(site) = rt.site(idx) {
            let route = &cfg.routes[idx];
            let path = rewrite_path(route, head.target.path());
            let Some((hit, opts)) = static_file::find(site, &head.method, &path) else {
                let decided = Some(Decision { rt: rt.clone(), to });
                return Some(Handover { io, buf, decided });
            };
            let started = Instant::now();
            let headers = head::header_map_of(&buf, &fields, static_file::READ);
            let resp = crate::files::respond(&hit, &head.method, &headers, opts).await;
            let logged = cfg.log.access.then(|| {
                (
                    head.method.clone(),
                    redact_query(head.target.path(), head.target.query()),
                )
            });
            buf.advance(head.len + head.body);
            let close = head.close || shutdown.is_draining();
            let sent = tokio::select! {
                s = static_file::write(&mut io, &mut out, resp, close) => s,
                _ = &mut aborted => return None,
            };
            if let Some((method, path)) = logged {
                Entry {
                    method,
                    path,
                    status: sent.status,
                    route: route.path.clone(),
                    target: route.target.label(),
                    peer: conn.peer.ip(),
                    listener: conn.kind.name(),
                    started,
                }
                .write(sent.bytes, sent.complete);
            }
            if sent.close || !sent.complete {
                if sent.complete {
                    let _ = io.shutdown().await;
                }
                return None;
            }
            continue;
        }
        let Some(up) = rt
            .upstream(idx)
            .filter(|up| head.body as u64 <= up.target.max_body)
        else {
            // Over the route's body limit: hyper answers 413 as usual.
            let decided = Some(Decision { rt: rt.clone(), to });
            return Some(Handover { io, buf, decided });
        };
        let started = Instant::now();
        let route = &cfg.routes[idx];
        let html = head::value(&buf, &fields, "accept").is_some_and(accepts_html);
        let RequestHead {
            method,
            target,
            close,
            len,
            body,
        } = head;
        let logged = cfg
            .log
            .access
            .then(|| (method.clone(), redact_query(target.path(), target.query())));
        let client = ClientSide {
            peer: conn.peer.ip(),
            tls: conn.kind == ListenerKind::Https,
            local_port: conn.local.port(),
            trusted_proxies: &cfg.server.trusted_proxies,
        };
        let path = rewrite_path(route, target.path());
        if client
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&client.peer))
        {
            // A trusted proxy's forwarding headers are extended, not
            // replaced: the map-based rules do that.
            let mut headers = head::header_map(&buf, &fields);
            let original_host = headers.get(header::HOST).cloned();
            crate::proxy::rewrite_request_headers(
                &mut headers,
                original_host,
                &up.target,
                client,
                false,
            );
            head::write_request(&mut request, &method, &path, target.query(), &headers);
        } else {
            head::write_request_untrusted(
                &mut request,
                &method,
                &path,
                target.query(),
                &buf,
                &fields,
                host_value,
                client,
                &up.target,
            );
        }
        request.extend_from_slice(&buf[len..len + body]);
        buf.advance(len + body);
        let close = close || shutdown.is_draining();
        let outgoing = Outgoing {
            head: &request,
            method: &method,
            close,
        };
        let result = tokio::select! {
            r = relay(up, outgoing, &mut io, &mut rbuf, &mut out) => r,
            _ = &mut aborted => return None,
        };
        let (status, bytes, complete, close) = match result {
            Ok(r) => {
                upstream_metrics::observe(rt.upstream_metrics(idx), started, None);
                (r.status, r.bytes, true, r.close)
            }
            Err(RelayError::Unsent(e)) => {
                upstream_metrics::observe(rt.upstream_metrics(idx), started, Some(&e));
                log_error(&e, &route.path, conn.peer);
                let (status, ctype, body) = e.page(html);
                write_error(&mut out, status, ctype, &body, close);
                let sent = io.write_all(&out).await.is_ok() && io.flush().await.is_ok();
                (status, body.len() as u64, sent, close || !sent)
            }
            // The log says the body did not go out whole.
            Err(RelayError::Cut { status, bytes }) => (status, bytes, false, true),
        };
        if let Some((method, path)) = logged {
            Entry {
                method,
                path,
                status,
                route: route.path.clone(),
                target: up.target.url.clone(),
                peer: conn.peer.ip(),
                listener: conn.kind.name(),
                started,
            }
            .write(bytes, complete);
        }
        if close {
            if complete {
                let _ = io.shutdown().await;
            }
            return None;
        }
    }
}

/// Where the head hyper is about to get (a WebSocket upgrade, a request
/// with a body this path does not relay) goes; `None` when the loop cannot
/// read its path, and hyper decides.
fn decide(buf: &[u8], conn: &ConnInfo, edge: &Stack) -> Option<Decision> {
    let (path, host) = head::path_and_host(buf)?;
    let rt = edge.runtime();
    let host = host.and_then(router::host_from_header);
    let to = dispatch(&rt.config, conn.kind, host.as_deref(), path);
    Some(Decision { rt, to })
}

fn is_hub(target: &Target) -> bool {
    matches!(target, Target::Pusher | Target::Supabase)
}

/// An error page as a whole HTTP/1.1 response.
fn write_error(out: &mut Vec<u8>, status: StatusCode, ctype: &str, body: &str, close: bool) {
    out.clear();
    push_status_line(out, status);
    push_line(out, b"content-type", ctype.as_bytes());
    push_line(out, b"cache-control", b"no-store");
    out.extend_from_slice(b"content-length: ");
    push_decimal(out, body.len() as u64);
    out.extend_from_slice(b"\r\n");
    push_date(out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
}
