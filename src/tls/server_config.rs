//! Builds the `rustls::ServerConfig` a TLS listener uses.
//!
//! Owns: the protocol policy: TLS 1.2 + 1.3 with the ring provider passed
//! explicitly (no process-wide default provider is installed or relied on),
//! the ALPN list, and session resumption (a stateful cache plus rotating
//! stateless tickets).
//! Receives: a [`CertResolver`] and [`ServerOptions`].
//! Hands on: an `Arc<ServerConfig>` for `tokio_rustls::TlsAcceptor`. The
//! config does not change when certificates change: the resolver reads the
//! current snapshot itself, so cert reloads never rebuild this.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::ServerSessionMemoryCache;

use super::resolver::{ACME_TLS_ALPN, CertResolver};

/// ALPN id for HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN id for HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Listener-level TLS knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// ALPN protocols in server preference order. Default `h2`, `http/1.1`.
    /// `acme-tls/1` is appended automatically when the resolver has an ACME
    /// challenge hook.
    pub alpn: Vec<Vec<u8>>,
    /// Offer TLS 1.2 as well as 1.3. Default true.
    pub tls12: bool,
    /// Entries in the stateful session cache (TLS 1.2 session ids and
    /// TLS 1.3 stateful tickets). 0 disables it. Default 1024.
    pub session_cache_entries: usize,
    /// Issue stateless, encrypted session tickets (keys rotate every 6 h).
    /// Default true.
    pub stateless_tickets: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            alpn: vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()],
            tls12: true,
            session_cache_entries: 1024,
            stateless_tickets: true,
        }
    }
}

impl ServerOptions {
    /// Offer only `http/1.1` (for a listener that must not speak h2).
    pub fn http11_only() -> Self {
        Self {
            alpn: vec![ALPN_HTTP11.to_vec()],
            ..Self::default()
        }
    }
}

/// Why a `ServerConfig` could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    /// rustls refused the protocol versions for the provider.
    #[error("TLS protocol versions not supported by the crypto provider: {0}")]
    Versions(#[source] rustls::Error),
    /// The ticket key generator could not be created (no randomness).
    #[error("cannot create the session ticket key generator: {0}")]
    Ticketer(#[source] rustls::Error),
}

/// Build the server config. Cheap enough to call once per listener.
pub fn build_server_config(
    resolver: Arc<CertResolver>,
    options: &ServerOptions,
) -> Result<Arc<ServerConfig>, ServerConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = if options.tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let acme = resolver.has_challenge_hook();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(ServerConfigError::Versions)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);

    config.alpn_protocols = options.alpn.clone();
    if acme && !config.alpn_protocols.iter().any(|p| p == ACME_TLS_ALPN) {
        // Last: the server picks its first protocol the client offers, and
        // validators offer only this one.
        config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    config.session_storage = if options.session_cache_entries == 0 {
        Arc::new(rustls::server::NoServerSessionStorage {})
    } else {
        ServerSessionMemoryCache::new(options.session_cache_entries)
    };
    if options.stateless_tickets {
        config.ticketer =
            rustls::crypto::ring::Ticketer::new().map_err(ServerConfigError::Ticketer)?;
    }
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::resolver::shared_store;
    use crate::tls::store::CertStore;

    #[test]
    fn defaults_offer_h2_then_http11_with_resumption() {
        let r = Arc::new(CertResolver::new(shared_store(CertStore::empty())));
        let c = build_server_config(r, &ServerOptions::default()).expect("config");
        assert_eq!(c.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert!(c.ticketer.enabled());
        assert!(c.session_storage.can_cache());
    }

    #[test]
    fn http11_only_listener() {
        let r = Arc::new(CertResolver::new(shared_store(CertStore::empty())));
        let c = build_server_config(r, &ServerOptions::http11_only()).expect("config");
        assert_eq!(c.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
