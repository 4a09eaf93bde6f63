//! Helpers shared by the edge tests: an in-process edge on `127.0.0.1:0`
//! ([`edge`]), HTTP/1.1, HTTP/2 and WebSocket clients ([`client`]), real
//! upstreams ([`upstream`], [`php`]) and the real binary ([`binary`]).
//! Every wait is bounded by [`WAIT`].

pub(crate) mod binary;
pub(crate) mod client;
pub(crate) mod edge;
pub(crate) mod php;
pub(crate) mod upstream;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Upper bound for any single wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// A directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("portico-edge-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
