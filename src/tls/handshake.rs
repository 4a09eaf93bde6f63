//! One TLS handshake under one deadline.
//!
//! Owns: the deadline that covers waiting for the ClientHello *and* the
//! rest of the handshake (a client that connects and sends nothing, or
//! trickles bytes, is cut at the same instant), and the classification of
//! failures.
//! Receives: a `TlsAcceptor` and an accepted transport (normally a
//! `TcpStream`; generic so tests and PROXY-protocol wrappers can pass others).
//! Hands on: [`TlsAccepted`]: the stream plus [`HandshakeInfo`] (ALPN, SNI,
//! version, cipher) for routing and logging, or a [`HandshakeError`] whose
//! [`HandshakeError::kind`] is a stable string for a `failure=` log field.

use std::io;

use rustls::{AlertDescription, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::resolver::ACME_TLS_ALPN;

/// What was negotiated, for logs and for choosing h1/h2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInfo {
    /// Negotiated ALPN protocol (`h2`, `http/1.1`, `acme-tls/1`), if any.
    pub alpn: Option<Vec<u8>>,
    /// The SNI the client sent (absent when it connected by IP).
    pub sni: Option<String>,
    /// TLS version.
    pub version: Option<ProtocolVersion>,
    /// Cipher suite name, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher: Option<&'static str>,
}

impl HandshakeInfo {
    /// True when the client negotiated HTTP/2.
    pub fn is_h2(&self) -> bool {
        self.alpn.as_deref() == Some(super::server_config::ALPN_H2)
    }

    /// True for an ACME TLS-ALPN-01 validation handshake: the connection
    /// must be closed right away, never routed.
    pub fn is_acme_challenge(&self) -> bool {
        self.alpn.as_deref() == Some(ACME_TLS_ALPN)
    }

    /// The ALPN protocol as text for logs (`-` when none).
    pub fn alpn_str(&self) -> &str {
        self.alpn
            .as_deref()
            .and_then(|a| std::str::from_utf8(a).ok())
            .unwrap_or("-")
    }
}

/// A completed handshake.
#[derive(Debug)]
pub struct TlsAccepted<IO> {
    /// The encrypted stream, ready for HTTP.
    pub stream: TlsStream<IO>,
    /// What was negotiated.
    pub info: HandshakeInfo,
}

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The deadline passed before the handshake finished (silent or slow
    /// client).
    #[error("TLS handshake not finished before the deadline")]
    Timeout,
    /// The client sent a fatal alert: typically `unknown_ca`/`bad_certificate`
    /// when it does not trust our certificate (untrusted dev CA).
    #[error("client rejected the handshake with alert {0:?}")]
    PeerAlert(AlertDescription),
    /// The handshake broke the TLS rules on our side's reading: bad
    /// ClientHello, no shared cipher/version/ALPN, no certificate for the
    /// name, plaintext HTTP on the TLS port, ...
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] rustls::Error),
    /// The transport failed (reset, EOF before the handshake finished).
    #[error("I/O error during TLS handshake: {0}")]
    Io(#[source] io::Error),
}

impl HandshakeError {
    /// A short stable label for the `failure=` log field.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::PeerAlert(_) => "peer_alert",
            Self::Tls(_) => "tls",
            Self::Io(_) => "io",
        }
    }

    /// True when the client most likely does not trust our certificate
    /// (worth printing the dev-CA trust hint).
    pub fn is_untrusted_cert(&self) -> bool {
        matches!(
            self,
            Self::PeerAlert(
                AlertDescription::UnknownCA
                    | AlertDescription::BadCertificate
                    | AlertDescription::CertificateUnknown
            )
        )
    }

    fn from_io(e: io::Error) -> Self {
        let tls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        match tls {
            Some(rustls::Error::AlertReceived(alert)) => Self::PeerAlert(alert),
            Some(err) => Self::Tls(err),
            None => Self::Io(e),
        }
    }
}

/// Run the handshake on `io`, failing with [`HandshakeError::Timeout`] at
/// `deadline`. Start the clock at TCP accept: `Instant::now() + timeout`.
pub async fn accept<IO>(
    acceptor: &TlsAcceptor,
    io: IO,
    deadline: Instant,
) -> Result<TlsAccepted<IO>, HandshakeError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let stream = match tokio::time::timeout_at(deadline, acceptor.accept(io)).await {
        Err(_elapsed) => return Err(HandshakeError::Timeout),
        Ok(Err(e)) => return Err(HandshakeError::from_io(e)),
        Ok(Ok(stream)) => stream,
    };
    let conn = stream.get_ref().1;
    let info = HandshakeInfo {
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        sni: conn.server_name().map(str::to_owned),
        version: conn.protocol_version(),
        cipher: conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str()),
    };
    Ok(TlsAccepted { stream, info })
}
