//! The certificate store: an immutable snapshot of every certificate the
//! TLS listener can serve.
//!
//! Owns: `Arc<CertifiedKey>`s indexed by exact DNS name and by `*.suffix`
//! wildcard, plus a default (served when SNI is absent or matches nothing),
//! and a [`CertInfo`] per certificate (names, IPs, validity) for `check` and
//! the banner.
//! Receives: PEM certificate chain + private key pairs, from files
//! ([`CertStoreBuilder::add_files`]) or memory ([`CertStoreBuilder::add_pem`]).
//! Hands on: a [`CertStore`] that the resolver reads through an `ArcSwap`;
//! a new snapshot is built whole and published whole, never mutated.
//!
//! Validation: every key must match its certificate (SPKI comparison,
//! `CertifiedKey::keys_match`). An expired or not-yet-valid certificate is
//! loaded anyway and reported as a [`StoreWarning`]: serving a stale
//! certificate beats refusing every handshake.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

/// Why a certificate/key pair could not be loaded. Every variant names the
/// file it is about, so the message can be shown as is.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file does not exist.
    #[error("{path}: file not found")]
    Missing {
        /// The file that was expected.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The unreadable file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The PEM text is malformed (bad base64, missing END line, ...).
    #[error("{path}: malformed PEM: {source}")]
    BadPem {
        /// The malformed file.
        path: PathBuf,
        /// What the PEM parser found wrong.
        source: rustls_pki_types::pem::Error,
    },
    /// The file holds no `CERTIFICATE` section.
    #[error("{path}: no certificate found (expected a PEM `BEGIN CERTIFICATE` block)")]
    NoCertificate {
        /// The file that was read as a certificate chain.
        path: PathBuf,
    },
    /// The file holds no private key section.
    #[error(
        "{path}: no private key found (expected a PEM `BEGIN PRIVATE KEY`, `BEGIN EC PRIVATE KEY` or `BEGIN RSA PRIVATE KEY` block)"
    )]
    NoPrivateKey {
        /// The file that was read as a private key.
        path: PathBuf,
    },
    /// The leaf certificate is not valid X.509.
    #[error("{path}: certificate is not valid X.509: {detail}")]
    BadCertificate {
        /// The certificate file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// The key could not be used for signing (unsupported algorithm, ...).
    #[error("{path}: unusable private key: {source}")]
    UnusableKey {
        /// The key file.
        path: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// The private key is not the one the certificate was issued for.
    #[error("{key_path} does not match the certificate in {cert_path} (different public key)")]
    KeyMismatch {
        /// The certificate file.
        cert_path: PathBuf,
        /// The key file.
        key_path: PathBuf,
    },
    /// A store with no certificate at all was requested where one is needed.
    #[error("no certificate configured")]
    Empty,
}

/// Something worth logging about a loaded certificate that does not stop
/// it from being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWarning {
    /// `not_after` is in the past: clients will reject it.
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// When it expired.
        not_after: SystemTime,
    },
    /// `not_before` is in the future (clock skew or a pre-dated cert).
    NotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// When it becomes valid.
        not_before: SystemTime,
    },
    /// No DNS name in the SAN extension: it is only reachable as the default.
    NoDnsNames {
        /// The certificate file.
        path: PathBuf,
    },
}

impl fmt::Display for StoreWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired { path, not_after } => write!(
                f,
                "{}: certificate expired {} (served anyway; clients will reject it)",
                path.display(),
                humantime::format_rfc3339_seconds(*not_after)
            ),
            Self::NotYetValid { path, not_before } => write!(
                f,
                "{}: certificate not valid before {}",
                path.display(),
                humantime::format_rfc3339_seconds(*not_before)
            ),
            Self::NoDnsNames { path } => write!(
                f,
                "{}: certificate has no DNS names; only served as the default",
                path.display()
            ),
        }
    }
}

