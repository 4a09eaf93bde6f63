//! Development certificates, like Caddy's local CA or mkcert.
//!
//! Owns: a directory (default `certs-dev/`) holding a persistent local root
//! CA (`portico-dev-ca.pem` + `portico-dev-ca-key.pem`, key mode 0600,
//! valid ~10 years, created on first use and reused after) and a short-lived
//! leaf (`localhost.pem` + `localhost-key.pem`, 7 days) for `localhost`,
//! `127.0.0.1`, `::1`, `*.localhost`, `*.test` and the configured extra
//! hosts. All keys are ECDSA P-256.
//! Receives: the directory, the extra hosts and a [`DevPolicy`] (lifetimes and
//! renewal threshold, injectable so tests can force renewal).
//! Hands on: [`DevCerts`] (paths and what was done, for `portico certs-dev`
//! and the banner) and, via [`renew`] / [`run_renewal`], fresh [`CertStore`]
//! snapshots to publish.
//!
//! The leaf is re-issued when it is missing or unreadable, has less than
//! [`DevPolicy::renew_before`] left, does not cover the requested names, or
//! was not signed by the CA in the directory. The CA is never replaced while
//! it is valid: a broken CA file is an error telling the user what to
//! delete, because silently replacing it would break every trust store that
//! holds the old one.
//!
//! Everything here is blocking file I/O and key generation (milliseconds);
//! async callers go through [`run_renewal`] or `spawn_blocking`.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_util::sync::CancellationToken;

use super::resolver::SharedCertStore;
use super::store::{CertInfo, CertStore, StoreError};
use pki::{check_leaf, io_err, issue_leaf, load_or_create_ca, read, write_file};

/// Default directory, relative to the working directory.
pub const DEFAULT_DEV_DIR: &str = "certs-dev";
/// CA certificate file name (the one users trust).
pub const CA_CERT_FILE: &str = "portico-dev-ca.pem";
/// CA private key file name (mode 0600).
pub const CA_KEY_FILE: &str = "portico-dev-ca-key.pem";
/// Leaf certificate file name.
pub const LEAF_CERT_FILE: &str = "localhost.pem";
/// Leaf private key file name (mode 0600).
pub const LEAF_KEY_FILE: &str = "localhost-key.pem";
/// Names every dev leaf covers, before the configured extra hosts.
///
/// The wildcards are second-level (`*.localhost`, `*.test`): Chrome accepts
/// them, but Firefox, rustls/webpki and some other TLS stacks refuse
/// wildcards directly under a TLD, so users of those list their app names
/// (`myapp.test`) in `[tls] hosts`.
pub const DEFAULT_DEV_NAMES: [&str; 5] = ["localhost", "*.localhost", "*.test", "127.0.0.1", "::1"];

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// Backdating of `not_before`, against small clock differences.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// Lifetimes and the renewal threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPolicy {
    /// How long a new CA is valid. Default 10 years.
    pub ca_lifetime: Duration,
    /// How long a new leaf is valid. Default 7 days.
    pub leaf_lifetime: Duration,
    /// Re-issue the leaf when less than this is left. Default a third of
    /// `leaf_lifetime`.
    pub renew_before: Duration,
}

impl Default for DevPolicy {
    fn default() -> Self {
        let leaf_lifetime = 7 * DAY;
        Self {
            ca_lifetime: 3650 * DAY,
            leaf_lifetime,
            renew_before: leaf_lifetime / 3,
        }
    }
}

/// Why the leaf was (re-)issued on this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafIssued {
    /// There was no leaf (first run).
    Missing,
    /// The leaf files could not be loaded; the reason is kept for the log.
    Unusable(String),
    /// Less than the renewal threshold was left (or already expired).
    Renewal {
        /// The old leaf's end of validity.
        old_not_after: SystemTime,
    },
    /// The old leaf lacked some requested names.
    NewNames(Vec<String>),
    /// The old leaf was not signed by the CA in the directory.
    OtherCa,
}

/// The state of the dev directory after [`ensure`].
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// The directory.
    pub dir: PathBuf,
    /// CA certificate path (what users trust).
    pub ca_cert: PathBuf,
    /// CA key path.
    pub ca_key: PathBuf,
    /// Leaf certificate path.
    pub leaf_cert: PathBuf,
    /// Leaf key path.
    pub leaf_key: PathBuf,
    /// True when the CA was created by this call (print trust instructions).
    pub ca_created: bool,
    /// `Some` when the leaf was (re-)issued by this call.
    pub leaf_issued: Option<LeafIssued>,
    /// Names and IPs the leaf covers.
    pub leaf_names: Vec<String>,
    /// The leaf's end of validity.
    pub leaf_not_after: SystemTime,
}

impl DevCerts {
    /// Load the leaf into a store (it is the default certificate, so
    /// clients connecting by IP get it too).
    pub fn load_store(&self) -> Result<CertStore, StoreError> {
        let mut b = CertStore::builder();
        b.add_files(&self.leaf_cert, &self.leaf_key)?;
        Ok(b.build())
    }
}

