//! Reverse proxy to HTTP(S) upstreams: request rewriting, the pooled client,
//! streaming both ways, and WebSocket pass-through.

pub mod client;
mod forward;
pub mod frames;
pub mod headers;
mod tunnel;

use std::sync::Arc;

pub use forward::forward;

use crate::config::ProxyTarget;

/// An upstream target with the client used to reach it.
#[derive(Clone)]
pub struct Upstream {
    pub target: Arc<ProxyTarget>,
    pub client: client::UpstreamClient,
}
