//! Start-up and the per-domain loop.
//!
//! Owns: what is served for each domain (a stored/issued certificate, or a
//! self-signed placeholder), the lazily created account, and one task per
//! domain that wakes every `renew_check`, picks up certificates another
//! node stored, polls ARI, and orders when due (one order at a time per
//! process, under the domain's storage lock), backing off on failure.
//! Receives: settings, tuning, a cancellation token.
//! Hands on: whole new `CertStore` snapshots into the `SharedCertStore`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{Account, CertificateIdentifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use tokio_util::sync::CancellationToken;

use super::storage::{CaStorage, Meta, create_dir_private, from_unix, unix};
use super::{AcmeError, Challenges, Started, Tuning, account, backoff, lock, order, renewal};
use crate::config::{AcmeSettings, ChallengeKind};
use crate::tls::{CertInfo, CertStore, SharedCertStore, StoreError, shared_store};

/// What is served for one domain.
#[derive(Clone)]
struct Served {
    ck: Arc<CertifiedKey>,
    info: CertInfo,
    meta: Option<Meta>,
    /// A self-signed placeholder, not a CA certificate.
    placeholder: bool,
}

impl Served {
    fn leaf(&self) -> &[u8] {
        self.ck.cert.first().map_or(&[], |c| c.as_ref())
    }

    fn renew_at(&self) -> SystemTime {
        if self.placeholder {
            return SystemTime::UNIX_EPOCH;
        }
        let ari = self
            .meta
            .as_ref()
            .and_then(|m| m.ari_renew_at)
            .map(from_unix);
        renewal::renew_at(self.info.not_before, self.info.not_after, ari)
    }
}

/// Parse a PEM chain + key into what rustls serves (key checked against
/// the leaf) and its display facts.
pub fn certified_key_from_pem(
    chain: &[u8],
    key: &[u8],
    label: &Path,
) -> Result<(Arc<CertifiedKey>, CertInfo), StoreError> {
    let store = CertStore::builder().add_pem(chain, key, label)?.build();
    let ck = store.lookup(None).ok_or(StoreError::Empty)?;
    let info = store.infos().first().cloned().ok_or(StoreError::Empty)?;
    Ok((ck, info))
}

/// The issuer's CN (or whole DN) of a DER certificate.
pub(crate) fn issuer_name(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => c
            .issuer()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map_or_else(|| c.issuer().to_string(), str::to_owned),
        Err(_) => "?".into(),
    }
}

pub(super) struct Manager {
    settings: AcmeSettings,
    tuning: Tuning,
    st: CaStorage,
    shared: SharedCertStore,
    challenges: Arc<Challenges>,
    served: parking_lot::Mutex<BTreeMap<String, Served>>,
    account: tokio::sync::Mutex<Option<Account>>,
    /// One order at a time per process (well under CA rate limits).
    order_gate: tokio::sync::Mutex<()>,
    owner: String,
    cancel: CancellationToken,
}

