//! The edge's TLS state: which certificates the `https` listener serves and
//! the background task that keeps them fresh (dev renewal or file watching).
//!
//! Receives the `[tls]` config at start and on every reload; hands the
//! listener an acceptor per handshake. A reload with the same `[tls]` keeps
//! the acceptor and just re-reads certificate files (SIGHUP semantics); a
//! changed `[tls]` builds a new acceptor and swaps it in atomically, and the
//! old background task stops. Established connections are never touched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Tls};
use crate::shutdown::Shutdown;
use crate::tls::{
    self, CertKeyPaths, CertResolver, HandshakeError, ServerOptions, TlsAccepted, TlsError,
};

/// How often dev certificates are checked for renewal.
const DEV_RENEW_EVERY: Duration = Duration::from_secs(3600);

/// TLS could not be set up from the config.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// ACME storage is unusable (a CA being down is never an error here).
    #[error(transparent)]
    Acme(#[from] crate::tls::acme::AcmeError),
}

impl From<tls::StoreError> for TlsSetupError {
    fn from(e: tls::StoreError) -> Self {
        Self::Tls(e.into())
    }
}

impl From<tls::DevCertError> for TlsSetupError {
    fn from(e: tls::DevCertError) -> Self {
        Self::Tls(e.into())
    }
}

impl From<tls::ServerConfigError> for TlsSetupError {
    fn from(e: tls::ServerConfigError) -> Self {
        Self::Tls(e.into())
    }
}

/// Why a handshake did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("TLS is not configured (tls.mode = \"off\")")]
    NoTls,
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
}

/// What is currently installed.
struct Installed {
    tls: Tls,
    http2: bool,
    acceptor: TlsAcceptor,
    shared: tls::SharedCertStore,
    /// ACME challenge answers (acme mode only).
    acme: Option<Arc<crate::tls::acme::Challenges>>,
    /// Stops this installation's background task.
    task: CancellationToken,
}

/// Holds the current acceptor.
#[derive(Default)]
pub struct TlsState {
    current: ArcSwapOption<Installed>,
    /// Serialises reloads (SIGHUP handlers never race, but be sure).
    reload_lock: parking_lot::Mutex<()>,
}

impl TlsState {
    pub fn new(config: &Config, shutdown: &Shutdown) -> Result<TlsState, TlsSetupError> {
        let state = TlsState::default();
        state.reload(config, shutdown)?;
        Ok(state)
    }

    /// Applies `[tls]` from a (re)loaded config. On error nothing changes.
    pub fn reload(&self, config: &Config, shutdown: &Shutdown) -> Result<(), TlsSetupError> {
        let _guard = self.reload_lock.lock();
        let http2 = config.server.http2;
        let old = self.current.load_full();
        if let Some(old) = &old
            && old.tls == config.tls
            && old.http2 == http2
        {
            if let Tls::Files { pairs, .. } = &config.tls {
                tls::reload_now(&paths(pairs), &old.shared)?;
                tracing::info!("certificate files re-read");
            }
            return Ok(());
        }
        let new = install(&config.tls, http2, shutdown)?;
        if let Some(old) = old {
            old.task.cancel();
        }
        self.current.store(new.map(Arc::new));
        Ok(())
    }

    /// The key authorization for a pending ACME HTTP-01 `token`.
    pub fn http01(&self, token: &str) -> Option<Arc<str>> {
        self.current
            .load()
            .as_ref()
            .and_then(|i| i.acme.as_ref())
            .and_then(|c| c.http01(token))
    }

    /// Runs the handshake; `deadline` covers the ClientHello and the rest.
    pub async fn accept<I>(&self, io: I, deadline: Duration) -> Result<TlsAccepted<I>, AcceptError>
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = self
            .current
            .load()
            .as_ref()
            .map(|i| i.acceptor.clone())
            .ok_or(AcceptError::NoTls)?;
        let at = tokio::time::Instant::from_std(Instant::now() + deadline);
        let r = tls::accept(&acceptor, io, at).await;
        crate::metrics::tls_handshake(r.as_ref().map(|_| ()).map_err(|e| e.kind()));
        Ok(r?)
    }

    /// The certificate a handshake naming `sni` gets (`None` for an IP
    /// address or no name), if TLS is on and one matches.
    pub fn certificate_for(&self, sni: Option<&str>) -> Option<crate::tls::store::CertInfo> {
        let installed = self.current.load_full()?;
        let store = installed.shared.load();
        store.info_for(sni).cloned()
    }

    /// The certificates being served (empty with TLS off).
    pub fn certificates(&self) -> Vec<crate::tls::store::CertInfo> {
        self.current
            .load()
            .as_ref()
            .map(|i| i.shared.load().infos().to_vec())
            .unwrap_or_default()
    }
}

fn paths(pairs: &[crate::config::CertPair]) -> Vec<CertKeyPaths> {
    pairs
        .iter()
        .map(|p| CertKeyPaths {
            cert: p.cert.clone(),
            key: p.key.clone(),
        })
        .collect()
}

fn install(
    mode: &Tls,
    http2: bool,
    shutdown: &Shutdown,
) -> Result<Option<Installed>, TlsSetupError> {
    let task = shutdown.drain_token();
    let mut acme = None;
    let shared = match mode {
        Tls::Off => return Ok(None),
        Tls::Dev { dir, hosts } => {
            let certs = tls::dev::ensure(dir, hosts)?;
            if certs.ca_created {
                tracing::info!(ca = %certs.ca_cert.display(), "created a local dev CA; run `portico certs-dev` to see how to trust it");
            }
            let shared = tls::shared_store(certs.load_store()?);
            tokio::spawn(tls::dev::run_renewal(
                dir.clone(),
                hosts.clone(),
                tls::DevPolicy::default(),
                DEV_RENEW_EVERY,
                shared.clone(),
                task.clone(),
            ));
            shared
        }
        Tls::Files { pairs, watch } => {
            let p = paths(pairs);
            let store = tls::load_files(&p)?;
            for w in store.warnings() {
                tracing::warn!("{w}");
            }
            let shared = tls::shared_store(store);
            if *watch {
                tokio::spawn(tls::watch_files(
                    p,
                    shared.clone(),
                    tls::reload::DEFAULT_POLL_INTERVAL,
                    task.clone(),
                ));
            }
            shared
        }
        Tls::Acme(settings) => {
            let mut tuning = crate::tls::acme::Tuning::default();
            if let Some(r) = &settings.retry_intervals {
                tuning.retry_intervals = r.clone();
            }
            let started = crate::tls::acme::start(settings, tuning, task.clone())?;
            acme = Some(started.challenges);
            started.shared
        }
    };
    let mut resolver = CertResolver::new(shared.clone());
    if let Some(c) = &acme {
        resolver = resolver.with_challenge_hook(c.clone());
    }
    let resolver = Arc::new(resolver);
    let options = if http2 {
        ServerOptions::default()
    } else {
        ServerOptions::http11_only()
    };
    let config = tls::build_server_config(resolver, &options)?;
    Ok(Some(Installed {
        tls: mode.clone(),
        http2,
        acceptor: TlsAcceptor::from(config),
        shared,
        acme,
        task,
    }))
}
