//! One shutdown signal for every long-lived task.
//!
//! Owns: the two-phase stop. `drain` fires on SIGTERM/SIGINT: listeners stop
//! accepting, HTTP connections finish their in-flight requests, WebSockets get
//! a close frame. `abort` fires when the grace period is over: whatever is
//! still running is cut. Every task that must be waited for is spawned with
//! [`Shutdown::spawn`], so [`Shutdown::wait`] sees it — upgraded sockets
//! included, which hyper stops tracking once they leave HTTP.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cloneable handle passed to every subsystem.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    /// Set first on SIGTERM: the health endpoint turns 503.
    unready: Arc<AtomicBool>,
    /// Set before the drain when a new process has taken the listeners
    /// over (binary upgrade): see [`Shutdown::begin_handover`].
    handover: Arc<AtomicBool>,
    drain: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns the health endpoint unready while everything else still serves.
    pub fn begin_unready(&self) {
        self.unready.store(true, Ordering::Relaxed);
    }

    /// True once shutdown has started (unready or draining).
    pub fn is_unready(&self) -> bool {
        self.unready.load(Ordering::Relaxed) || self.drain.is_cancelled()
    }

    /// Marks the coming drain as a hand-over to a new process (binary
    /// upgrade): the listeners stay open in the new process, so the drain
    /// skips `shutdown_delay`, a connection accepted but not yet served
    /// gets its first request answered (it was a client of the listener,
    /// not of this process), and the cluster node keeps its state for the
    /// new process (same node id). Call before [`begin_drain`](Self::begin_drain).
    pub fn begin_handover(&self) {
        self.handover.store(true, Ordering::Relaxed);
    }

    /// True once [`begin_handover`](Self::begin_handover) was called.
    pub fn is_handover(&self) -> bool {
        self.handover.load(Ordering::Relaxed)
    }

    /// Starts draining: stop accepting, finish what is in flight.
    pub fn begin_drain(&self) {
        self.begin_unready();
        self.drain.cancel();
    }

    /// True once draining has started.
    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Resolves when draining starts.
    pub fn draining(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.drain.cancelled()
    }

    /// An owned future that resolves when draining starts.
    pub fn draining_owned(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.drain.clone().cancelled_owned()
    }

    /// A token cancelled when draining starts, for background tasks that
    /// are not waited for (certificate renewal, watchers); cancel it
    /// yourself to stop just that task.
    pub fn drain_token(&self) -> CancellationToken {
        self.drain.child_token()
    }

    /// Resolves when the grace period is over and everything must stop.
    pub fn aborted(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.abort.cancelled()
    }

    /// An owned future that resolves at abort time.
    pub fn aborted_owned(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.abort.clone().cancelled_owned()
    }

    /// Spawns a task that shutdown waits for.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(fut)
    }

    /// Spawns a task that shutdown waits for on another runtime (a
    /// connection worker, see [`crate::workers`]).
    pub fn spawn_on<F>(
        &self,
        fut: F,
        handle: &tokio::runtime::Handle,
    ) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn_on(fut, handle)
    }

    /// Number of tracked tasks still running.
    pub fn tasks(&self) -> usize {
        self.tracker.len()
    }

    /// After [`begin_drain`](Self::begin_drain): waits up to `grace` for the
    /// tracked tasks, then fires abort and waits up to `hard` more.
    /// Returns the number of tasks that were still running at the end.
    pub async fn wait(&self, grace: Duration, hard: Duration) -> usize {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            self.abort.cancel();
            return 0;
        }
        tracing::warn!(remaining = self.tracker.len(), grace = ?grace, "grace period over; cutting remaining connections");
        self.abort.cancel();
        let _ = tokio::time::timeout(hard, self.tracker.wait()).await;
        self.tracker.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_tasks_then_aborts_stragglers() {
        let s = Shutdown::new();
        let s2 = s.clone();
        s.spawn(async move {
            s2.draining().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        let s3 = s.clone();
        s.spawn(async move {
            // Ignores drain; only abort stops it.
            s3.aborted().await;
        });
        s.begin_drain();
        let left = s.wait(Duration::from_secs(1), Duration::from_secs(1)).await;
        assert_eq!(left, 0);
        assert!(s.abort.is_cancelled());
    }
}
