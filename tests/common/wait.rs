//! Bounded waits shared by the test crates: each crate passes its own
//! upper bound (its `WAIT`).

use std::time::Duration;

/// Awaits `fut` for at most `limit`, panicking with `what` on timeout.
pub(crate) async fn within<F: std::future::Future>(
    limit: Duration,
    what: &str,
    fut: F,
) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
pub(crate) async fn poll_until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("gave up after {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