impl Manager {
    pub(super) fn start(
        settings: AcmeSettings,
        tuning: Tuning,
        cancel: CancellationToken,
    ) -> Result<Started, AcmeError> {
        let st = CaStorage::new(&settings.storage, &settings.directory);
        create_dir_private(st.root())?;
        let storage_abs = std::fs::canonicalize(st.root()).unwrap_or_else(|_| st.root().into());
        tracing::info!(storage = %storage_abs.display(), directory = %settings.directory, domains = ?settings.domains, "ACME: certificates are kept here; keep this directory on persistent storage (a lost storage means new orders and CA rate limits)");
        let mut served = BTreeMap::new();
        for d in &settings.domains {
            let s = match load_stored(&st, d) {
                Ok(Some(s)) => {
                    tracing::info!(domain = %d, not_after = %humantime::format_rfc3339_seconds(s.info.not_after), renew_at = %humantime::format_rfc3339_seconds(s.renew_at()), "using the stored certificate (no new order)");
                    s
                }
                Ok(None) => placeholder(d, tuning.fallback_validity)?,
                Err(e) => {
                    tracing::error!(domain = %d, error = %e, "stored certificate is unusable; ordering a new one");
                    placeholder(d, tuning.fallback_validity)?
                }
            };
            if s.placeholder {
                tracing::warn!(domain = %d, "NO CERTIFICATE YET for {d}: serving a self-signed placeholder (browsers will refuse it) until the CA issues one");
            }
            served.insert(d.clone(), s);
        }
        let challenges = Arc::new(Challenges::with_shared_dir(st.challenges_dir()));
        let m = Arc::new(Manager {
            shared: shared_store(CertStore::empty()),
            st,
            tuning,
            challenges: Arc::clone(&challenges),
            served: parking_lot::Mutex::new(served),
            account: tokio::sync::Mutex::new(None),
            order_gate: tokio::sync::Mutex::new(()),
            owner: lock::owner_id(),
            cancel,
            settings,
        });
        m.publish();
        for d in m.settings.domains.clone() {
            tokio::spawn(Arc::clone(&m).run_domain(d));
        }
        Ok(Started {
            shared: m.shared.clone(),
            challenges,
        })
    }

    /// Build and publish a whole new snapshot, domains in config order (the
    /// first is the default for clients without SNI).
    fn publish(&self) {
        let served = self.served.lock();
        let mut b = CertStore::builder();
        for d in &self.settings.domains {
            if let Some(s) = served.get(d)
                && let Err(e) = b.add_certified_key(s.ck.clone(), Path::new(&format!("acme:{d}")))
            {
                tracing::error!(domain = %d, error = %e, "cannot publish certificate");
            }
        }
        self.shared.store(Arc::new(b.build()));
    }

    fn get(&self, domain: &str) -> Option<Served> {
        self.served.lock().get(domain).cloned()
    }

    /// Adopt a newer certificate from storage (another node, or our own
    /// earlier run). Returns true when something changed.
    fn refresh_from_storage(&self, domain: &str) -> bool {
        let stored = match load_stored(&self.st, domain) {
            Ok(Some(s)) => s,
            Ok(None) => return false,
            Err(e) => {
                // Possibly a write in progress (key and chain are separate files).
                tracing::debug!(domain, error = %e, "stored certificate not readable right now");
                return false;
            }
        };
        {
            let mut served = self.served.lock();
            let cur = served.get(domain);
            let newer = match cur {
                None => true,
                Some(c) if c.leaf() == stored.leaf() => {
                    if c.meta != stored.meta {
                        served.insert(domain.to_string(), stored);
                    }
                    return false;
                }
                Some(c) => c.placeholder || stored.info.not_after > c.info.not_after,
            };
            if !newer {
                return false;
            }
            tracing::info!(domain, not_after = %humantime::format_rfc3339_seconds(stored.info.not_after), "picked up a certificate from storage");
            served.insert(domain.to_string(), stored);
        }
        self.publish();
        true
    }

    async fn account(&self) -> Result<Account, AcmeError> {
        let mut slot = self.account.lock().await;
        if let Some(a) = &*slot {
            return Ok(a.clone());
        }
        let a = account::load_or_create(
            &self.settings,
            &self.st,
            &self.owner,
            self.tuning.lock,
            &self.cancel,
        )
        .await?;
        *slot = Some(a.clone());
        Ok(a)
    }

