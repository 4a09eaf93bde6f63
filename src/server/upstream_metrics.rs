//! What a proxied request adds to `/metrics`: its latency when the
//! upstream answered, its cause when the upstream failed it. Shared by the
//! hyper path (`service`, `site`) and the HTTP/1.1 fast path (`h1`).

use std::sync::Arc;
use std::time::Instant;

use crate::http::error::{HttpError, Side};

/// Records a request to an upstream of `kind` (`http`, `fastcgi`) on
/// `route` that started at `started`: its latency when the upstream
/// answered, its cause when the upstream failed it.
pub(super) fn observe(
    route: &Arc<str>,
    kind: &'static str,
    started: Instant,
    error: Option<&HttpError>,
) {
    match error {
        None => crate::metrics::upstream_latency(route, kind, started.elapsed()),
        Some(e) if e.status().1 == Side::Upstream => {
            crate::metrics::upstream_error(route, kind, e.cause())
        }
        Some(_) => {}
    }
}
