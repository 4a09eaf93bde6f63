//! Shared helpers for the TLS integration tests: a loopback TLS echo
//! server built from portico's `ServerConfig`, and a tokio-rustls client.
//! Everything binds 127.0.0.1:0 and every wait has a timeout.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use portico::tls::{self, HandshakeError, HandshakeInfo};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Upper bound for any single wait in the tests.
pub(crate) const WAIT: Duration = Duration::from_secs(5);
/// Connections one test server accepts before it stops accepting.
const MAX_CONNS: usize = 64;

pub(crate) fn tempdir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    std::env::temp_dir().join(format!("portico-it-{tag}-{}-{nanos}", std::process::id()))
}

/// A running echo server; aborted (with its connections) on drop.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    /// One item per accepted TCP connection: the handshake outcome.
    pub(crate) results: mpsc::Receiver<Result<HandshakeInfo, HandshakeError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub(crate) async fn next_result(&mut self) -> Result<HandshakeInfo, HandshakeError> {
        tokio::time::timeout(WAIT, self.results.recv())
            .await
            .expect("server reported a handshake in time")
            .expect("server alive")
    }
}

pub(crate) async fn start(config: Arc<rustls::ServerConfig>, deadline: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, results) = mpsc::channel(MAX_CONNS);
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        for _ in 0..MAX_CONNS {
            let Ok((tcp, _peer)) = listener.accept().await else {
                return;
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            conns.spawn(async move {
                let at = tokio::time::Instant::now() + deadline;
                match tls::accept(&acceptor, tcp, at).await {
                    Ok(accepted) => {
                        let _ = tx.send(Ok(accepted.info)).await;
                        echo_until_eof(accepted.stream).await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                    }
                }
            });
        }
        // Keep connections alive until the test drops the server.
        while conns.join_next().await.is_some() {}
    });
    Server {
        addr,
        results,
        task,
    }
}

async fn echo_until_eof<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() || s.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

pub(crate) fn read_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .expect("open")
        .collect::<Result<Vec<_>, _>>()
        .expect("pem")
}

pub(crate) fn client_config(
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

pub(crate) async fn connect(
    cfg: Arc<ClientConfig>,
    addr: SocketAddr,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let server_name = ServerName::try_from(name.to_owned()).expect("server name");
    let tcp = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect in time")?;
    tokio::time::timeout(WAIT, TlsConnector::from(cfg).connect(server_name, tcp))
        .await
        .expect("handshake in time")
}

/// Write `msg` and read the same number of bytes back.
pub(crate) async fn echo(stream: &mut TlsStream<TcpStream>, msg: &[u8]) -> Vec<u8> {
    stream.write_all(msg).await.expect("write");
    stream.flush().await.expect("flush");
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("read");
    back
}

/// The leaf certificate the server presented.
pub(crate) fn peer_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().expect("peer certs")[0].clone()
}

/// A self-signed certificate for `names`, as (cert PEM, key PEM, cert DER).
pub(crate) fn self_signed(names: &[&str]) -> (String, String, CertificateDer<'static>) {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let ck = rcgen::generate_simple_self_signed(names).expect("generate");
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().clone(),
    )
}
