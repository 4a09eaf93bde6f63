//! Runs Let's Encrypt's test CA (pebble) and its DNS helper
//! (pebble-challtestsrv) on loopback for one test, and a portico edge
//! against it (in-process, through the shared starter). Every port is
//! ephemeral, every wait bounded; the child processes are killed (by
//! handle) when the harness drops.

use std::fs;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portico::Listeners;
use portico::config::Tls;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::base;
use crate::inproc::{self, Inproc};

pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "portico-acme-{tag}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    fs::create_dir_all(&d).expect("tempdir");
    d
}

/// A free loopback port (bound then released; the tiny race is accepted,
/// as in sozu's e2e port registry, because pebble needs literal ports).
pub(crate) fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn require(bin: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()));
    assert!(
        found,
        "`{bin}` is not installed: these tests need Let's Encrypt's test CA. Install it with `apt-get install -y pebble` (scripts/test does this)."
    );
}

/// What pebble validates against and how long its certificates live.
pub(crate) struct PebbleOpts {
    /// Port pebble's VA uses for HTTP-01 (portico's `http` listener).
    pub(crate) http_port: u16,
    /// Port pebble's VA uses for TLS-ALPN-01 (portico's `https` listener).
    pub(crate) tls_port: u16,
    /// Certificate lifetime in seconds (`None`: pebble's default, years).
    pub(crate) validity_secs: Option<u64>,
    /// Port for the ACME directory (`None`: pick one).
    pub(crate) wfe_port: Option<u16>,
}

pub(crate) struct Pebble {
    pebble: Child,
    dns: Child,
    pub(crate) dir_url: String,
    mgmt: SocketAddr,
    /// The CA that signed pebble's own HTTPS certificate (`tls.ca_root`).
    pub(crate) wfe_root: PathBuf,
    log: PathBuf,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.pebble.kill();
        let _ = self.dns.kill();
        let _ = self.pebble.wait();
        let _ = self.dns.wait();
    }
}

/// A CA + a leaf for 127.0.0.1, so pebble's directory is served over https.
fn wfe_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "portico test WFE CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let leaf_cert = leaf.signed_by(&key, &issuer).expect("leaf");
    let (ca_p, cert_p, key_p) = (
        dir.join("wfe-ca.pem"),
        dir.join("wfe.pem"),
        dir.join("wfe.key"),
    );
    fs::write(&ca_p, ca_cert.pem()).expect("write");
    fs::write(&cert_p, leaf_cert.pem()).expect("write");
    fs::write(&key_p, key.serialize_pem()).expect("write");
    (ca_p, cert_p, key_p)
}

impl Pebble {
    pub(crate) async fn start(dir: &Path, opts: PebbleOpts) -> Pebble {
        require("pebble");
        require("pebble-challtestsrv");
        let (wfe_root, cert, key) = wfe_tls(dir);
        let dns_port = free_port();
        let wfe_port = opts.wfe_port.unwrap_or_else(free_port);
        let mgmt_port = free_port();
        let dns = Command::new("pebble-challtestsrv")
            .args([
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{}", free_port()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pebble-challtestsrv");
        let mut pebble_cfg = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{wfe_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": cert,
            "privateKey": key,
            "httpPort": opts.http_port,
            "tlsPort": opts.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        if let Some(v) = opts.validity_secs {
            pebble_cfg["pebble"]["certificateValidityPeriod"] = v.into();
        }
        let cfg_path = dir.join("pebble.json");
        fs::write(&cfg_path, pebble_cfg.to_string()).expect("write");
        let log = dir.join("pebble.log");
        let out = fs::File::create(&log).expect("log");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&cfg_path)
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{dns_port}"))
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("spawn pebble");
        let p = Pebble {
            pebble,
            dns,
            dir_url: format!("https://127.0.0.1:{wfe_port}/dir"),
            mgmt: SocketAddr::from(([127, 0, 0, 1], mgmt_port)),
            wfe_root,
            log,
        };
        // Key generation is slow when several tests start pebble at once.
        let deadline = Instant::now() + Duration::from_secs(45);
        for port in [wfe_port, mgmt_port, dns_port] {
            while TcpStream::connect(("127.0.0.1", port)).await.is_err() && port != dns_port {
                assert!(
                    Instant::now() < deadline,
                    "pebble did not start: {}",
                    p.log_text()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        p
    }

    pub(crate) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// New orders pebble has accepted so far.
    pub(crate) fn orders(&self) -> usize {
        self.log_text().matches("POST /order-plz").count()
    }

    /// pebble's issuing root, fetched from its management interface.
    pub(crate) async fn issuing_root(&self) -> CertificateDer<'static> {
        let body = https_get(self.mgmt, &self.wfe_root, "/roots/0").await;
        CertificateDer::from_pem_slice(body.as_bytes()).expect("root PEM")
    }
}

fn client_config(roots: rustls::RootCertStore, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut c =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(c)
}

async fn https_get(addr: SocketAddr, root: &Path, path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(root).expect("root"))
        .expect("add");
    let tls = TlsConnector::from(client_config(roots, &[]));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name").to_owned();
    let mut s = tokio::time::timeout(WAIT, tls.connect(name, tcp))
        .await
        .expect("in time")
        .expect("handshake");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(text)
}

/// A TLS client that trusts only `root` (pebble's issuing root).
pub(crate) async fn connect_verified(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    sni: &str,
) -> Result<TlsStream<TcpStream>, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).expect("add root");
    let tls = TlsConnector::from(client_config(roots, &[b"http/1.1"]));
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).expect("name");
    tokio::time::timeout(WAIT, tls.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timeout"))?
}

