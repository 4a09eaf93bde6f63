//! Watching the config file, so an edit takes effect as a SIGHUP would.
//!
//! Owns: the last-seen fingerprint of one file (modification time, size,
//! device and inode). Receives: the path, the [`Timing`], a cancellation
//! token (the drain signal), a switch read at each change (`[server]
//! watch_config` of the running config) and the action to run. Hands on:
//! one call of the action per settled change; what the action does (load,
//! validate, swap in or refuse) is the caller's.
//!
//! Polling rather than inotify (the `notify` crate): a `stat` a second costs
//! nothing, needs no dependency, and sees every way a file is replaced —
//! editors that write a new file and rename it over the old one (a new
//! inode), Kubernetes ConfigMaps that swap a symlink, Docker bind mounts
//! where inotify events never arrive. `metadata` follows symlinks, so the
//! file the link points at is the one watched.
//!
//! A change is acted on once the file has stopped changing for
//! [`Timing::settle`] (an editor's truncate-then-write, or a deploy copying
//! the file, is one change, not two), bounded to [`MAX_SETTLE_ROUNDS`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

/// How often the file is looked at, and how long it must stay unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub poll: Duration,
    pub settle: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            settle: Duration::from_millis(300),
        }
    }
}

/// A file still changing after this many settle periods is acted on anyway.
pub const MAX_SETTLE_ROUNDS: u32 = 20;

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    modified: SystemTime,
    len: u64,
    dev: u64,
    ino: u64,
}

/// `None` while the file is missing or unreadable (mid-rename, deleted).
fn fingerprint(path: &Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        modified: m.modified().ok()?,
        len: m.len(),
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// Polls `path` until `cancel` fires; after each settled change, calls
/// `on_change` if `enabled()` says so. While the file is missing nothing is
/// called (a warning is logged once); its return counts as a change.
pub async fn watch(
    path: PathBuf,
    timing: Timing,
    cancel: CancellationToken,
    enabled: impl Fn() -> bool,
    mut on_change: impl FnMut(),
) {
    let mut seen = fingerprint(&path);
    let mut ticker = tokio::time::interval(timing.poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = fingerprint(&path);
        if now == seen {
            continue;
        }
        if !enabled() {
            seen = now;
            continue;
        }
        let Some(settled) = settle(&path, now, timing.settle, &cancel).await else {
            return;
        };
        seen = settled;
        if settled.is_none() {
            tracing::warn!(path = %path.display(), "config file is gone; keeping the running configuration");
            continue;
        }
        tracing::info!(path = %path.display(), "config file changed: reloading configuration");
        on_change();
    }
}

/// Waits until the fingerprint stays the same for `settle` (bounded), and
/// returns it; `None` (outer) when cancelled meanwhile.
async fn settle(
    path: &Path,
    mut latest: Option<Fingerprint>,
    settle: Duration,
    cancel: &CancellationToken,
) -> Option<Option<Fingerprint>> {
    for _ in 0..MAX_SETTLE_ROUNDS {
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(settle) => {}
        }
        let again = fingerprint(path);
        if again == latest {
            break;
        }
        latest = again;
    }
    Some(latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn tempdir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("portico-config-watch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const FAST: Timing = Timing {
        poll: Duration::from_millis(20),
        settle: Duration::from_millis(30),
    };

    /// Polls `n` until it reaches `want`, for at most 5 s.
    async fn wait_count(n: &AtomicUsize, want: usize) {
        for _ in 0..250 {
            if n.load(Ordering::SeqCst) >= want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("count stayed at {}", n.load(Ordering::SeqCst));
    }

    fn start(
        path: PathBuf,
        on: Arc<AtomicBool>,
    ) -> (
        Arc<AtomicUsize>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let calls = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let c = calls.clone();
        let task = tokio::spawn(watch(
            path,
            FAST,
            cancel.clone(),
            move || on.load(Ordering::SeqCst),
            move || {
                c.fetch_add(1, Ordering::SeqCst);
            },
        ));
        (calls, cancel, task)
    }

    #[tokio::test]
    async fn a_write_and_a_rename_over_the_file_each_call_once_and_cancel_stops() {
        let dir = tempdir("rename");
        let path = dir.join("portico.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let (calls, cancel, task) = start(path.clone(), Arc::new(AtomicBool::new(true)));
        tokio::time::sleep(Duration::from_millis(60)).await;
        std::fs::write(&path, "a = 22\n").unwrap();
        wait_count(&calls, 1).await;
        // An editor's save: a new file renamed over the old one.
        let tmp = dir.join(".portico.toml.swp");
        std::fs::write(&tmp, "a = 333\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        wait_count(&calls, 2).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one call per change");
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the watcher stops on cancel")
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn switched_off_it_calls_nothing_and_a_missing_file_is_not_a_change() {
        let dir = tempdir("off");
        let path = dir.join("portico.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let on = Arc::new(AtomicBool::new(false));
        let (calls, cancel, task) = start(path.clone(), on.clone());
        tokio::time::sleep(Duration::from_millis(60)).await;
        std::fs::write(&path, "a = 22\n").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0, "watch_config = false");
        on.store(true, Ordering::SeqCst);
        std::fs::remove_file(&path).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "a missing file loads nothing"
        );
        std::fs::write(&path, "a = 4444\n").unwrap();
        wait_count(&calls, 1).await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the watcher stops on cancel")
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