/// What a loaded certificate is, for display (`portico check`, banner, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Where the certificate came from (a file path, or a label for memory).
    pub source: PathBuf,
    /// DNS names from the SAN extension (lowercase, wildcards kept as `*.x`).
    pub dns_names: Vec<String>,
    /// IP addresses from the SAN extension.
    pub ip_addrs: Vec<IpAddr>,
    /// The subject common name, if any.
    pub common_name: Option<String>,
    /// The issuer's distinguished name, as `CN=…, O=…` (who signed it).
    pub issuer: String,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl CertInfo {
    /// True when `now` is past `not_after`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now > self.not_after
    }

    /// Parse the display facts out of a DER certificate.
    pub fn from_der(source: &Path, der: &[u8]) -> Result<Self, StoreError> {
        let bad = |detail: String| StoreError::BadCertificate {
            path: source.to_path_buf(),
            detail,
        };
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| bad(e.to_string()))?;
        let mut dns_names = Vec::new();
        let mut ip_addrs = Vec::new();
        if let Some(san) = cert
            .subject_alternative_name()
            .map_err(|e| bad(e.to_string()))?
        {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) => dns_names.push(n.to_ascii_lowercase()),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_from_bytes(b) {
                            ip_addrs.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let issuer = cert.issuer().to_string();
        Ok(Self {
            source: source.to_path_buf(),
            dns_names,
            ip_addrs,
            common_name,
            issuer,
            not_before: asn1_to_system(cert.validity().not_before.timestamp()),
            not_after: asn1_to_system(cert.validity().not_after.timestamp()),
        })
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

fn asn1_to_system(ts: i64) -> SystemTime {
    match u64::try_from(ts) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH - Duration::from_secs(ts.unsigned_abs()),
    }
}

/// An immutable set of certificates with SNI lookup. Cheap to share: the
/// keys are `Arc`s.
#[derive(Clone, Default)]
pub struct CertStore {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the suffix after `*.` (`*.example.com` → `example.com`).
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
    /// Parallel to `keys`: one entry per certificate, in load order.
    infos: Vec<CertInfo>,
    keys: Vec<Arc<CertifiedKey>>,
    warnings: Vec<StoreWarning>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("certs", &self.infos)
            .field("has_default", &self.default.is_some())
            .finish()
    }
}

impl CertStore {
    /// A store with no certificate: every handshake fails until a real one is
    /// published (the ACME start-up state).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Start building a store.
    pub fn builder() -> CertStoreBuilder {
        CertStoreBuilder::default()
    }

