//! The HTTP layer: serving connections, routing requests, answering errors.
//!
//! `server` runs one client connection: first on `h1`, the hand-written
//! HTTP/1.1 path for bodiless proxied requests, which hands the connection
//! to hyper (HTTP/1.1 with upgrades, HTTP/2) at the first request it does
//! not serve; `service` handles each request hyper serves: health,
//! redirect, routing (`dispatch`, shared with `h1`), then the proxy or a
//! built-in hub front; `router` is the pure route table.

pub mod access_log;
pub mod body;
pub mod error;
mod h1;
pub mod redirect;
pub mod router;
pub mod server;
pub mod service;

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
