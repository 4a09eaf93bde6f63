//! portico: one binary on a PHP app's public port — TLS, routing, the
//! reverse proxy, and an in-process WebSocket hub.
//!
//! # Layout (the path a request takes)
//!
//! - [`config`]: TOML → validated [`config::Config`] (raw → validate).
//! - [`listener`]: bind, accept loops, connection caps ([`limits`]), then per
//!   connection the TLS handshake ([`tls_state`]) on `https`.
//! - [`http::server`]: the connection, first on `http::h1` — a hand-written
//!   HTTP/1.1 path that relays proxied requests without a body or with a
//!   small one itself
//!   ([`proxy::relay`] over the pool's bare connections) — then, from the
//!   first request it does not serve, on hyper (HTTP/1.1 + HTTP/2).
//! - [`http::service`]: health → port-80 redirect → [`http::router`] → a target:
//!   - [`proxy`]: HTTP(S) upstreams through a keep-alive pool driven by the
//!     request's own task, streaming, WebSocket pass-through;
//!   - [`pusher`]: the in-process Pusher hub front, over [`ws`] sockets
//!     and the protocol-agnostic fan-out core [`hub`];
//!   - [`phoenix`]: the in-process Supabase Realtime (Phoenix channels) front;
//!   - [`bridge`]: above both fronts, the optional Pusher ↔ Supabase
//!     mapping, hung on the hub's publish seam ([`hub::observe`]).
//! - [`acme`]: automatic certificates (`[tls] mode = "acme"`): orders,
//!   storage, renewal; publishes into the TLS state and answers challenges.
//! - [`edge`]: the current config generation and reload.
//! - [`shutdown`]: one drain/abort signal every long-lived task obeys.
//! - [`workers`]: optional per-core current-thread runtimes that run the
//!   connections (`PORTICO_WORKERS=per-core`); a connection that turns out
//!   to be a hub socket moves back to the shared runtime ([`movable`]).

pub mod bridge;
pub mod cli;
pub mod config;
pub mod edge;
pub mod http;
pub mod hub;
pub mod io;
pub mod listener;
pub mod phoenix;
pub mod proxy;
pub mod pusher;
pub mod server;
pub mod shutdown;
pub mod tls;
pub mod workers;
pub mod ws;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
pub use edge::{Edge, EdgeError};
pub use listener::Listeners;
pub use shutdown::Shutdown;
pub use workers::Workers;

/// Extra time after the grace period for tasks to notice the abort.
const HARD_DEADLINE: Duration = Duration::from_secs(5);

/// Serves `listeners` with `config` until `shutdown` resolves, then drains:
/// stop accepting, let in-flight requests finish within the grace period,
/// close WebSockets with a close frame, return.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), EdgeError> {
    let edge = Edge::new(config, Shutdown::new())?;
    serve(edge, listeners, shutdown).await;
    Ok(())
}

/// Like [`run`] for an already built [`Edge`] (so the caller can keep a
/// clone for reloads); connections run on the caller's runtime.
pub async fn serve(edge: Edge, listeners: Listeners, shutdown: impl Future<Output = ()>) {
    serve_with(edge, listeners, Arc::new(Workers::shared()), shutdown).await;
}

/// Like [`serve`], with connections run on `workers`. The caller stops the
/// workers ([`Workers::stop`]) after this returns.
pub async fn serve_with(
    edge: Edge,
    listeners: Listeners,
    workers: Arc<Workers>,
    shutdown: impl Future<Output = ()>,
) {
    let inner = edge.inner().clone();
    if let Some(a) = listeners.https.as_ref().and_then(|l| l.local_addr().ok()) {
        inner.set_https_port(a.port());
    }
    let sd = edge.shutdown().clone();
    // One connection cap over every listener; `max_connections` changes on
    // restart only.
    let limits = Arc::new(listener::limits::Limits::new(
        edge.config().server.max_connections,
    ));
    let mut loops = Vec::new();
    for (l, kind) in [
        (listeners.https, http::ListenerKind::Https),
        (listeners.http, http::ListenerKind::Http),
        (listeners.plain, http::ListenerKind::Plain),
    ] {
        if let Some(l) = l {
            loops.push(tokio::spawn(listener::accept_loop(
                l,
                kind,
                inner.clone(),
                limits.clone(),
                workers.clone(),
            )));
        }
    }
    shutdown.await;
    let delay = edge.config().server.shutdown_delay;
    if !delay.is_zero() {
        tracing::info!(delay = ?delay, "shutting down: health endpoint unready, still serving");
        sd.begin_unready();
        tokio::time::sleep(delay).await;
    }
    tracing::info!("shutting down: draining connections");
    sd.begin_drain();
    for l in loops {
        let _ = l.await;
    }
    let grace = edge.config().server.grace_period;
    let left = sd.wait(grace, HARD_DEADLINE).await;
    if left > 0 {
        tracing::warn!(
            tasks = left,
            "some connections did not finish; exiting anyway"
        );
    }
    tracing::info!("stopped");
}
