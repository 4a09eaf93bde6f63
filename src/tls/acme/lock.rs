//! A lock file per name in shared storage, so nodes sharing `tls.storage`
//! don't order the same certificate twice (certmagic's file locks).
//!
//! Owns: `<storage>/<ca>/locks/<name>.lock`, created with `O_EXCL`, holding
//! the owner's id; a heartbeat task rewrites it every `heartbeat` while
//! held. A lock whose file has not been touched for `stale_after` belongs to
//! a node that died and is taken over.
//! Receives: the lock path, timings and a cancellation token.
//! Hands on: a [`LockGuard`]; dropping it stops the heartbeat and removes
//! the file (only if it is still ours).
//!
//! Known limit (same as certmagic): two nodes that find the same stale lock
//! at the same instant can both take it over; the loser's order is then a
//! duplicate, not a corruption (writes are atomic).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::storage::create_dir_private;

/// Lock timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    /// How often the holder touches the file.
    pub heartbeat: Duration,
    /// Untouched for this long: the holder is dead, take over.
    pub stale_after: Duration,
    /// How often a waiter looks again.
    pub poll: Duration,
    /// Give up waiting after this long.
    pub max_wait: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(5),
            stale_after: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            max_wait: Duration::from_secs(600),
        }
    }
}

/// Why the lock was not obtained.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another node kept it for longer than `max_wait`.
    #[error("lock {} still held by {owner} after {waited:?}", path.display())]
    Timeout {
        path: PathBuf,
        owner: String,
        waited: Duration,
    },
    /// The lock file could not be created or read.
    #[error("lock {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// Shutting down.
    #[error("cancelled while waiting for a lock")]
    Cancelled,
}

/// A held lock.
#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    owner: String,
    stop: CancellationToken,
    /// True when a stale lock was taken over (for logs and tests).
    pub took_over: bool,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop.cancel();
        if read_owner(&self.path).as_deref() == Some(self.owner.as_str()) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn read_owner(path: &Path) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.lines().next().map(str::to_owned))
}

fn age(path: &Path) -> Option<Duration> {
    let m = fs::metadata(path).ok()?.modified().ok()?;
    Some(
        SystemTime::now()
            .duration_since(m)
            .unwrap_or(Duration::ZERO),
    )
}

/// A process-unique owner id: host name (if known), pid and a random tag.
pub fn owner_id() -> String {
    let host = fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!(
        "{}:{}:{:08x}",
        if host.is_empty() { "node" } else { &host },
        std::process::id(),
        rand::random::<u32>()
    )
}

fn try_create(path: &Path, owner: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{owner}")?;
    writeln!(f, "{}", super::storage::unix(SystemTime::now()))
}

/// Take the lock at `path`, waiting (bounded by `timing.max_wait`) while
/// another live node holds it.
pub async fn acquire(
    path: &Path,
    owner: &str,
    timing: LockTiming,
    cancel: &CancellationToken,
) -> Result<LockGuard, LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        create_dir_private(dir).map_err(|e| io_err(e.source))?;
    }
    let started = tokio::time::Instant::now();
    let mut took_over = false;
    loop {
        match try_create(path, owner) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let stale = age(path).is_some_and(|a| a > timing.stale_after);
                if stale {
                    let holder = read_owner(path).unwrap_or_default();
                    tracing::warn!(lock = %path.display(), holder, "taking over a stale ACME lock (its holder stopped updating it)");
                    let _ = fs::remove_file(path);
                    took_over = true;
                    continue;
                }
                let waited = started.elapsed();
                if waited >= timing.max_wait {
                    return Err(LockError::Timeout {
                        path: path.to_path_buf(),
                        owner: read_owner(path).unwrap_or_default(),
                        waited,
                    });
                }
                tokio::select! {
                    _ = cancel.cancelled() => return Err(LockError::Cancelled),
                    _ = tokio::time::sleep(timing.poll) => {}
                }
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    let stop = cancel.child_token();
    let (p, o, s) = (path.to_path_buf(), owner.to_string(), stop.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(timing.heartbeat);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = s.cancelled() => return,
                _ = tick.tick() => {
                    if read_owner(&p).as_deref() != Some(o.as_str()) {
                        tracing::warn!(lock = %p.display(), "ACME lock was taken over by another node");
                        return;
                    }
                    let touched = fs::OpenOptions::new().write(true).open(&p)
                        .and_then(|f| f.set_modified(SystemTime::now()));
                    if let Err(e) = touched {
                        tracing::warn!(lock = %p.display(), error = %e, "cannot refresh ACME lock");
                    }
                }
            }
        }
    });
    Ok(LockGuard {
        path: path.to_path_buf(),
        owner: owner.to_string(),
        stop,
        took_over,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> LockTiming {
        LockTiming {
            heartbeat: Duration::from_millis(50),
            stale_after: Duration::from_millis(400),
            poll: Duration::from_millis(20),
            max_wait: Duration::from_secs(5),
        }
    }

    fn tmp() -> PathBuf {
        std::env::temp_dir()
            .join(format!("portico-lock-{}", rand::random::<u32>()))
            .join("a.test.lock")
    }

    #[tokio::test]
    async fn second_node_waits_until_first_releases() {
        let path = tmp();
        let cancel = CancellationToken::new();
        let a = acquire(&path, "node-a", timing(), &cancel)
            .await
            .expect("a");
        assert!(!a.took_over);
        let p2 = path.clone();
        let c2 = cancel.clone();
        let b = tokio::spawn(async move { acquire(&p2, "node-b", timing(), &c2).await });
        // held and heartbeating: b keeps waiting well past stale_after
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(!b.is_finished(), "b must wait while a heartbeats");
        drop(a);
        let b = tokio::time::timeout(Duration::from_secs(3), b)
            .await
            .expect("b gets it")
            .expect("join")
            .expect("lock");
        assert!(!b.took_over);
        assert_eq!(read_owner(&path).as_deref(), Some("node-b"));
        drop(b);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn stale_lock_is_taken_over() {
        let path = tmp();
        create_dir_private(path.parent().unwrap()).unwrap();
        try_create(&path, "dead-node").unwrap();
        let old = SystemTime::now() - Duration::from_secs(10);
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let cancel = CancellationToken::new();
        let g = acquire(&path, "node-b", timing(), &cancel)
            .await
            .expect("take over");
        assert!(g.took_over);
        assert_eq!(read_owner(&path).as_deref(), Some("node-b"));
    }

    #[tokio::test]
    async fn waiting_is_bounded_and_cancellable() {
        let path = tmp();
        let cancel = CancellationToken::new();
        let _a = acquire(&path, "node-a", timing(), &cancel)
            .await
            .expect("a");
        let short = LockTiming {
            max_wait: Duration::from_millis(150),
            ..timing()
        };
        let e = acquire(&path, "node-b", short, &cancel)
            .await
            .expect_err("timeout");
        assert!(
            matches!(e, LockError::Timeout { ref owner, .. } if owner == "node-a"),
            "{e}"
        );
        let c2 = CancellationToken::new();
        c2.cancel();
        let e = acquire(&path, "node-c", timing(), &c2)
            .await
            .expect_err("cancelled");
        assert!(matches!(e, LockError::Cancelled));
    }
}