/// The leaf certificate a verified connection got.
pub(crate) fn peer_leaf(s: &TlsStream<TcpStream>) -> Vec<u8> {
    s.get_ref().1.peer_certificates().expect("certs")[0]
        .as_ref()
        .to_vec()
}

/// The leaf served for `sni`, without verifying it (placeholders).
pub(crate) async fn served_leaf(addr: SocketAddr, sni: &str) -> Vec<u8> {
    #[derive(Debug)]
    struct AnyCert;
    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls_pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let mut c =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert))
            .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(sni.to_string()).expect("name");
    let s = tokio::time::timeout(WAIT, TlsConnector::from(Arc::new(c)).connect(name, tcp))
        .await
        .expect("in time")
        .expect("handshake");
    peer_leaf(&s)
}

/// The issuer CN of a DER certificate.
pub(crate) fn issuer_cn(der: &[u8]) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(der).expect("x509");
    c.issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_string()
}

/// One HTTP/1.1 request on an open TLS connection (keep-alive); the status.
pub(crate) async fn health(s: &mut TlsStream<TcpStream>, host: &str) -> u16 {
    s.write_all(format!("GET /.portico/up HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A portico edge on its own loopback listeners (the shared in-process
/// starter, `crate::inproc`).
pub(crate) struct Portico {
    pub(crate) https: SocketAddr,
    pub(crate) http: SocketAddr,
    edge: Inproc,
}

/// Listeners bound before pebble starts (pebble needs their ports).
pub(crate) struct Bound {
    pub(crate) https: TcpListener,
    pub(crate) http: TcpListener,
}

impl Bound {
    pub(crate) async fn new() -> Bound {
        Bound {
            https: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            http: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        }
    }

    pub(crate) fn ports(&self) -> (u16, u16) {
        (
            self.http.local_addr().expect("addr").port(),
            self.https.local_addr().expect("addr").port(),
        )
    }
}

/// The one Pusher app every ACME test edge serves (a hub socket over the
/// issued certificate).
const APP: &str = r#"
[[apps]]
id = "1"
key = "acme-test-key"
secret = "s"
"#;

impl Portico {
    /// Start with `[tls]` lines (mode = "acme" is added) on `bound`, with
    /// `retry` as the ACME retry intervals (`None`: portico's own).
    pub(crate) async fn start(bound: Bound, tls: &str, retry: Option<Vec<Duration>>) -> Portico {
        let text = base()
            .without("server.plain")
            .set("server.http", "${HTTP}")
            .without("tls")
            .with(&format!("[tls]\nmode = \"acme\"\n{tls}"))
            .set("upstream.url", "http://127.0.0.1:9")
            .set("log.access", false)
            .with(APP)
            .to_string();
        let listeners = Listeners {
            https: Some(bound.https),
            http: Some(bound.http),
            plain: None,
        };
        let edge = inproc::start_on(listeners, &text, &[], |cfg| {
            if let Tls::Acme(a) = &mut cfg.tls {
                a.retry_intervals = retry;
            }
        })
        .await;
        Portico {
            https: edge.https(),
            http: edge.http(),
            edge,
        }
    }

    /// Stop and give the ports back (as listeners bound to the same ports).
    pub(crate) async fn stop(self) -> Bound {
        let (https, http) = (self.https, self.http);
        let _ = self.edge.stop_within(Duration::from_secs(20)).await;
        let deadline = Instant::now() + WAIT;
        loop {
            if let (Ok(a), Ok(b)) = (bind_reuse(https), bind_reuse(http)) {
                return Bound { https: a, http: b };
            }
            assert!(Instant::now() < deadline, "ports not released");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn bind_reuse(addr: SocketAddr) -> std::io::Result<TcpListener> {
    portico::listener::bind_one("https", addr).map_err(|e| e.source)
}

/// Poll `f` every 100 ms until it returns `Some`, at most `limit`.
pub(crate) async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
