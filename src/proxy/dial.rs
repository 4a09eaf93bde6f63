//! Opening one connection to an upstream: TCP (no delay, keep-alive probes)
//! under the connect timeout, then TLS for `https` upstreams, verified
//! against the system roots and offering only HTTP/1.1.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why a connection to an upstream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("connecting timed out")]
    Timeout,
    #[error("{0}")]
    Connect(io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
}

/// A plain or TLS connection to an upstream.
pub(crate) enum UpstreamIo {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Opens a connection to `authority` (port defaulting from `scheme`).
pub(super) async fn dial(
    scheme: &Scheme,
    authority: &Authority,
    connect_timeout: Duration,
) -> Result<UpstreamIo, DialError> {
    let https = scheme == &Scheme::HTTPS;
    let host = authority.host();
    // `[::1]` in a URL is `::1` to the resolver.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect((host, port))).await {
        Err(_) => return Err(DialError::Timeout),
        Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => return Err(DialError::Timeout),
        Ok(Err(e)) => return Err(DialError::Connect(e)),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let sock = socket2::SockRef::from(&tcp);
    let _ =
        sock.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(Duration::from_secs(60)));
    if !https {
        return Ok(UpstreamIo::Plain(tcp));
    }
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| DialError::ServerName(host.to_owned()))?;
    let tls = TlsConnector::from(tls_config());
    match tokio::time::timeout(connect_timeout, tls.connect(name, tcp)).await {
        Err(_) => Err(DialError::Timeout),
        Ok(Err(e)) => Err(DialError::Tls(e)),
        Ok(Ok(s)) => Ok(UpstreamIo::Tls(Box::new(s))),
    }
}

/// The client TLS settings, built on first use: reading the system roots
/// is slow and plain-HTTP upstreams never need them.
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            if let Some(e) = native.errors.first() {
                tracing::debug!(error = %e, "some system CA roots could not be read");
            }
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!("no system CA roots found; https upstreams will fail verification");
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .clone()
}

impl UpstreamIo {
    /// Whether an idle connection is still open and silent: a keep-alive
    /// connection the upstream closed reads as end-of-file (or an error),
    /// and one that sent unasked bytes is out of step. Never waits.
    pub(crate) fn is_quiet(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(Pin::new(self).poll_read(&mut cx, &mut buf), Poll::Pending)
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamIo::Plain(s) => s.is_write_vectored(),
            UpstreamIo::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
