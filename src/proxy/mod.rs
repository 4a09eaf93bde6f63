//! Reverse proxy to HTTP(S) upstreams: request rewriting, the keep-alive
//! pool, streaming both ways, and WebSocket pass-through.

mod dial;
mod forward;
pub mod frames;
pub mod headers;
pub mod pool;
mod tunnel;

use std::sync::Arc;

pub use forward::forward;

use crate::config::ProxyTarget;

/// An upstream target with the pool of connections used to reach it.
#[derive(Clone)]
pub struct Upstream {
    pub target: Arc<ProxyTarget>,
    pub pool: pool::Pool,
}
