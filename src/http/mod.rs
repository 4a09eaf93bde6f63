//! HTTP vocabulary every layer shares: the body type, error kinds and
//! their pages, which listener a connection came in on, and what a built-in
//! front gets with a request. No serving happens here (see
//! [`crate::server`]).

pub mod body;
pub mod error;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::shutdown::Shutdown;

/// Which listener a connection arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// TLS, serves everything.
    Https,
    /// Port 80: ACME HTTP-01 and a redirect to https.
    Http,
    /// Plain HTTP + WebSocket behind a platform that terminated TLS.
    Plain,
}

impl ListenerKind {
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Https => "https",
            ListenerKind::Http => "http",
            ListenerKind::Plain => "plain",
        }
    }
}

/// What a built-in front (Pusher, Supabase) gets with each request.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The local address the client connected to.
    pub local: SocketAddr,
    /// Whether the client reached portico over TLS.
    pub tls: bool,
    /// The matched route's path prefix (e.g. `/app/` or `/reverb/`).
    pub route_path: Arc<str>,
    /// The edge's shutdown handle: spawn upgraded sockets on it.
    pub shutdown: Shutdown,
}

/// A response on its way, from a built-in front.
pub type FrontFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = http::Response<body::Body>> + Send + 'a>>;

/// A built-in front (the Pusher hub, the Supabase Realtime front) as the
/// request stack sees it: it takes the routed request and answers, upgrades
/// included. The server calls fronts only through this.
pub trait Front: Send + Sync + 'static {
    /// Answers one request routed to this front.
    fn handle(&self, req: http::Request<hyper::body::Incoming>, ctx: RequestCtx)
    -> FrontFuture<'_>;
}

/// Publishing one event into the hub from above the fronts without
/// importing them: the diagnostics page's `/.portico/publish` reaches the
/// Pusher front only through this.
pub trait Publish: Send + Sync + 'static {
    /// Publishes `event` with the data string `data` on `channel` of the app
    /// with id `app_id`, as a REST publish would (observers, other nodes
    /// included). Returns how many sockets on this node it was queued for.
    fn publish(&self, app_id: &str, channel: &str, event: &str, data: String) -> usize;
}
