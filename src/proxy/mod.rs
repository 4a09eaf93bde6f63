//! Reverse proxy to HTTP(S) upstreams: request rewriting, the keep-alive
//! pool, streaming both ways, and WebSocket pass-through; and, as its own
//! part, FastCGI to php-fpm ([`fastcgi`]).

pub(crate) mod chunked;
mod dial;
pub mod fastcgi;
mod forward;
pub mod frames;
pub mod headers;
mod path;
pub mod pool;
pub(crate) mod relay;
mod request_body;
mod response_head;
mod tunnel;
pub(crate) mod wire;

use std::sync::Arc;

pub use forward::forward;
pub(crate) use forward::rewrite_request_headers;
pub use path::rewrite_path;

use crate::config::ProxyTarget;

/// An upstream target with the pool of connections used to reach it.
#[derive(Clone)]
pub struct Upstream {
    pub target: Arc<ProxyTarget>,
    pub pool: pool::Pool,
}
