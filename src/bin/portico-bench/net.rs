//! Connecting to the target: source-address spreading over 127.0.0.0/8,
//! optional TLS (no certificate checks: this is a load generator), the
//! WebSocket client handshake, and a minimal HTTP/1.1 keep-alive client for
//! the signed Pusher REST calls.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Where the server under test listens and how to reach it.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Target {
    /// Server host (an IP address; loopback for the comparisons here).
    #[arg(long, default_value = "127.0.0.1", global = true)]
    pub(crate) host: IpAddr,
    /// Server port.
    #[arg(long, default_value_t = 8080, global = true)]
    pub(crate) port: u16,
    /// Speak TLS (certificates are not verified).
    #[arg(long, global = true)]
    pub(crate) tls: bool,
    /// Pusher app id (REST calls).
    #[arg(long, default_value = "bench", global = true)]
    pub(crate) app_id: String,
    /// Pusher app key (WebSocket path, REST auth_key).
    #[arg(long, default_value = "bench-key", global = true)]
    pub(crate) app_key: String,
    /// Pusher app secret (REST signatures, private/presence auth).
    #[arg(long, default_value = "bench-secret", global = true)]
    pub(crate) app_secret: String,
    /// Spread client source addresses over 127.0.0.0/8 (loopback targets
    /// only): each source address has its own ~28k ephemeral ports.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub(crate) spread: bool,
}

/// A plain or TLS client stream.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The source address for connection number `i` when spreading: 64
/// connections per address, addresses 127.b.c.d with every octet in 1..=254.
pub(crate) fn source_addr(i: u64) -> Ipv4Addr {
    let k = i / 64;
    let d = 1 + (k % 254) as u8;
    let c = 1 + ((k / 254) % 254) as u8;
    let b = 1 + ((k / (254 * 254)) % 254) as u8;
    Ipv4Addr::new(127, b, c, d)
}

/// Connects TCP (and TLS when asked). `i` picks the source address.
pub(crate) async fn connect(
    t: &Target,
    tls: Option<&TlsConnector>,
    i: u64,
) -> anyhow::Result<Stream> {
    let addr = SocketAddr::new(t.host, t.port);
    let tcp = match (t.host, t.spread) {
        (IpAddr::V4(h), true) if h.is_loopback() => {
            let s = TcpSocket::new_v4()?;
            s.bind(SocketAddr::new(IpAddr::V4(source_addr(i)), 0))?;
            s.connect(addr).await?
        }
        _ => TcpStream::connect(addr).await?,
    };
    tcp.set_nodelay(true)?;
    match tls {
        None => Ok(Stream::Plain(tcp)),
        Some(c) => {
            let name = rustls_pki_types::ServerName::try_from("localhost")?.to_owned();
            Ok(Stream::Tls(Box::new(c.connect(name, tcp).await?)))
        }
    }
}

/// A small-buffer client configuration: the load generator holds many sockets.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
}

/// The client-side WebSocket type.
pub(crate) type Ws = WebSocketStream<Stream>;

/// Opens a Pusher WebSocket (`/app/{key}?protocol=7`), handshake done.
pub(crate) async fn ws_connect(
    t: &Target,
    tls: Option<&TlsConnector>,
    i: u64,
    path: &str,
) -> anyhow::Result<Ws> {
    let stream = connect(t, tls, i).await?;
    let scheme = if t.tls { "wss" } else { "ws" };
    let url = format!("{scheme}://{}:{}{path}", t.host, t.port);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config()))
        .await
        .context("websocket handshake")?;
    Ok(ws)
}

/// The Pusher WebSocket path for `t`.
pub(crate) fn pusher_path(t: &Target) -> String {
    format!(
        "/app/{}?protocol=7&client=portico-bench&version=0.1",
        t.app_key
    )
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS connector that accepts any certificate. `resume = false` turns
/// session resumption off so every connection is a full handshake.
pub(crate) fn tls_connector(alpn_http1: bool, resume: bool) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports the default versions"))
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    if alpn_http1 {
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    if !resume {
        cfg.resumption = rustls::client::Resumption::disabled();
    }
    TlsConnector::from(Arc::new(cfg))
}

/// The connector for `t` (None for plain).
pub(crate) fn connector_for(t: &Target) -> Option<TlsConnector> {
    t.tls.then(|| tls_connector(true, true))
}

/// A keep-alive HTTP/1.1 connection for small requests with
/// `Content-Length` responses (what Pusher REST servers answer).
pub(crate) struct HttpConn {
    io: BufReader<Stream>,
    host: String,
    /// The server said `Connection: close`: open a new one for the next request.
    pub(crate) closed: bool,
}

impl HttpConn {
    /// Opens one connection to `t`.
    pub(crate) async fn open(
        t: &Target,
        tls: Option<&TlsConnector>,
        i: u64,
    ) -> anyhow::Result<HttpConn> {
        let s = connect(t, tls, i).await?;
        Ok(HttpConn {
            io: BufReader::new(s),
            host: format!("{}:{}", t.host, t.port),
            closed: false,
        })
    }

    /// Sends one request and returns (status, body).
    pub(crate) async fn request(
        &mut self,
        method: &str,
        path_query: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let head = format!(
            "{method} {path_query} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let w = self.io.get_mut();
        w.write_all(head.as_bytes()).await?;
        w.write_all(body).await?;
        w.flush().await?;
        let mut line = String::new();
        self.io.read_line(&mut line).await?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("bad status line")?;
        let mut len = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.io.read_line(&mut line).await? == 0 {
                bail!("connection closed in headers");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("connection")
                    && v.to_ascii_lowercase().contains("close")
                {
                    self.closed = true;
                } else if k.eq_ignore_ascii_case("transfer-encoding")
                    && v.to_ascii_lowercase().contains("chunked")
                {
                    chunked = true;
                }
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.io.read_line(&mut line).await?;
                let n = usize::from_str_radix(line.trim(), 16).context("bad chunk size")?;
                let mut chunk = vec![0; n + 2];
                self.io.read_exact(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
        } else {
            let mut b = vec![0; len.unwrap_or(0)];
            self.io.read_exact(&mut b).await?;
            out = b;
        }
        Ok((status, out))
    }
}
