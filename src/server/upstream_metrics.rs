//! What a proxied request adds to `/metrics`: its latency when the
//! upstream answered, its cause when the upstream failed it. Shared by the
//! hyper path (`service`, `site`) and the HTTP/1.1 fast path (`h1`); the
//! route's handle comes from its [`Runtime`](super::stack::Runtime).

use std::time::Instant;

use crate::http::error::{HttpError, Side};
use crate::metrics::RouteUpstream;

/// Records a request on the route of `metrics` that started at `started`:
/// its latency when the upstream answered, its cause when the upstream
/// failed it. `None`: the route has no upstream to measure.
pub(super) fn observe(
    metrics: Option<&RouteUpstream>,
    started: Instant,
    error: Option<&HttpError>,
) {
    let Some(m) = metrics else { return };
    match error {
        None => m.answered(started.elapsed()),
        Some(e) if e.status().1 == Side::Upstream => m.failed(e.cause()),
        Some(_) => {}
    }
}