    /// True when no certificate is loaded.
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// The certificate for a ClientHello's SNI: exact name, then a wildcard
    /// one label up, then the default. `None` SNI (clients connecting by IP)
    /// gets the default.
    pub fn lookup(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = sni {
            let name = normalize_name(name);
            if let Some(ck) = self.exact.get(&name) {
                return Some(Arc::clone(ck));
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(ck) = self.wildcard.get(parent)
            {
                return Some(Arc::clone(ck));
            }
        }
        self.default.clone()
    }

    /// One entry per loaded certificate, in load order.
    pub fn infos(&self) -> &[CertInfo] {
        &self.infos
    }

    /// The info of the certificate `lookup` would serve for `sni`.
    pub fn info_for(&self, sni: Option<&str>) -> Option<&CertInfo> {
        let ck = self.lookup(sni)?;
        let i = self.keys.iter().position(|k| Arc::ptr_eq(k, &ck))?;
        self.infos.get(i)
    }

    /// Non-fatal findings from loading (expired certificates, ...).
    pub fn warnings(&self) -> &[StoreWarning] {
        &self.warnings
    }
}

fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Collects certificate/key pairs and produces a [`CertStore`].
///
/// The first certificate added is the default unless
/// [`CertStoreBuilder::set_default_last`] is called. For a name present in
/// several certificates the first one added wins.
#[derive(Default)]
pub struct CertStoreBuilder {
    store: CertStore,
}

impl CertStoreBuilder {
    /// Load a PEM chain and a PEM key from two files. The first block of the
    /// chain file must be the leaf; any following blocks are intermediates.
    pub fn add_files(
        &mut self,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<&mut Self, StoreError> {
        let cert_pem = read_file(cert_path)?;
        let key_pem = read_file(key_path)?;
        self.add_pem_labeled(&cert_pem, cert_path, &key_pem, key_path)
    }

    /// Add a pair from PEM bytes; `label` stands in for the path in errors
    /// and [`CertInfo::source`].
    pub fn add_pem(
        &mut self,
        cert_pem: &[u8],
        key_pem: &[u8],
        label: &Path,
    ) -> Result<&mut Self, StoreError> {
        self.add_pem_labeled(cert_pem, label, key_pem, label)
    }

    fn add_pem_labeled(
        &mut self,
        cert_pem: &[u8],
        cert_path: &Path,
        key_pem: &[u8],
        key_path: &Path,
    ) -> Result<&mut Self, StoreError> {
        let chain = parse_chain(cert_pem, cert_path)?;
        let key = parse_key(key_pem, key_path)?;
        let provider = rustls::crypto::ring::default_provider();
        let ck = certified_key(chain, key, &provider, cert_path, key_path)?;
        self.add_certified_key(Arc::new(ck), cert_path)
    }

    /// Add an already-built key (ACME hands these on). Its key is checked
    /// against the leaf, like the PEM paths.
    pub fn add_certified_key(
        &mut self,
        ck: Arc<CertifiedKey>,
        source: &Path,
    ) -> Result<&mut Self, StoreError> {
        let leaf = ck
            .end_entity_cert()
            .map_err(|_| StoreError::NoCertificate {
                path: source.to_path_buf(),
            })?;
        let info = CertInfo::from_der(source, leaf)?;
        let now = SystemTime::now();
        if info.is_expired(now) {
            self.store.warnings.push(StoreWarning::Expired {
                path: source.to_path_buf(),
                not_after: info.not_after,
            });
        } else if now < info.not_before {
            self.store.warnings.push(StoreWarning::NotYetValid {
                path: source.to_path_buf(),
                not_before: info.not_before,
            });
        }
        if info.dns_names.is_empty() {
            self.store.warnings.push(StoreWarning::NoDnsNames {
                path: source.to_path_buf(),
            });
        }
        for name in &info.dns_names {
            let name = normalize_name(name);
            match name.strip_prefix("*.") {
                Some(suffix) => self.store.wildcard.entry(suffix.to_owned()),
                None => self.store.exact.entry(name),
            }
            .or_insert_with(|| Arc::clone(&ck));
        }
        if self.store.default.is_none() {
            self.store.default = Some(Arc::clone(&ck));
        }
        self.store.infos.push(info);
        self.store.keys.push(ck);
        Ok(self)
    }

    /// Make the most recently added certificate the default.
    pub fn set_default_last(&mut self) -> &mut Self {
        if let Some(ck) = self.store.keys.last() {
            self.store.default = Some(Arc::clone(ck));
        }
        self
    }

    /// Finish. Empty stores are allowed here; use
    /// [`CertStoreBuilder::build_non_empty`] where a certificate is required.
    pub fn build(&mut self) -> CertStore {
        std::mem::take(&mut self.store)
    }

    /// Finish, failing with [`StoreError::Empty`] when nothing was added.
    pub fn build_non_empty(&mut self) -> Result<CertStore, StoreError> {
        let store = self.build();
        if store.is_empty() {
            return Err(StoreError::Empty);
        }
        Ok(store)
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => StoreError::Missing {
            path: path.to_path_buf(),
        },
        _ => StoreError::Read {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn parse_chain(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| StoreError::BadPem {
            path: path.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(StoreError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, StoreError> {
    use rustls_pki_types::pem::Error;
    PrivateKeyDer::from_pem_slice(pem).map_err(|source| match source {
        Error::NoItemsFound => StoreError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        source => StoreError::BadPem {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, StoreError> {
    // Parse first so a garbage certificate is reported as such rather than
    // as a key mismatch.
    CertInfo::from_der(cert_path, &chain[0])?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| StoreError::UnusableKey {
            path: key_path.to_path_buf(),
            source,
        })?;
    let ck = CertifiedKey::new(chain, signing_key);
    match ck.keys_match() {
        Ok(()) => Ok(ck),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(ck),
        Err(rustls::Error::InconsistentKeys(_)) => Err(StoreError::KeyMismatch {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        }),
        Err(e) => Err(StoreError::BadCertificate {
            path: cert_path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests;