    async fn run_domain(self: Arc<Self>, domain: String) {
        let mut failures: u32 = 0;
        let mut next_attempt = tokio::time::Instant::now();
        let mut next_ari = tokio::time::Instant::now();
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            self.refresh_from_storage(&domain);
            let now = SystemTime::now();
            if tokio::time::Instant::now() >= next_ari {
                next_ari = tokio::time::Instant::now() + self.poll_ari(&domain).await;
            }
            let due = self.get(&domain).map_or(now, |s| s.renew_at());
            let mut wait = self.settings.renew_check;
            if due <= now && tokio::time::Instant::now() >= next_attempt {
                match self.renew(&domain).await {
                    Ok(()) => {
                        failures = 0;
                        continue;
                    }
                    Err(AcmeError::Lock(lock::LockError::Cancelled)) => return,
                    Err(e) => {
                        failures += 1;
                        let d = backoff::delay(&self.tuning.retry_intervals, failures);
                        next_attempt = tokio::time::Instant::now() + d;
                        let serving = match self.get(&domain) {
                            Some(s) if s.placeholder => "a self-signed placeholder",
                            Some(s) if s.info.is_expired(SystemTime::now()) => {
                                "the expired certificate"
                            }
                            _ => "the current certificate",
                        };
                        tracing::warn!(
                            domain = %domain,
                            challenge = e.challenge_label(),
                            attempt = failures,
                            retry_in = %humantime::format_duration(d),
                            error = %e,
                            "could not obtain a certificate; still serving {serving}"
                        );
                        wait = wait.min(d);
                    }
                }
            } else if due > now {
                let until_due = due.duration_since(now).unwrap_or(Duration::ZERO);
                wait = wait.min(until_due + Duration::from_millis(10));
            } else {
                // Due but backing off.
                let until = next_attempt.saturating_duration_since(tokio::time::Instant::now());
                wait = wait.min(until);
            }
            wait = wait.max(Duration::from_millis(50));
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Ask the CA's ARI endpoint for a renewal window; returns when to ask
    /// again. Quietly does nothing when the CA has no ARI.
    async fn poll_ari(&self, domain: &str) -> Duration {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let Some(s) = self.get(domain).filter(|s| !s.placeholder) else {
            return self.settings.renew_check;
        };
        let Ok(cert_id) = CertificateIdentifier::try_from(&CertificateDer::from(s.leaf().to_vec()))
        else {
            return DAY;
        };
        let Ok(account) = self.account().await else {
            return self.settings.renew_check;
        };
        match account.renewal_info(&cert_id).await {
            Ok((info, retry_after)) => {
                let w = info.suggested_window;
                let (start, end) = (SystemTime::from(w.start), SystemTime::from(w.end));
                let mut meta = s
                    .meta
                    .clone()
                    .unwrap_or_else(|| meta_for(&s.info, s.leaf(), None));
                let keep = meta
                    .ari_renew_at
                    .map(from_unix)
                    .is_some_and(|p| p >= start && p <= end);
                if !keep {
                    let pick = renewal::pick_in_window(
                        start,
                        end,
                        SystemTime::now(),
                        rand::random::<f64>(),
                    );
                    meta.ari_renew_at = Some(unix(pick));
                    tracing::info!(domain, renew_at = %humantime::format_rfc3339_seconds(pick), "ARI: renewal scheduled inside the CA's suggested window");
                    if let Err(e) = self.st.save_meta(domain, &meta) {
                        tracing::warn!(domain, error = %e, "cannot save ARI renewal time");
                    }
                    if let Some(cur) = self.served.lock().get_mut(domain) {
                        cur.meta = Some(meta);
                    }
                }
                retry_after.clamp(Duration::from_secs(60), DAY)
            }
            Err(instant_acme::Error::Unsupported(_)) => DAY,
            Err(e) => {
                tracing::debug!(domain, error = %e, "ARI request failed");
                self.settings.renew_check
            }
        }
    }

    async fn renew(&self, domain: &str) -> Result<(), AcmeError> {
        let _gate = self.order_gate.lock().await;
        let _lock = lock::acquire(
            &self.st.lock_path(domain),
            &self.owner,
            self.tuning.lock,
            &self.cancel,
        )
        .await?;
        // Under the lock: another node may have renewed while we waited.
        if self.refresh_from_storage(domain)
            && self
                .get(domain)
                .is_some_and(|s| s.renew_at() > SystemTime::now())
        {
            return Ok(());
        }
        let account = self.account().await?;
        let current = self.get(domain);
        let kinds = self.challenge_order(current.as_ref());
        tracing::info!(domain, challenges = ?kinds.iter().map(|k| k.name()).collect::<Vec<_>>(), "ordering a certificate");
        let issued = tokio::select! {
            _ = self.cancel.cancelled() => return Err(AcmeError::Lock(lock::LockError::Cancelled)),
            r = tokio::time::timeout(self.tuning.order_timeout, order::issue(&account, domain, &kinds, &self.challenges)) => {
                let r = r.map_err(|_| AcmeError::Timeout(self.tuning.order_timeout)).and_then(std::convert::identity);
                crate::metrics::acme_order(r.is_ok());
                r?
            }
        };
        let label = self.st.cert_dir(domain);
        let (ck, info) = certified_key_from_pem(
            issued.chain_pem.as_bytes(),
            issued.key_pem.as_bytes(),
            &label,
        )?;
        let meta = meta_for(&info, ck.cert[0].as_ref(), Some(issued.challenge));
        self.st.save_cert(
            domain,
            issued.chain_pem.as_bytes(),
            issued.key_pem.as_bytes(),
            &meta,
        )?;
        let s = Served {
            ck,
            info,
            meta: Some(meta),
            placeholder: false,
        };
        tracing::info!(
            domain,
            challenge = %issued.challenge,
            issuer = %s.meta.as_ref().map_or("?", |m| m.issuer.as_str()),
            not_after = %humantime::format_rfc3339_seconds(s.info.not_after),
            renew_at = %humantime::format_rfc3339_seconds(s.renew_at()),
            "certificate obtained and installed"
        );
        self.served.lock().insert(domain.to_string(), s);
        self.publish();
        Ok(())
    }

    /// The remembered challenge first, then the rest in config order.
    fn challenge_order(&self, current: Option<&Served>) -> Vec<ChallengeKind> {
        let mut kinds = self.settings.challenges.clone();
        if let Some(k) = current
            .and_then(|s| s.meta.as_ref())
            .and_then(Meta::challenge_kind)
            && let Some(i) = kinds.iter().position(|x| *x == k)
        {
            kinds.remove(i);
            kinds.insert(0, k);
        }
        kinds
    }
}

fn meta_for(info: &CertInfo, leaf: &[u8], challenge: Option<ChallengeKind>) -> Meta {
    Meta {
        issuer: issuer_name(leaf),
        not_before: unix(info.not_before),
        not_after: unix(info.not_after),
        issued_at: unix(SystemTime::now()),
        challenge: challenge.map(|c| c.name().to_string()),
        ari_renew_at: None,
    }
}

fn load_stored(st: &CaStorage, domain: &str) -> Result<Option<Served>, AcmeError> {
    let Some(stored) = st.load_cert(domain)? else {
        return Ok(None);
    };
    let (ck, info) = certified_key_from_pem(&stored.chain_pem, &stored.key_pem, &stored.dir)?;
    Ok(Some(Served {
        ck,
        info,
        meta: stored.meta,
        placeholder: false,
    }))
}

/// A self-signed certificate for `domain`, served until the CA issues one.
fn placeholder(domain: &str, validity: Duration) -> Result<Served, AcmeError> {
    let bad = |e: rcgen::Error| AcmeError::Csr(e.to_string());
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()]).map_err(bad)?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + validity;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("portico placeholder for {domain}"),
    );
    let key = rcgen::KeyPair::generate().map_err(bad)?;
    let cert = params.self_signed(&key).map_err(bad)?;
    let (ck, info) = certified_key_from_pem(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        Path::new(&format!("placeholder:{domain}")),
    )?;
    Ok(Served {
        ck,
        info,
        meta: None,
        placeholder: true,
    })
}
