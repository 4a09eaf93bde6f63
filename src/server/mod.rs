//! Serving client connections: the request stack.
//!
//! [`serve`] runs one connection, first on [`h1`], the hand-written
//! HTTP/1.1 path that relays proxied requests itself, which hands the
//! connection to hyper ([`hyper_conn`]: HTTP/1.1 with upgrades, HTTP/2) at
//! the first request it does not serve; [`service`] handles each request
//! hyper serves. Both ask [`router::dispatch`] where a request goes, once
//! per request: health, ACME challenge, port-80 redirect, the diagnostics
//! page (`diag`, `/.portico/`, before any route), or a route, then the
//! proxy, a document root ([`site`]: php-fpm or static files) or a
//! built-in front ([`waiting`] answers for a route whose process is not
//! ready yet).

pub mod access_log;
mod diag;
mod h1;
pub mod hyper_conn;
pub mod redirect;
pub mod router;
pub mod service;
mod site;
pub(crate) mod sniff;
pub mod stack;
pub mod strict;
mod upstream_metrics;
mod waiting;

use std::net::SocketAddr;
use std::time::Duration;

use crate::http::ListenerKind;

pub(crate) use h1::check_parse as check_h1_head;
pub(crate) use h1::serve;
pub use stack::{Fronts, Runtime, Stack};

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub kind: ListenerKind,
}

/// Per-connection protocol settings, taken from the config at accept time.
#[derive(Debug, Clone, Copy)]
pub struct ConnSettings {
    pub header_timeout: Duration,
    /// Allow HTTP/2 (only offered over TLS via ALPN; h2c prior knowledge too).
    pub http2: bool,
    /// `server.max_request_target`: a longer target is answered 414.
    pub max_target: usize,
}
