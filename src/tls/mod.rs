//! TLS termination: certificates, SNI resolution, the rustls server config,
//! the handshake deadline, dev certificates and file reloading.
//!
//! Owns: everything between an accepted TCP socket and a decrypted stream.
//! Receives: the `[tls]` settings (as plain values: paths, hosts, options)
//! and TCP streams from the listener.
//! Hands on: `TlsAccepted` (stream + ALPN/SNI) to the HTTP server, and a
//! `SharedCertStore` that reloaders (files, dev renewal, later ACME) publish
//! into.
//!
//! # Layout
//! - `store`: `CertStore`, an immutable SNI-indexed certificate snapshot,
//!   built from PEM pairs with validation.
//! - `resolver`: `CertResolver`, rustls' `ResolvesServerCert` over an
//!   `ArcSwap<CertStore>`, with the ACME `ChallengeHook` seam.
//! - `server_config`: `build_server_config` (TLS 1.2/1.3, ring, ALPN,
//!   resumption).
//! - `handshake`: `accept` under one deadline, typed `HandshakeError`.
//! - `dev`: the local dev CA and short-lived leaf (`ensure`, `renew`,
//!   `run_renewal`); `dev/pki` holds the key/CA/leaf generation.
//! - `trust`: how to trust the dev CA (text for `certs-dev` and the banner).
//! - `reload`: files mode (`load_files`, `reload_now`, `watch_files`).
//!
//! Typical wiring (dev mode):
//! ```no_run
//! # async fn wire() -> Result<(), portico::tls::TlsError> {
//! use std::sync::Arc;
//! use portico::tls::{self, CertResolver, ServerOptions};
//! let dev = tls::dev::ensure("certs-dev".as_ref(), &[])?;
//! let shared = tls::shared_store(dev.load_store()?);
//! let resolver = Arc::new(CertResolver::new(Arc::clone(&shared)));
//! let config = tls::build_server_config(resolver, &ServerOptions::default())?;
//! let acceptor = tokio_rustls::TlsAcceptor::from(config);
//! # let _ = acceptor; Ok(()) }
//! ```

pub mod acme;
pub mod dev;
pub mod handshake;
pub mod reload;
pub mod resolver;
pub mod server_config;
pub mod state;
pub mod store;
pub mod trust;

pub use dev::{DevCertError, DevCerts, DevPolicy};
pub use handshake::{HandshakeError, HandshakeInfo, TlsAccepted, accept};
pub use reload::{CertKeyPaths, load_files, reload_now, watch_files};
pub use resolver::{ACME_TLS_ALPN, CertResolver, ChallengeHook, SharedCertStore, shared_store};
pub use server_config::{
    ALPN_H2, ALPN_HTTP11, ServerConfigError, ServerOptions, build_server_config,
};
pub use store::{CertInfo, CertStore, CertStoreBuilder, StoreError, StoreWarning};
pub use trust::{trust_instructions, trust_one_liner};

/// Setting up TLS failed (start-up or reload). Per-connection failures are
/// [`HandshakeError`], kept apart because they are routine and log at a
/// different level.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate/key pair could not be loaded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The dev CA or leaf could not be created or loaded.
    #[error(transparent)]
    Dev(#[from] DevCertError),
    /// The rustls server config could not be built.
    #[error(transparent)]
    Config(#[from] ServerConfigError),
}
