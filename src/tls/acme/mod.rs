//! Automatic HTTPS: certificates from an ACME CA (Let's Encrypt, ZeroSSL,
//! a private CA), issued, persisted, renewed and hot-swapped in process.
//!
//! Owns: the ACME account, one background task per domain, the challenge
//! answers, and `tls.storage`.
//! Receives: [`AcmeSettings`] (from `[tls] mode = "acme"`), the edge's
//! [`SharedCertStore`] and a cancellation token.
//! Hands on: certificates published into the `SharedCertStore` (the next
//! handshake sees them; open connections keep theirs), HTTP-01 answers via
//! [`Challenges::http01`] to the port-80 service, and TLS-ALPN-01 answers
//! via the [`crate::tls::ChallengeHook`] impl on [`Challenges`].
//!
//! # Layout
//! - `storage`: on-disk layout, atomic 0600 writes, per-cert metadata.
//! - `lock`: per-domain lock files with heartbeat and stale takeover.
//! - `account`: load or register the account (once, under a lock).
//! - `order`: one order, challenge fallback, CSR, chain download.
//! - `challenge`: pending HTTP-01 / TLS-ALPN-01 answers.
//! - `renewal`: when to renew (ratio rule, ARI window, emergency override).
//! - `backoff`: certmagic's retry schedule.
//! - `manager`: start-up (stored cert or self-signed fallback) and the
//!   per-domain loop.
//! - `status`: what `portico certs` prints (storage only, no server).

pub mod account;
pub mod backoff;
pub mod challenge;
pub mod lock;
mod manager;
pub mod order;
pub mod renewal;
pub mod status;
pub mod storage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use challenge::Challenges;
pub use manager::certified_key_from_pem;

use crate::config::{AcmeSettings, ChallengeKind};
use crate::tls::SharedCertStore;

/// Why obtaining or renewing a certificate failed. The message names the
/// step and carries the CA's own error text.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA (or the network to it) failed at `what`.
    #[error("CA error during {what}: {source}")]
    Ca {
        what: &'static str,
        #[source]
        source: instant_acme::Error,
    },
    /// The CA could not validate this challenge.
    #[error("{challenge} challenge failed: {detail}")]
    Challenge {
        challenge: ChallengeKind,
        detail: String,
    },
    /// Every enabled challenge failed.
    #[error("every challenge failed: {detail}")]
    AllChallengesFailed { detail: String },
    /// `tls.ca_root` is unusable.
    #[error("cannot use tls.ca_root {}: {detail}", path.display())]
    CaRoot { path: PathBuf, detail: String },
    /// `account.json` is corrupt.
    #[error("ACME account file {} is unusable: {detail} (move it away to register a new account)", path.display())]
    BadAccountFile { path: PathBuf, detail: String },
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("cannot build the certificate request: {0}")]
    Csr(String),
    /// The CA's certificate does not load (bad chain, key mismatch).
    #[error("the CA returned an unusable certificate: {0}")]
    BadCertificate(#[from] crate::tls::StoreError),
    /// The order did not finish in time.
    #[error("the order did not finish within {0:?}")]
    Timeout(Duration),
}

impl AcmeError {
    /// The `challenge=` log field.
    pub fn challenge_label(&self) -> &'static str {
        match self {
            Self::Challenge { challenge, .. } => challenge.name(),
            Self::AllChallengesFailed { .. } => "all",
            Self::Ca { .. }
            | Self::CaRoot { .. }
            | Self::BadAccountFile { .. }
            | Self::Storage(_)
            | Self::Lock(_)
            | Self::Csr(_)
            | Self::BadCertificate(_)
            | Self::Timeout(_) => "-",
        }
    }
}

/// Timings that are not config keys (tests shorten them).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Waits after consecutive failures; the last repeats.
    pub retry_intervals: Vec<Duration>,
    /// Lock heartbeat / staleness.
    pub lock: lock::LockTiming,
    /// Bound on one whole order (all challenges).
    pub order_timeout: Duration,
    /// Validity of the self-signed placeholder.
    pub fallback_validity: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            retry_intervals: backoff::default_intervals(),
            lock: lock::LockTiming::default(),
            order_timeout: Duration::from_secs(300),
            fallback_validity: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What [`start`] hands the TLS state.
#[derive(Debug)]
pub struct Started {
    /// The published certificates (stored ones, or placeholders).
    pub shared: SharedCertStore,
    /// The challenge answers (the resolver's hook, and HTTP-01 lookups).
    pub challenges: Arc<Challenges>,
}

/// Load stored certificates (or placeholders), publish them, and spawn the
/// per-domain renewal tasks. Fails only when storage is unusable; a CA that
/// is down is retried in the background.
pub fn start(
    settings: &AcmeSettings,
    tuning: Tuning,
    cancel: CancellationToken,
) -> Result<Started, AcmeError> {
    manager::Manager::start(settings.clone(), tuning, cancel)
}
