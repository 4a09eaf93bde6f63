//! Files mode: load the configured certificate/key files and reload them on
//! change (and on demand, for SIGHUP).
//!
//! Owns: the list of configured [`CertKeyPaths`] and the last-seen file
//! fingerprints (mtime + size) of the watcher.
//! Receives: the paths, the [`SharedCertStore`] to publish into, a poll
//! interval and a `CancellationToken`.
//! Hands on: a new [`CertStore`] into the `ArcSwap`, but only when the whole
//! new set loads; otherwise the old snapshot stays and the reason is logged
//! (`tracing`, with `path`/`error` fields).
//!
//! Polling (every ~2 s) rather than inotify: it works the same on every
//! platform and on Docker bind mounts and Kubernetes secret symlink swaps,
//! and costs a few `stat`s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::resolver::SharedCertStore;
use super::store::{CertStore, StoreError};

/// Default poll interval for [`watch_files`].
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// One configured certificate chain file and its key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertKeyPaths {
    /// PEM chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Load every pair into one store; the first pair is the default. Fails on
/// the first bad pair, naming its file.
pub fn load_files(pairs: &[CertKeyPaths]) -> Result<CertStore, StoreError> {
    let mut b = CertStore::builder();
    for p in pairs {
        b.add_files(&p.cert, &p.key)?;
    }
    b.build_non_empty()
}

/// Load and publish now (SIGHUP). On error the published store is left
/// alone and the error returned for the caller to report. Blocking (file
/// reads): call it from `spawn_blocking` in async code.
pub fn reload_now(pairs: &[CertKeyPaths], shared: &SharedCertStore) -> Result<(), StoreError> {
    let store = load_files(pairs)?;
    log_warnings(&store);
    shared.store(Arc::new(store));
    Ok(())
}

/// Per-file (mtime, len); `None` where the file cannot be stat'ed.
type Fingerprint = Vec<Option<(SystemTime, u64)>>;

fn fingerprint(pairs: &[CertKeyPaths]) -> Fingerprint {
    pairs
        .iter()
        .flat_map(|p| [&p.cert, &p.key])
        .map(|path| {
            // metadata() follows symlinks, so a re-pointed symlink shows up.
            let m = std::fs::metadata(path).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
}

fn log_warnings(store: &CertStore) {
    for w in store.warnings() {
        tracing::warn!(warning = %w, "certificate loaded with a warning");
    }
}

/// Poll the files every `interval`; when any changes, load the whole set
/// and publish it if valid. A bad set is logged once per change and the old
/// store stays (a half-written cert/key pair usually fixes itself on the
/// next change). Returns when `cancel` fires.
pub async fn watch_files(
    pairs: Vec<CertKeyPaths>,
    shared: SharedCertStore,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut seen = fingerprint(&pairs);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = fingerprint(&pairs);
        if now == seen {
            continue;
        }
        seen = now;
        let (p, sh) = (pairs.clone(), Arc::clone(&shared));
        match tokio::task::spawn_blocking(move || reload_now(&p, &sh)).await {
            Ok(Ok(())) => {
                tracing::info!(
                    certs = shared.load().infos().len(),
                    "reloaded certificates after file change"
                );
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "certificate files changed but the new set is invalid; keeping the current certificates");
            }
            Err(e) => tracing::warn!(error = %e, "certificate reload task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::resolver::shared_store;
    use std::path::Path;

    fn write_pair(dir: &Path, stem: &str, names: &[&str]) -> CertKeyPaths {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let ck = rcgen::generate_simple_self_signed(names).expect("gen");
        let p = CertKeyPaths {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}-key.pem")),
        };
        std::fs::write(&p.cert, ck.cert.pem()).expect("write");
        std::fs::write(&p.key, ck.signing_key.serialize_pem()).expect("write");
        p
    }

    fn names(shared: &SharedCertStore) -> Vec<String> {
        shared.load().infos()[0].dns_names.clone()
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "portico-reload-{tag}-{}-{:?}",
            std::process::id(),
            SystemTime::now()
        ));
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn bad_new_files_keep_the_old_store() {
        let dir = tempdir("bad");
        let pair = write_pair(&dir, "site", &["one.example"]);
        let shared = shared_store(load_files(std::slice::from_ref(&pair)).expect("load"));

        // Mismatched key: a different pair's key over the old key file.
        let other = write_pair(&dir, "other", &["two.example"]);
        std::fs::copy(&other.key, &pair.key).expect("copy");
        let err = reload_now(std::slice::from_ref(&pair), &shared);
        assert!(
            matches!(err, Err(StoreError::KeyMismatch { .. })),
            "{err:?}"
        );
        assert_eq!(names(&shared), vec!["one.example".to_owned()]);

        // Garbage PEM.
        std::fs::write(&pair.cert, "not a pem").expect("write");
        let err = reload_now(std::slice::from_ref(&pair), &shared);
        assert!(
            matches!(err, Err(StoreError::NoCertificate { .. })),
            "{err:?}"
        );
        assert_eq!(names(&shared), vec!["one.example".to_owned()]);

        // A good pair is published.
        let good = write_pair(&dir, "site", &["three.example"]);
        reload_now(std::slice::from_ref(&good), &shared).expect("ok");
        assert_eq!(names(&shared), vec!["three.example".to_owned()]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn watcher_publishes_valid_changes_and_stops_on_cancel() {
        let dir = tempdir("watch");
        let pair = write_pair(&dir, "site", &["one.example"]);
        let shared = shared_store(load_files(std::slice::from_ref(&pair)).expect("load"));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(watch_files(
            vec![pair.clone()],
            Arc::clone(&shared),
            Duration::from_millis(20),
            cancel.clone(),
        ));

        // Invalid change: ignored.
        std::fs::write(&pair.cert, "garbage").expect("write");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(names(&shared), vec!["one.example".to_owned()]);

        // Valid change (different size than "garbage", so the fingerprint
        // changes even on coarse-mtime filesystems).
        write_pair(&dir, "site", &["two.example"]);
        let mut published = false;
        for _ in 0..100 {
            if names(&shared) == vec!["two.example".to_owned()] {
                published = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(published, "watcher did not publish the new certificate");

        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("watcher stops on cancel")
            .expect("no panic");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
