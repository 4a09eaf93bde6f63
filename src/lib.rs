//! portico: one binary on a PHP app's public port — TLS, routing, the
//! reverse proxy, and an in-process WebSocket hub.
//!
//! # Layout (the path a request takes)
//!
//! 1. [`listener`]: bind, accept, connection caps ([`listener::limits`]),
//!    then the TLS handshake ([`tls`]) on `https`.
//! 2. [`server`]: the connection. First the hand-written HTTP/1.1 path
//!    (`server::h1`), which relays proxied requests and sends a document
//!    root's static files itself; at the first
//!    request it does not serve it hands the connection, and its routing
//!    decision, to hyper ([`server::hyper_conn`], HTTP/1.1 + HTTP/2).
//!    [`server::strict`] refuses malformed heads; [`server::router`]
//!    decides once per request: health, ACME, redirect, the diagnostics
//!    page (`server::diag`, `/.portico/`, which publishes through
//!    [`http::Publish`]), or a route.
//! 3. A route's target: [`proxy`] (keep-alive upstream pool, streaming,
//!    WebSocket tunnels; [`proxy::fastcgi`] for php-fpm, with Laravel's
//!    front-controller rules), static files from a document root
//!    ([`files`]: safe lookup, ranges, validators, precompressed siblings;
//!    beside php-fpm or as a plain file server), or a built-in front
//!    behind [`http::Front`]:
//!    [`pusher`] (Pusher protocol and REST) or [`phoenix`] (Supabase
//!    Realtime), both over [`ws`] sockets and the protocol-agnostic fan-out
//!    core [`hub`]. [`bridge`] maps Pusher ↔ Supabase through the hub's
//!    observer seam ([`hub::observe`]); on the same seam [`cluster`] sends
//!    each published message to the other nodes through Redis and
//!    delivers theirs here (`[cluster]`, off by default).
//!
//! Around it: [`edge`] is the composition root (builds the hub, fronts,
//! TLS state and [`server::Stack`] from a [`config::Config`], reloads);
//! [`config`] turns TOML into plain validated data, checked once at load;
//! [`tls`] holds certificates (dev CA, files, SNI) and [`tls::acme`];
//! [`supervise`] runs `[[processes]]` (php-fpm, queue workers, Vite) and
//! hands the router a readiness handle per `wait_for` route;
//! [`shutdown`] is the one drain/abort signal; [`workers`] runs
//! connections on per-core event loops and [`io::movable`] moves a hub
//! socket off them; [`sd_notify`] tells systemd when portico is ready
//! and when it stops; [`upgrade`] hands the listening sockets to a new
//! binary on SIGUSR2 (fds over a private unix socket, then a `ready`
//! line) so an upgrade refuses no connection; [`cli`] is the banner,
//! `keygen` and `status`.
//! [`metrics`] counts events (handshake failures, REST calls, upstream
//! latency, …) for [`admin`], the `[admin]` listener serving Prometheus
//! `/metrics` and `/status` from those counters and the edge's live state.
//!
//! # Layers (bottom to top; `tests/layering.rs` keeps them)
//!
//! `shutdown`, `workers`, `io`, `sd_notify`, `metrics`, `upgrade` → `http` → `config` → `tls`, `supervise`,
//! `files` → `ws` → `hub` → `proxy`, `cluster` → `pusher`, `phoenix` →
//! `bridge` → `server` → `edge` → `listener`, `admin` → `cli`. A module imports only
//! lower layers.

pub mod admin;
pub mod bridge;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod edge;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod hub;
pub mod io;
pub mod listener;
pub mod metrics;
pub mod phoenix;
pub mod proxy;
pub mod pusher;
pub mod sd_notify;
pub mod server;
pub mod shutdown;
pub mod supervise;
pub mod tls;
pub mod upgrade;
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
    // A hand-over leaves the listeners open in the new process: nothing to
    // wait for before draining.
    if !delay.is_zero() && !sd.is_handover() {
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
