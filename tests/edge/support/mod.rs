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
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most [`WAIT`].
pub(crate) async fn poll_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("gave up after {WAIT:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
