//! Helpers shared by the edge tests: HTTP/1.1, HTTP/2 and WebSocket
//! clients ([`client`]), real upstreams ([`upstream`], [`php`]) and the
//! real binary ([`binary`]); the in-process edge is `crate::inproc`.
//! Every wait is bounded by [`WAIT`].

pub(crate) mod binary;
pub(crate) mod client;
pub(crate) mod php;
pub(crate) mod upstream;

use std::time::Duration;

pub(crate) use crate::inproc::TempDir;

/// Upper bound for any single wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// Awaits `fut` for at most [`WAIT`], panicking with `what` on timeout.
pub(crate) async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    crate::wait::within(WAIT, what, fut).await
}

/// Polls `check` every 50 ms until it returns `Some`, for at most [`WAIT`].
pub(crate) async fn poll_until<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    crate::wait::poll_until(WAIT, what, check).await
}
