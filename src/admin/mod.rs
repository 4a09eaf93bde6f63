//! The admin listener (`[admin] listen`): Prometheus `GET /metrics` and
//! `GET /status` (JSON, read by `portico status`), plain HTTP/1.1.
//!
//! Owns: binding its socket, its accept loop and its two pages. Receives:
//! the edge (live state: hub, TLS, supervisor, cluster) and the bound
//! listener addresses from the composition root. Hands on: nothing; it
//! only reads. Off unless configured; meant for loopback (`portico check`
//! warns otherwise), with no authentication.
//!
//! Parts: [`prom`] (the metrics page), [`status`] (the status document),
//! `procfs` (the process's memory and descriptors).

mod procfs;
pub mod prom;
pub mod status;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::config::admin::Admin;
use crate::edge::EdgeInner;
use crate::http::body::{Body, full};

/// How long one admin connection may stay open.
const CONN_DEADLINE: Duration = Duration::from_secs(30);

/// The admin listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (`admin.listen`): {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// Binds `admin.listen` (call inside the runtime).
pub fn bind(admin: &Admin) -> Result<TcpListener, BindError> {
    let err = |source| BindError {
        addr: admin.listen,
        source,
    };
    let std = std::net::TcpListener::bind(admin.listen).map_err(err)?;
    std.set_nonblocking(true).map_err(err)?;
    TcpListener::from_std(std).map_err(err)
}

/// Serves `/metrics` and `/status` on `listener` until the edge drains.
pub async fn serve(listener: TcpListener, edge: Arc<EdgeInner>, cx: status::Context) {
    let shutdown = edge.shutdown().clone();
    let cx = Arc::new(cx);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.draining() => break,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(listener = "admin", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let edge = edge.clone();
        let cx = cx.clone();
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            let edge = edge.clone();
            let cx = cx.clone();
            async move { Ok::<_, Infallible>(answer(req, &edge, &cx).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(false)
            .serve_connection(TokioIo::new(stream), svc);
        let aborted = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = tokio::time::timeout(CONN_DEADLINE, conn) => {
                    if let Ok(Err(e)) = r {
                        tracing::debug!(%peer, error = %e, "admin connection failed");
                    }
                }
                _ = aborted.aborted() => {}
            }
        });
    }
    tracing::debug!(listener = "admin", "stopped accepting");
}

async fn answer(req: Request<Incoming>, edge: &EdgeInner, cx: &status::Context) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => text(StatusCode::OK, prom::CONTENT_TYPE, prom::render(edge)),
        "/status" => {
            let doc = status::collect(edge, cx).await;
            match serde_json::to_string_pretty(&doc) {
                Ok(json) => text(StatusCode::OK, "application/json", json + "\n"),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("{e}\n"),
                ),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "portico admin: GET /metrics (Prometheus) or /status (JSON)\n".into(),
        ),
    }
}

fn text(status: StatusCode, ctype: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(ctype),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}
