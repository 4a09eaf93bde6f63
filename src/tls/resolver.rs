//! The SNI resolver: picks the certificate for each handshake.
//!
//! Owns: a handle on the published [`CertStore`] snapshot
//! ([`SharedCertStore`], an `Arc<ArcSwap<CertStore>>`) and an optional
//! [`ChallengeHook`].
//! Receives: each ClientHello from rustls.
//! Hands on: the `Arc<CertifiedKey>` to present. Publishing a new snapshot
//! (file reload, dev renewal, ACME) is one `store()` on the `ArcSwap`: the
//! next handshake sees it, established connections keep the key they already
//! negotiated with.
//!
//! The ACME seam: a future `tls/acme.rs` implements [`ChallengeHook`] to
//! answer TLS-ALPN-01 (`acme-tls/1`) ClientHellos with its challenge
//! certificate, and publishes issued certificates into the same
//! [`SharedCertStore`]. The hook is asked first; when it declines, normal
//! SNI resolution runs.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::store::CertStore;

/// The ALPN protocol id of ACME TLS-ALPN-01 (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The published certificate snapshot: writers `store()` a whole new
/// [`CertStore`], the resolver `load()`s it per handshake.
pub type SharedCertStore = Arc<ArcSwap<CertStore>>;

/// Wrap a store for publishing.
pub fn shared_store(store: CertStore) -> SharedCertStore {
    Arc::new(ArcSwap::from_pointee(store))
}

/// A hook consulted before SNI resolution, for special handshakes (ACME
/// TLS-ALPN-01). Return `Some` to take over the handshake.
pub trait ChallengeHook: Send + Sync + fmt::Debug {
    /// Decide on one ClientHello. Called on the handshake path: must not block.
    fn resolve(&self, hello: &ClientHello<'_>) -> Option<Arc<CertifiedKey>>;
}

/// True when the ClientHello offers `acme-tls/1` in ALPN: such a hello comes
/// from an ACME validator and must get the challenge certificate or nothing.
pub fn offers_acme_tls_alpn(hello: &ClientHello<'_>) -> bool {
    hello
        .alpn()
        .is_some_and(|mut protos| protos.any(|p| p == ACME_TLS_ALPN))
}

/// `ResolvesServerCert` over a [`SharedCertStore`].
pub struct CertResolver {
    store: SharedCertStore,
    challenge: Option<Arc<dyn ChallengeHook>>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver")
            .field("store", &self.store.load())
            .field("challenge", &self.challenge)
            .finish()
    }
}

impl CertResolver {
    /// A resolver reading `store` on every handshake.
    pub fn new(store: SharedCertStore) -> Self {
        Self {
            store,
            challenge: None,
        }
    }

    /// Install the ACME challenge hook (asked before SNI resolution).
    pub fn with_challenge_hook(mut self, hook: Arc<dyn ChallengeHook>) -> Self {
        self.challenge = Some(hook);
        self
    }

    /// Whether a challenge hook is installed; `server_config` then also
    /// offers `acme-tls/1` in ALPN.
    pub fn has_challenge_hook(&self) -> bool {
        self.challenge.is_some()
    }

    /// The snapshot handle, for publishers.
    pub fn store(&self) -> &SharedCertStore {
        &self.store
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(hook) = &self.challenge {
            if let Some(ck) = hook.resolve(&hello) {
                return Some(ck);
            }
            if offers_acme_tls_alpn(&hello) {
                // Never answer a TLS-ALPN-01 validator with a normal cert.
                tracing::debug!(sni = ?hello.server_name(), "acme-tls/1 hello with no pending challenge");
                return None;
            }
        }
        let sni = hello.server_name();
        let found = self.store.load().lookup(sni);
        if found.is_none() {
            // Per-handshake, so debug: an empty store (ACME still issuing) is
            // reported once, by whoever publishes it.
            tracing::debug!(sni = ?sni, "no certificate for this name and no default certificate");
        }
        found
    }
}
