//! The on-disk layout of ACME state, shared by every node that points at
//! the same `tls.storage`.
//!
//! Owns: paths, atomic 0600 writes (temp file + rename, directories 0700),
//! and the per-certificate metadata.
//! Receives: the storage root and the directory URL (one subtree per CA, so
//! staging certificates are never served after switching to production).
//! Hands on: [`StoredCert`]s (PEM chain + key + [`Meta`]) to the manager and
//! to `portico certs`.
//!
//! ```text
//! <storage>/<ca>/account.json               ACME account key + URL (0600)
//! <storage>/<ca>/certs/<domain>/cert.pem    full chain, leaf first (0600)
//! <storage>/<ca>/certs/<domain>/key.pem     private key, PKCS#8 (0600)
//! <storage>/<ca>/certs/<domain>/meta.json   issuer, validity, challenge, ARI pick
//! <storage>/<ca>/locks/<domain>.lock        held while ordering (heartbeat)
//! <storage>/<ca>/challenges/<token>         pending HTTP-01 answers (any node serves them)
//! ```
//! `<ca>` is the directory URL's host and path with every other character
//! replaced by `-`, e.g. `acme-v02.api.letsencrypt.org-directory`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::ChallengeKind;

/// A storage operation failed; names the path.
#[derive(Debug, thiserror::Error)]
#[error("ACME storage {}: {source}", path.display())]
pub struct StorageError {
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError {
        path: path.to_path_buf(),
        source,
    }
}

/// What portico remembers about a certificate besides the PEM files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The issuer's common name (or full DN when it has none).
    pub issuer: String,
    /// Validity start/end, seconds since the epoch.
    pub not_before: u64,
    pub not_after: u64,
    /// When it was obtained, seconds since the epoch.
    pub issued_at: u64,
    /// The challenge that worked (`http-01` / `tls-alpn-01`): tried first
    /// next time.
    pub challenge: Option<String>,
    /// The renewal time picked inside the CA's ARI window, if the CA
    /// offers ARI; seconds since the epoch.
    #[serde(default)]
    pub ari_renew_at: Option<u64>,
}

impl Meta {
    /// The remembered challenge, parsed.
    pub fn challenge_kind(&self) -> Option<ChallengeKind> {
        self.challenge.as_deref().and_then(ChallengeKind::parse)
    }
}

/// A certificate read back from storage.
#[derive(Debug, Clone)]
pub struct StoredCert {
    pub chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub meta: Option<Meta>,
    /// Where it lives (for messages and `CertInfo::source`).
    pub dir: PathBuf,
}

/// The storage subtree of one CA.
#[derive(Debug, Clone)]
pub struct CaStorage {
    root: PathBuf,
}

/// The subtree name for a directory URL.
pub fn ca_dir_name(directory: &str) -> String {
    let rest = directory
        .split_once("://")
        .map_or(directory, |(_, r)| r)
        .trim_end_matches('/');
    rest.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl CaStorage {
    /// The subtree of `storage` for `directory` (not created yet).
    pub fn new(storage: &Path, directory: &str) -> Self {
        Self {
            root: storage.join(ca_dir_name(directory)),
        }
    }

    /// `<storage>/<ca>`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn account_path(&self) -> PathBuf {
        self.root.join("account.json")
    }

    pub fn cert_dir(&self, domain: &str) -> PathBuf {
        self.root.join("certs").join(domain)
    }

    /// Pending HTTP-01 answers, readable by every node.
    pub fn challenges_dir(&self) -> PathBuf {
        self.root.join("challenges")
    }

    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(format!("{name}.lock"))
    }

    /// Read a domain's certificate; `Ok(None)` when there is none yet.
    pub fn load_cert(&self, domain: &str) -> Result<Option<StoredCert>, StorageError> {
        let dir = self.cert_dir(domain);
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let chain_pem = match fs::read(&cert) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(at(&cert)(e)),
        };
        let key_pem = match fs::read(&key) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(at(&key)(e)),
        };
        let meta = fs::read(dir.join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Ok(Some(StoredCert {
            chain_pem,
            key_pem,
            meta,
            dir,
        }))
    }

    /// Persist a new certificate: key, then chain, then metadata, each
    /// atomically. Readers pair them by checking the key against the leaf.
    pub fn save_cert(
        &self,
        domain: &str,
        chain_pem: &[u8],
        key_pem: &[u8],
        meta: &Meta,
    ) -> Result<(), StorageError> {
        let dir = self.cert_dir(domain);
        create_dir_private(&dir)?;
        write_private(&dir.join("key.pem"), key_pem)?;
        write_private(&dir.join("cert.pem"), chain_pem)?;
        self.save_meta(domain, meta)
    }

    /// Rewrite only the metadata (e.g. a new ARI pick).
    pub fn save_meta(&self, domain: &str, meta: &Meta) -> Result<(), StorageError> {
        let dir = self.cert_dir(domain);
        create_dir_private(&dir)?;
        let json = serde_json::to_vec_pretty(meta).unwrap_or_default();
        write_private(&dir.join("meta.json"), &json)
    }
}

/// `mkdir -p` with 0700 on the directories it creates.
pub fn create_dir_private(dir: &Path) -> Result<(), StorageError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(at(dir))
}

/// Write `bytes` to `path` atomically with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir_private(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{:x}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        // create_new + mode is subject to the umask; make sure.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(at(path))
}

/// Seconds since the epoch.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The inverse of [`unix`].
pub fn from_unix(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_names() {
        assert_eq!(
            ca_dir_name("https://acme-v02.api.letsencrypt.org/directory"),
            "acme-v02.api.letsencrypt.org-directory"
        );
        assert_eq!(
            ca_dir_name("https://127.0.0.1:14000/dir"),
            "127.0.0.1-14000-dir"
        );
    }

    #[test]
    fn files_are_0600_dirs_0700_and_round_trip() {
        let tmp = std::env::temp_dir().join(format!("portico-acme-st-{}", rand::random::<u32>()));
        let st = CaStorage::new(&tmp, "https://ca.test/dir");
        assert!(st.load_cert("a.test").expect("read").is_none());
        let meta = Meta {
            issuer: "CA".into(),
            not_before: 1,
            not_after: 2,
            issued_at: 1,
            challenge: Some("tls-alpn-01".into()),
            ari_renew_at: None,
        };
        st.save_cert("a.test", b"CHAIN", b"KEY", &meta)
            .expect("save");
        let back = st.load_cert("a.test").expect("read").expect("some");
        assert_eq!(back.chain_pem, b"CHAIN");
        assert_eq!(back.key_pem, b"KEY");
        assert_eq!(back.meta.as_ref(), Some(&meta));
        assert_eq!(meta.challenge_kind(), Some(ChallengeKind::TlsAlpn01));
        for f in ["cert.pem", "key.pem", "meta.json"] {
            let m = fs::metadata(st.cert_dir("a.test").join(f)).expect("meta");
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
        }
        let m = fs::metadata(st.cert_dir("a.test")).expect("dir");
        assert_eq!(m.permissions().mode() & 0o777, 0o700);
        // no temp files left behind
        let left: Vec<_> = fs::read_dir(st.cert_dir("a.test"))
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(left.is_empty());
        let _ = fs::remove_dir_all(&tmp);
    }
}
