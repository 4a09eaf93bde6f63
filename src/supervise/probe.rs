//! The readiness probe: connect to the process's `ready` socket until it
//! accepts.
//!
//! Owns: the attempt schedule (each connect bounded by [`ATTEMPT`], pauses
//! growing from [`FIRST_PAUSE`] to [`MAX_PAUSE`], one warning after
//! [`WARN_AFTER`]). Receives: the validated [`ReadyProbe`]. Hands on: a
//! future that resolves once ready; the process task drops it when the
//! process exits, so it never outlives a run.

use std::time::{Duration, Instant};

use crate::config::ReadyProbe;

const ATTEMPT: Duration = Duration::from_secs(1);
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);
const WARN_AFTER: Duration = Duration::from_secs(30);

/// Resolves when `probe` accepts a connection (at once for `None`).
pub(super) async fn until_ready(probe: Option<ReadyProbe>, name: &str) {
    let Some(probe) = probe else { return };
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut warned = false;
    loop {
        if let Ok(true) = tokio::time::timeout(ATTEMPT, accepts(&probe)).await {
            return;
        }
        if !warned && started.elapsed() >= WARN_AFTER {
            warned = true;
            tracing::warn!(process = name, ready = %probe, waited = ?started.elapsed(), "process is running but not ready yet; its wait_for routes answer 503");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

async fn accepts(probe: &ReadyProbe) -> bool {
    match probe {
        ReadyProbe::Tcp(a) => tokio::net::TcpStream::connect(a).await.is_ok(),
        ReadyProbe::Unix(p) => tokio::net::UnixStream::connect(p).await.is_ok(),
    }
}