/// What went wrong with the dev directory.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// A configured host is neither an IP address nor a valid DNS name.
    #[error("dev host {host:?} is not a DNS name or IP address: {detail}")]
    BadHost {
        /// The host as configured.
        host: String,
        /// Why it was refused.
        detail: String,
    },
    /// Creating the directory, writing or reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The CA files exist but cannot be used. Not repaired automatically.
    #[error(
        "{path}: unusable dev CA: {detail}; delete {CA_CERT_FILE} and {CA_KEY_FILE} in that directory to create a new CA (and trust it again)"
    )]
    BadCa {
        /// The CA file at fault.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Key or certificate generation failed.
    #[error("generating the dev {what}: {source}")]
    Generate {
        /// `CA` or `leaf`.
        what: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// The freshly written leaf could not be loaded back.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Create or reuse the CA and leaf in `dir` for the default names plus
/// `hosts`, with the default [`DevPolicy`].
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<DevCerts, DevCertError> {
    ensure_with(dir, hosts, &DevPolicy::default(), SystemTime::now())
}

/// [`ensure`] with an explicit policy and clock.
pub fn ensure_with(
    dir: &Path,
    hosts: &[String],
    policy: &DevPolicy,
    now: SystemTime,
) -> Result<DevCerts, DevCertError> {
    let names = requested_names(hosts)?;
    let fresh_dir = !dir.exists();
    fs::create_dir_all(dir).map_err(|source| io_err(dir, source))?;
    if fresh_dir {
        // Keep keys out of the app's git repo when the dir is created inside it.
        write_file(&dir.join(".gitignore"), b"*\n", false)?;
    }
    let paths = Paths::new(dir);
    let (ca, ca_created) = load_or_create_ca(&paths, policy, now)?;

    let reason = check_leaf(&paths, &ca, &names, policy, now).err();
    if let Some(reason) = &reason {
        issue_leaf(&paths, &ca, &names, policy, now)?;
        tracing::info!(dir = %dir.display(), reason = ?reason, "issued dev leaf certificate");
    }
    let leaf_pem = read(&paths.leaf_cert)?;
    let der = CertificateDer::from_pem_slice(&leaf_pem).map_err(|source| StoreError::BadPem {
        path: paths.leaf_cert.clone(),
        source,
    })?;
    let info = CertInfo::from_der(&paths.leaf_cert, &der)?;
    Ok(DevCerts {
        dir: dir.to_path_buf(),
        ca_cert: paths.ca_cert,
        ca_key: paths.ca_key,
        leaf_cert: paths.leaf_cert,
        leaf_key: paths.leaf_key,
        ca_created,
        leaf_issued: reason,
        leaf_names: covered_names(&info),
        leaf_not_after: info.not_after,
    })
}

/// The result of one periodic renewal check.
#[derive(Debug)]
pub struct DevRenewal {
    /// The directory state (see [`DevCerts::leaf_issued`]).
    pub certs: DevCerts,
    /// A fresh snapshot of the (possibly new) leaf.
    pub store: CertStore,
}

impl DevRenewal {
    /// True when a new leaf was issued, i.e. the store is worth publishing.
    pub fn changed(&self) -> bool {
        self.certs.leaf_issued.is_some()
    }
}

/// One renewal check: re-issue if needed and return the store to publish.
/// Call it periodically (see [`run_renewal`]).
pub fn renew(dir: &Path, hosts: &[String], policy: &DevPolicy) -> Result<DevRenewal, DevCertError> {
    let certs = ensure_with(dir, hosts, policy, SystemTime::now())?;
    let store = certs.load_store()?;
    Ok(DevRenewal { certs, store })
}

/// Check every `interval` (an hour is plenty for a 7-day leaf) and publish
/// into `shared` when a leaf is issued, or when the leaf on disk differs
/// from the published one (renewed by another process). A failed check keeps the
/// current store and is logged. Returns when `cancel` fires.
pub async fn run_renewal(
    dir: PathBuf,
    hosts: Vec<String>,
    policy: DevPolicy,
    interval: Duration,
    shared: SharedCertStore,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; ensure() already ran
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let (d, h, p) = (dir.clone(), hosts.clone(), policy.clone());
        match tokio::task::spawn_blocking(move || renew(&d, &h, &p)).await {
            // Also publish a leaf another process (`portico certs-dev`) renewed.
            Ok(Ok(r)) if r.changed() || shared.load().infos() != r.store.infos() => {
                tracing::info!(dir = %dir.display(), not_after = %humantime::format_rfc3339_seconds(r.certs.leaf_not_after), "publishing renewed dev certificate");
                shared.store(Arc::new(r.store));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(dir = %dir.display(), error = %e, "dev certificate renewal failed; keeping the current one");
            }
            Err(e) => tracing::warn!(error = %e, "dev certificate renewal task failed"),
        }
    }
}

struct Paths {
    ca_cert: PathBuf,
    ca_key: PathBuf,
    leaf_cert: PathBuf,
    leaf_key: PathBuf,
}

impl Paths {
    fn new(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join(CA_CERT_FILE),
            ca_key: dir.join(CA_KEY_FILE),
            leaf_cert: dir.join(LEAF_CERT_FILE),
            leaf_key: dir.join(LEAF_KEY_FILE),
        }
    }
}

/// The SANs to request: defaults then extras, normalised, deduplicated.
fn requested_names(hosts: &[String]) -> Result<Vec<String>, DevCertError> {
    let mut out: Vec<String> = DEFAULT_DEV_NAMES.iter().map(|s| (*s).to_owned()).collect();
    for host in hosts {
        let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let h = h.trim_start_matches('[').trim_end_matches(']').to_owned();
        let canon = match h.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => {
                validate_dns(&h).map_err(|detail| DevCertError::BadHost {
                    host: host.clone(),
                    detail,
                })?;
                h
            }
        };
        if !out.contains(&canon) {
            out.push(canon);
        }
    }
    Ok(out)
}

fn validate_dns(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("empty or longer than 253 characters".to_owned());
    }
    let labels = name.strip_prefix("*.").unwrap_or(name);
    for label in labels.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!("invalid label {label:?}"));
        }
    }
    Ok(())
}

fn covered_names(info: &CertInfo) -> Vec<String> {
    let mut v = info.dns_names.clone();
    v.extend(info.ip_addrs.iter().map(IpAddr::to_string));
    v
}

mod pki;

#[cfg(test)]
mod tests;
